"""`llm.complete(task, prompt)`: the plugin's only way to an LLM, through the assistant's gateway.

Wire format (OpenAI chat completions): `POST {WELLBEING_LLM_GATEWAY}/chat/completions` with
`Authorization: Bearer {WELLBEING_PLUGIN_TOKEN}` and the body

    {"model": "task:<class>", "messages": [{"role": "user", "content": prompt}],
     "metadata": {"task": "<class>", "plugin": "<plugin name>"}}

The task class travels in `metadata.task` (the field OpenAI's API has for caller metadata); the
gateway reads it there and picks the model itself. `model` repeats it as `task:<class>` only
because the wire format requires a model: it never names a real model, so a plugin cannot choose
one. Only the standard library is used so the self-test sandbox stays small.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping

from wellbeing_host.errors import LlmError, LlmUnavailable

# The task classes of the Plugin resource's `spec.llm` (crds/src/plugin.rs, LlmTask), minus `none`.
TASK_CLASSES = ("chat", "extraction", "summary", "code")
DEFAULT_TIMEOUT_S = 30.0


class Llm:
    def __init__(self, plugin: str, environ: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT_S):
        env = os.environ if environ is None else environ
        self._plugin = plugin
        self._base = (env.get("WELLBEING_LLM_GATEWAY") or "").rstrip("/")
        self._token = env.get("WELLBEING_PLUGIN_TOKEN") or ""
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"Llm(gateway={self._base or None!r})"

    @property
    def available(self) -> bool:
        return bool(self._base and self._token)

    async def complete(self, task: str, prompt: str, *, max_tokens: int | None = None) -> str:
        """The assistant's reply text for `prompt`, using the model the gateway picks for `task`."""
        if task not in TASK_CLASSES:
            raise LlmError(f"unknown task class {task!r}; expected one of {', '.join(TASK_CLASSES)}")
        if not self.available:
            raise LlmUnavailable("no LLM gateway configured (WELLBEING_LLM_GATEWAY and WELLBEING_PLUGIN_TOKEN)")
        body: dict = {
            "model": f"task:{task}",
            "messages": [{"role": "user", "content": prompt}],
            "metadata": {"task": task, "plugin": self._plugin},
        }
        if max_tokens is not None:
            body["max_tokens"] = int(max_tokens)
        return await asyncio.to_thread(self._post, body)

    def _post(self, body: dict) -> str:
        request = urllib.request.Request(
            f"{self._base}/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as reply:
                payload = json.loads(reply.read())
        except urllib.error.HTTPError as e:
            raise LlmError(f"LLM gateway answered {e.code}: {_error_message(e)}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise LlmError(f"failed to reach the LLM gateway: {getattr(e, 'reason', e)}") from None
        except json.JSONDecodeError:
            raise LlmError("LLM gateway sent a body that is not JSON") from None
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LlmError("LLM gateway reply has no choices[0].message.content") from None
        return content if isinstance(content, str) else ""


def _error_message(e: urllib.error.HTTPError) -> str:
    """The gateway's `error.message` (OpenAI error shape), or the HTTP reason."""
    try:
        return str(json.loads(e.read())["error"]["message"])[:300]
    except Exception:  # noqa: BLE001 (any unreadable body falls back to the reason)
        return str(e.reason)


class CannedLlm:
    """Self-test stand-in: answers every prompt with the example's `llm_reply`."""

    def __init__(self, reply: str | None):
        self._reply = reply

    async def complete(self, task: str, prompt: str, *, max_tokens: int | None = None) -> str:
        if task not in TASK_CLASSES:
            raise LlmError(f"unknown task class {task!r}; expected one of {', '.join(TASK_CLASSES)}")
        if self._reply is None:
            raise LlmUnavailable("this example gives no llm_reply")
        return self._reply
