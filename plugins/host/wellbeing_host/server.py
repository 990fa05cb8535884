"""Serving a loaded plugin as MCP tools, over stdio (embedded mode) or streamable HTTP (cluster).

This uses the SDK's low-level `Server` rather than `MCPServer`: `MCPServer` derives a tool's input
schema from a Python signature, while the plugin contract declares its schema as a JSON schema
dict, which the low-level server advertises verbatim.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server

from wellbeing_host import __version__, loader
from wellbeing_host.errors import HostError
from wellbeing_host.llm import Llm
from wellbeing_host.secrets import Secrets

log = logging.getLogger("wellbeing_host")

# Host-side ceiling on one call. The assistant's own timeout (10 s by default) is shorter; this
# one stops a plugin that awaits forever from piling up work when the caller has gone.
DEFAULT_CALL_TIMEOUT_S = 30.0

# `_meta` key telling the assistant what a tool is for: "run" tools are offered to the LLM,
# the "match" tool answers whether the plugin is relevant to a check-in (no-LLM mode).
ROLE_KEY = "dev.wellbeing/role"

MATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "The user's message"},
        "pillars": {"type": "array", "items": {"type": "string"}, "description": "Pillars the message touches"},
    },
    "required": ["text"],
}


def match_tool_name(plugin: loader.Plugin) -> str:
    return f"{plugin.name}_match"


class Host:
    """The plugin, its LLM client and secrets, and the MCP handlers around them."""

    def __init__(self, plugin: loader.Plugin, environ: dict[str, str] | None = None):
        env = dict(os.environ if environ is None else environ)
        self.plugin = plugin
        self.llm = Llm(plugin.name, env)
        self.secrets = Secrets(plugin.required_secrets, env)
        self.call_timeout = float(env.get("WELLBEING_PLUGIN_TIMEOUT") or DEFAULT_CALL_TIMEOUT_S)

    def tools(self) -> list[types.Tool]:
        p = self.plugin
        tools = [types.Tool(name=p.name, description=p.description, input_schema=p.input_schema, meta={ROLE_KEY: "run"})]
        if p.match is not None:
            tools.append(
                types.Tool(
                    name=match_tool_name(p),
                    description=f"Whether {p.name} is relevant to a message (returns {{match: bool}}).",
                    input_schema=MATCH_SCHEMA,
                    meta={ROLE_KEY: "match"},
                )
            )
        return tools

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        started = time.perf_counter()
        outcome = "error"
        try:
            if name == self.plugin.name:
                coro = loader.invoke(self.plugin, arguments, self.llm, self.secrets)
            elif self.plugin.match is not None and name == match_tool_name(self.plugin):
                coro = self._match(arguments)
            else:
                return _error(f"unknown tool {name!r}")
            result = await asyncio.wait_for(coro, self.call_timeout)
            outcome = "ok"
            return self._result(result)
        except asyncio.TimeoutError:
            outcome = "timeout"
            return _error(f"plugin did not finish within {self.call_timeout:g} s")
        except HostError as e:
            return _error(self.secrets.scrub(f"{type(e).__name__}: {e}"))
        except Exception as e:  # noqa: BLE001 (a crashing plugin is reported, never fatal to the host)
            log.warning("plugin raised", extra={"tool": name, "exception": type(e).__name__})
            return _error(self.secrets.scrub(f"plugin failed: {type(e).__name__}: {e}"))
        finally:
            # Tool name, outcome and time only: arguments carry the user's words.
            log.info(
                "tool call tool=%s outcome=%s duration_ms=%.1f", name, outcome, (time.perf_counter() - started) * 1000
            )

    async def _match(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(arguments.get("text"), str):
            raise loader.InvalidArguments("argument text: a string is required")
        return {"match": loader.matches(self.plugin, arguments)}

    def _result(self, result: dict[str, Any] | str) -> types.CallToolResult:
        if isinstance(result, str):
            return types.CallToolResult(content=[types.TextContent(type="text", text=self.secrets.scrub(result))])
        text = self.secrets.scrub(json.dumps(result, ensure_ascii=False))
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)], structured_content=json.loads(text)
        )

    def server(self) -> Server:
        async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
            return types.ListToolsResult(tools=self.tools())

        async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            return await self.call(params.name, dict(params.arguments or {}))

        return Server(
            f"wellbeing-plugin-{self.plugin.name}",
            version=__version__,
            description=self.plugin.description,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            get_tool_input_schema=lambda name: self.plugin.input_schema if name == self.plugin.name else None,
        )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


async def serve_stdio(host: Host) -> None:
    from mcp.server.stdio import stdio_server

    server = host.server()
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def serve_http(host: Host, bind: str, port: int, path: str = "/mcp") -> None:
    import uvicorn

    app = host.server().streamable_http_app(streamable_http_path=path, host=bind)
    uvicorn.run(app, host=bind, port=port, log_level="warning", access_log=False)
