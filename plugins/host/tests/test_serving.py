"""The host as a real MCP server: a child over stdio, and streamable HTTP on loopback."""

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import HOST_DIR, HYDRATION, SLEEP
from mcp import Client
from mcp.client.stdio import StdioServerParameters


def stdio_params(module):
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(HOST_DIR)}
    return StdioServerParameters(
        command=sys.executable, args=["-m", "wellbeing_host", "--module", str(module), "--transport", "stdio"], env=env
    )


def test_stdio_lists_and_calls_the_hydration_tool():
    async def scenario():
        async with Client(stdio_params(HYDRATION)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == {"hydration", "hydration_match"}
            assert tools["hydration"].input_schema["properties"]["hours_since_water"]["maximum"] == 48
            result = await client.call_tool("hydration", {"text": "forgot to drink water all day", "now": "12:00"})
            assert not result.is_error
            assert result.structured_content["urgency"] == "high"
            bad = await client.call_tool("hydration", {"hours_since_water": "lots"})
            assert bad.is_error and "InvalidArguments" in bad.content[0].text

    asyncio.run(scenario())


def test_stdio_refuses_a_module_that_breaks_the_contract(tmp_path):
    bad = tmp_path / "v1.py"
    bad.write_text("name = 'x'\n")
    done = subprocess.run(
        [sys.executable, "-m", "wellbeing_host", "--module", str(bad), "--transport", "stdio"],
        cwd=HOST_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "failed to load plugin module: module-level 'description' is missing" in done.stderr
    assert done.stdout == ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wellbeing_host", "--module", str(SLEEP), "--transport", "http", "--port", str(port)],
        cwd=HOST_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"host exited: {proc.stderr.read().decode()}")
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("host did not listen within 20 s")
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(timeout=10)


def test_streamable_http_serves_the_sleep_planner(http_server):
    async def scenario():
        async with Client(http_server) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            assert names == ["sleep_winddown", "sleep_winddown_match"]
            result = await client.call_tool("sleep_winddown", {"bedtime": "22:30", "now": "21:45"})
            assert not result.is_error
            assert [step["time"] for step in result.structured_content["plan"]] == ["21:45", "22:00", "22:20", "22:30"]

    asyncio.run(scenario())


def test_http_port_and_path_come_from_the_operator_environment():
    port = free_port()
    env = dict(os.environ, WELLBEING_MCP_PORT=str(port), WELLBEING_MCP_PATH="/tools", PYTHONPATH=str(HOST_DIR))
    env["WELLBEING_PLUGIN_MODULE"] = str(HYDRATION)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wellbeing_host", "--transport", "http"],
        cwd=HOST_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "host did not listen"
                time.sleep(0.05)

        async def scenario():
            async with Client(f"http://127.0.0.1:{port}/tools") as client:
                assert [t.name for t in (await client.list_tools()).tools] == ["hydration", "hydration_match"]

        asyncio.run(scenario())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
