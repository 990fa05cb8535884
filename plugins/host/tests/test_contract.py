"""The plugin contract: loading, the tools a plugin becomes, and how each kind of failure ends."""

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import HYDRATION, SLEEP

from wellbeing_host import api, loader
from wellbeing_host.errors import ContractError, EgressDenied
from wellbeing_host.secrets import Secrets
from wellbeing_host.server import ROLE_KEY, Host


def call(host, tool, args):
    result = asyncio.run(host.call(tool, args))
    return result, result.content[0].text


def test_hydration_serves_its_schema_verbatim_and_a_match_tool():
    plugin = loader.load(HYDRATION)
    tools = {t.name: t for t in Host(plugin, {}).tools()}
    assert tools["hydration"].input_schema == plugin.input_schema
    assert tools["hydration"].meta == {ROLE_KEY: "run"}
    assert tools["hydration_match"].meta == {ROLE_KEY: "match"}


def test_hydration_call_returns_structured_schedule():
    host = Host(loader.load(HYDRATION), {})
    result, text = call(host, "hydration", {"text": "forgot to drink water all day, headache", "now": "15:00"})
    assert not result.is_error, text
    assert result.structured_content["urgency"] == "high"
    assert result.structured_content["schedule"][0] == {"time": "15:00", "ml": 250, "note": "now"}
    assert json.loads(text) == result.structured_content


def test_match_tool_answers_relevance():
    host = Host(loader.load(SLEEP), {})
    result, _ = call(host, "sleep_winddown_match", {"text": "Can't sleep, insomnia again"})
    assert result.structured_content == {"match": True}
    result, _ = call(host, "sleep_winddown_match", {"text": "had a great lunch"})
    assert result.structured_content == {"match": False}


def test_sleep_plan_without_gateway_has_no_tip():
    host = Host(loader.load(SLEEP), {})
    result, text = call(host, "sleep_winddown", {"bedtime": "23:00", "now": "21:00"})
    assert not result.is_error, text
    assert "tip" not in result.structured_content
    assert result.structured_content["plan"][-1]["step"] == "Lights out"


@pytest.mark.parametrize(
    "body, message",
    [
        ('name = "x"\n', "'description' is missing"),
        (
            'name = "bad name!"\ndescription = "d"\ninput_schema = {"type": "object"}\nrequired_secrets = []\n'
            "async def run(c, l, s): return {}\n",
            "letters, digits",
        ),
        (
            'name = "x"\ndescription = "d"\ninput_schema = {"type": "object"}\nrequired_secrets = []\n'
            "def run(c, l, s): return {}\n",
            "async function",
        ),
        (
            'name = "x"\ndescription = "d"\ninput_schema = {"type": "object"}\nrequired_secrets = []\n'
            "async def run(c): return {}\n",
            "exactly (context, llm, secrets)",
        ),
        (
            'name = "x"\ndescription = "d"\ninput_schema = {"type": "array"}\nrequired_secrets = []\n'
            "async def run(c, l, s): return {}\n",
            "type 'object'",
        ),
        (
            'name = "x"\ndescription = "d"\ninput_schema = {"type": "object", "properties": 3}\n'
            "required_secrets = []\nasync def run(c, l, s): return {}\n",
            "not a valid JSON schema",
        ),
        (
            'name = "x"\ndescription = "d"\ninput_schema = {"type": "object"}\nrequired_secrets = ["a/b"]\n'
            "async def run(c, l, s): return {}\n",
            "required_secrets entry",
        ),
        ("raise RuntimeError('boom')\n", "importing v1.py failed: RuntimeError: boom"),
    ],
)
def test_contract_violations_are_refused(write_module, body, message):
    with pytest.raises(ContractError, match=None) as e:
        loader.load(write_module(body, header=False))
    assert message in str(e.value)


def test_missing_module_is_refused_with_its_path(tmp_path):
    with pytest.raises(ContractError) as e:
        loader.load(tmp_path / "nope" / "v3.py")
    assert "nope/v3.py" in str(e.value)


def probe(write_module, body, env=None):
    return Host(loader.load(write_module(body)), env or {})


def test_invalid_arguments_fail_cleanly(write_module):
    host = probe(write_module, "async def run(c, l, s):\n    return {'echo': c['text']}\n")
    result, text = call(host, "probe", {"text": 5})
    assert result.is_error and "InvalidArguments" in text and "argument text" in text


def test_crash_is_an_error_result_not_a_dead_host(write_module):
    host = probe(write_module, "async def run(c, l, s):\n    raise ValueError('bad input')\n")
    result, text = call(host, "probe", {"text": "x"})
    assert result.is_error and text == "plugin failed: ValueError: bad input"
    # The host keeps serving after a crash.
    result, _ = call(host, "probe", {"text": "again"})
    assert result.is_error


@pytest.mark.parametrize(
    "ret, message",
    [("[1, 2]", "dict or a str, not list"), ("{'a': {1, 2}}", "not JSON"), ("{'x': float('nan')}", "not JSON")],
)
def test_invalid_output_fails_cleanly(write_module, ret, message):
    host = probe(write_module, f"async def run(c, l, s):\n    return {ret}\n")
    result, text = call(host, "probe", {"text": "x"})
    assert result.is_error and "InvalidOutput" in text and message in text


def test_string_output_is_text(write_module):
    host = probe(write_module, "async def run(c, l, s):\n    return 'drink up'\n")
    result, text = call(host, "probe", {})
    assert not result.is_error and text == "drink up" and result.structured_content is None


def test_hang_times_out(write_module):
    host = probe(write_module, "import asyncio\nasync def run(c, l, s):\n    await asyncio.sleep(60)\n")
    host.call_timeout = 0.2
    result, text = call(host, "probe", {})
    assert result.is_error and "did not finish within 0.2 s" in text


def test_unknown_tool(write_module):
    host = probe(write_module, "async def run(c, l, s):\n    return {}\n")
    result, text = call(host, "nope", {})
    assert result.is_error and "unknown tool" in text


SECRET_BODY = """
required_secrets = ["weather-key"]
async def run(c, l, s):
    if c.get("text") == "undeclared":
        return {"v": s["slack-token"]}
    return {"echo": "key is " + s["weather-key"]}
"""


def test_undeclared_secret_is_a_clean_error(write_module):
    host = probe(write_module, SECRET_BODY, {"WEATHER_KEY": "abcd1234", "SLACK_TOKEN": "zzzzzzzz"})
    result, text = call(host, "probe", {"text": "undeclared"})
    assert result.is_error and "SecretNotDeclared" in text and "slack-token" in text
    assert "zzzzzzzz" not in text


def test_secret_from_env_is_scrubbed_from_output(write_module):
    host = probe(write_module, SECRET_BODY, {"WEATHER_KEY": "abcd1234"})
    result, text = call(host, "probe", {"text": "x"})
    assert not result.is_error
    assert text == json.dumps({"echo": "key is [redacted]"})
    assert "abcd1234" not in repr(host.secrets)


def test_missing_secret_names_where_to_put_it(write_module, tmp_path):
    host = probe(write_module, SECRET_BODY, {"WELLBEING_SECRETS_DIR": str(tmp_path / "none")})
    result, text = call(host, "probe", {"text": "x"})
    assert result.is_error and "SecretMissing" in text and "WEATHER_KEY" in text


def test_secret_sources_in_order(tmp_path):
    (tmp_path / "weather-key").write_text("from-file\n")
    assert Secrets(["weather-key"], {}, str(tmp_path))["weather-key"] == "from-file"
    env = {"WEATHER_KEY": "from-env"}
    assert Secrets(["weather-key"], env, str(tmp_path))["weather-key"] == "from-env"
    env |= {"WELLBEING_SECRET_ENV_WEATHER_KEY": "OWM_TOKEN", "OWM_TOKEN": "from-mapped"}
    assert Secrets(["weather-key"], env, str(tmp_path))["weather-key"] == "from-mapped"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://localhost:1/elsewhere")
            self.end_headers()
            return
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_get_only_reaches_declared_hosts(web):
    api._set_egress_hosts(["127.0.0.1"])
    try:
        response = asyncio.run(api.http_get(web + "/forecast"))
        assert response.status == 200 and response.json() == {"path": "/forecast"}
        with pytest.raises(EgressDenied, match="redirect to undeclared host 'localhost'"):
            asyncio.run(api.http_get(web + "/redirect"))
        with pytest.raises(EgressDenied, match="'example.com' is not in the plugin's egress_hosts"):
            asyncio.run(api.http_get("https://example.com/"))
        with pytest.raises(EgressDenied):
            asyncio.run(api.http_get("file:///etc/passwd"))
    finally:
        api._set_egress_hosts([])


def test_plugin_http_get_to_undeclared_host_is_an_error_result(write_module, web):
    body = f"""
egress_hosts = ["api.example.com"]
from wellbeing_host.api import http_get
async def run(c, l, s):
    r = await http_get("{web}/x")
    return {{"status": r.status}}
"""
    host = probe(write_module, body)
    result, text = call(host, "probe", {})
    assert result.is_error and "EgressDenied" in text and "127.0.0.1" in text
    api._set_egress_hosts([])
