"""Command line: serve a plugin, self-test its examples, or check a generated module.

    python -m wellbeing_host --module plugins/hydration/v1.py --transport stdio
    python -m wellbeing_host --module plugins/hydration/v1.py --transport http --port 8000
    python -m wellbeing_host selftest --module plugins/hydration/v1.py
    python -m wellbeing_host check --module new.py --allow-host api.example.com
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

from wellbeing_host import selftest


def _serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m wellbeing_host", description="Serve one plugin as MCP tools.")
    parser.add_argument("--module", default=os.environ.get("WELLBEING_PLUGIN_MODULE"), required=False)
    parser.add_argument("--transport", choices=("stdio", "http"), default=os.environ.get("WELLBEING_TRANSPORT", "stdio"))
    parser.add_argument("--host", default=os.environ.get("WELLBEING_BIND", "127.0.0.1"), help="bind address (http)")
    # WELLBEING_MCP_PORT / WELLBEING_MCP_PATH are what the operator sets on plugin Deployments.
    port = os.environ.get("WELLBEING_MCP_PORT") or os.environ.get("WELLBEING_PORT") or "8000"
    parser.add_argument("--port", type=int, default=int(port))
    parser.add_argument(
        "--path", default=os.environ.get("WELLBEING_MCP_PATH") or "/mcp", help="HTTP path of the MCP endpoint"
    )
    args = parser.parse_args(argv)
    if not args.module:
        parser.error("--module (or WELLBEING_PLUGIN_MODULE) is required")

    from wellbeing_host import loader, server
    from wellbeing_host.errors import HostError

    try:
        plugin = loader.load(args.module)
    except HostError as e:
        print(f"failed to load plugin module: {e}", file=sys.stderr)
        return 2
    host = server.Host(plugin)
    if args.transport == "stdio":
        asyncio.run(server.serve_stdio(host))
    else:
        server.serve_http(host, args.host, args.port, args.path)
    return 0


def _selftest(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m wellbeing_host selftest")
    parser.add_argument("--module", required=True)
    parser.add_argument("--timeout", type=float, default=selftest.DEFAULT_TIMEOUT_S, help="seconds for all examples")
    parser.add_argument("--memory-mb", type=int, default=selftest.DEFAULT_MEMORY_MB)
    args = parser.parse_args(argv)
    report = selftest.selftest(args.module, timeout_s=args.timeout, memory_mb=args.memory_mb)
    print(json.dumps(report, indent=2))
    return 0 if report.get("ok") else 1


def _check(argv: list[str]) -> int:
    from wellbeing_host import checker

    parser = argparse.ArgumentParser(prog="python -m wellbeing_host check")
    parser.add_argument("--module", required=True)
    parser.add_argument("--allow-host", action="append", default=[], help="a host the manifest allows (repeatable)")
    parser.add_argument("--no-examples", action="store_true", help="static checks only")
    parser.add_argument("--timeout", type=float, default=selftest.DEFAULT_TIMEOUT_S)
    parser.add_argument("--memory-mb", type=int, default=selftest.DEFAULT_MEMORY_MB)
    args = parser.parse_args(argv)
    report = checker.check(
        args.module,
        args.allow_host,
        run_examples=not args.no_examples,
        timeout_s=args.timeout,
        memory_mb=args.memory_mb,
    )
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Logs go to stderr: on the stdio transport stdout carries the protocol.
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("WELLBEING_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if argv and argv[0] == "selftest":
        return _selftest(argv[1:])
    if argv and argv[0] == "check":
        return _check(argv[1:])
    if argv and argv[0] == "serve":
        argv = argv[1:]
    return _serve(argv)


if __name__ == "__main__":
    sys.exit(main())
