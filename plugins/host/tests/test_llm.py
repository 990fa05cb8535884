"""`llm.complete` against a local OpenAI-compatible gateway on 127.0.0.1."""

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wellbeing_host import loader
from wellbeing_host.errors import LlmError, LlmUnavailable
from wellbeing_host.llm import Llm
from wellbeing_host.server import Host
from conftest import SLEEP


class Gateway(BaseHTTPRequestHandler):
    requests: list = []
    status = 200

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Gateway.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if Gateway.status != 200:
            payload = {"error": {"message": "daily token budget exhausted for plugin", "type": "rate_limit"}}
        else:
            payload = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": "small-model",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "Sleep well."}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            }
        data = json.dumps(payload).encode()
        self.send_response(Gateway.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway():
    Gateway.requests = []
    Gateway.status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/internal/llm/v1"
    server.shutdown()


def env(base):
    return {"WELLBEING_LLM_GATEWAY": base + "/", "WELLBEING_PLUGIN_TOKEN": "plugin-token-123"}


def test_complete_speaks_openai_chat_completions_with_task_class(gateway):
    llm = Llm("sleep_winddown", env(gateway))
    assert asyncio.run(llm.complete("summary", "Summarise my week", max_tokens=50)) == "Sleep well."
    [req] = Gateway.requests
    assert req["path"] == "/internal/llm/v1/chat/completions"
    assert req["auth"] == "Bearer plugin-token-123"
    assert req["body"] == {
        "model": "task:summary",
        "messages": [{"role": "user", "content": "Summarise my week"}],
        "metadata": {"task": "summary", "plugin": "sleep_winddown"},
        "max_tokens": 50,
    }


def test_gateway_refusal_carries_its_message(gateway):
    Gateway.status = 429
    with pytest.raises(LlmError, match="answered 429: daily token budget exhausted"):
        asyncio.run(Llm("p", env(gateway)).complete("chat", "hi"))


def test_unknown_task_and_missing_gateway():
    with pytest.raises(LlmError, match="unknown task class 'poetry'"):
        asyncio.run(Llm("p", env("http://127.0.0.1:9")).complete("poetry", "hi"))
    with pytest.raises(LlmUnavailable):
        asyncio.run(Llm("p", {}).complete("chat", "hi"))


def test_unreachable_gateway_is_an_llm_error():
    # Port 9 (discard) is closed on loopback: the connection is refused at once.
    with pytest.raises(LlmError, match="failed to reach the LLM gateway"):
        asyncio.run(Llm("p", env("http://127.0.0.1:9")).complete("chat", "hi"))


def test_sleep_plugin_adds_the_gateway_tip(gateway):
    host = Host(loader.load(SLEEP), env(gateway))
    result = asyncio.run(host.call("sleep_winddown", {"bedtime": "22:00"}))
    assert not result.is_error
    assert result.structured_content["tip"] == "Sleep well."
    assert Gateway.requests[0]["body"]["metadata"]["task"] == "chat"
