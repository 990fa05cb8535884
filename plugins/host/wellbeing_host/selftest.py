"""Running a plugin's `examples` in a child process with a time and memory limit.

The parent (`selftest`) never imports the plugin: a generated module is untrusted until it has
passed, so it runs in a child with RLIMIT_AS (memory), RLIMIT_CPU (CPU seconds), RLIMIT_FSIZE 0
(no file writes), a wall-clock timeout, an empty working directory, and an environment without
the assistant's variables (no gateway token, no secrets).

`expect` is matched against the output like this:
- a string: the output (JSON text for a dict) must contain it, ignoring case;
- a dict: the output must be a dict with every key of `expect`, each value matching recursively;
  a value that is itself a one-key dict with an operator checks instead of comparing:
  {"$contains": s}, {"$type": "str|int|float|number|bool|list|dict"}, {"$min": n}, {"$max": n},
  {"$len_min": n}, {"$len_max": n}, {"$any": true} (present, any value);
- a list: the output must be a list of the same length, item by item matching recursively;
- anything else: equality (of the same type: 1 does not match True).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 20.0
DEFAULT_MEMORY_MB = 512
# Per-example wall clock inside the child; the parent's timeout covers the whole run.
EXAMPLE_TIMEOUT_S = 5.0

_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": float,
    "number": (int, float),
    "bool": bool,
    "list": list,
    "dict": dict,
}


def mismatch(expect: Any, got: Any, where: str = "output") -> str | None:
    """Why `got` does not meet `expect`, or None when it does."""
    if isinstance(expect, str):
        text = got if isinstance(got, str) else json.dumps(got, ensure_ascii=False)
        return None if expect.lower() in text.lower() else f"{where} does not contain {expect!r}"
    if isinstance(expect, dict):
        if len(expect) == 1 and next(iter(expect)).startswith("$"):
            return _operator(next(iter(expect)), next(iter(expect.values())), got, where)
        if not isinstance(got, dict):
            return f"{where} should be an object, got {type(got).__name__}"
        for key, sub in expect.items():
            if key not in got:
                return f"{where}.{key} is missing"
            reason = mismatch(sub, got[key], f"{where}.{key}")
            if reason:
                return reason
        return None
    if isinstance(expect, list):
        if not isinstance(got, list) or len(got) != len(expect):
            return f"{where} should be a list of {len(expect)}, got {_describe(got)}"
        for i, (sub, item) in enumerate(zip(expect, got)):
            reason = mismatch(sub, item, f"{where}[{i}]")
            if reason:
                return reason
        return None
    return None if expect == got and type(expect) is type(got) else f"{where} is {got!r}, expected {expect!r}"


def _describe(value: Any) -> str:
    return f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__


def _operator(op: str, arg: Any, got: Any, where: str) -> str | None:
    if op == "$any":
        return None
    if op == "$contains":
        text = got if isinstance(got, str) else json.dumps(got, ensure_ascii=False)
        return None if str(arg).lower() in text.lower() else f"{where} does not contain {arg!r}"
    if op == "$type":
        kind = _TYPES.get(str(arg))
        if kind is None:
            return f"unknown $type {arg!r}"
        ok = isinstance(got, kind) and not (isinstance(got, bool) and arg in ("int", "float", "number"))
        return None if ok else f"{where} should be {arg}, got {type(got).__name__}"
    if op in ("$min", "$max"):
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return f"{where} should be a number, got {type(got).__name__}"
        ok = got >= arg if op == "$min" else got <= arg
        return None if ok else f"{where} is {got}, expected {'>=' if op == '$min' else '<='} {arg}"
    if op in ("$len_min", "$len_max"):
        if not hasattr(got, "__len__"):
            return f"{where} has no length"
        ok = len(got) >= arg if op == "$len_min" else len(got) <= arg
        return None if ok else f"{where} has length {len(got)}, expected {'>=' if op == '$len_min' else '<='} {arg}"
    return f"unknown operator {op!r}"


async def _run_examples(path: str) -> dict[str, Any]:
    from wellbeing_host import loader
    from wellbeing_host.errors import HostError
    from wellbeing_host.llm import CannedLlm
    from wellbeing_host.secrets import Secrets

    try:
        plugin = loader.load(path)
    except HostError as e:
        return {"ok": False, "reason": str(e), "examples": []}
    if not plugin.examples:
        return {"ok": False, "reason": "the module has no examples", "examples": []}
    results = []
    for i, example in enumerate(plugin.examples):
        started = time.perf_counter()
        llm = CannedLlm(example.get("llm_reply"))
        secrets = Secrets(plugin.required_secrets, fixed=example.get("secrets") or {})
        try:
            got = await asyncio.wait_for(loader.invoke(plugin, example["input"], llm, secrets), EXAMPLE_TIMEOUT_S)
            reason = mismatch(example["expect"], got)
        except asyncio.TimeoutError:
            reason = f"did not finish within {EXAMPLE_TIMEOUT_S:g} s"
        except Exception as e:  # noqa: BLE001 (every failure of an example is reported, not raised)
            reason = secrets.scrub(f"{type(e).__name__}: {e}")
        results.append(
            {"index": i, "ok": reason is None, "reason": reason, "ms": round((time.perf_counter() - started) * 1000, 1)}
        )
    failed = [r for r in results if not r["ok"]]
    return {
        "ok": not failed,
        "reason": f"example {failed[0]['index']}: {failed[0]['reason']}" if failed else None,
        "examples": results,
    }


def child_main(path: str) -> int:
    """Entry point inside the sandbox: prints one JSON report line."""
    report = asyncio.run(_run_examples(path))
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0 if report["ok"] else 1


# `-I` (isolated mode) ignores PYTHON* variables and the user's site-packages, so the host's
# directory is put on sys.path explicitly; `-B` writes no bytecode (RLIMIT_FSIZE is 0 anyway).
_CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from wellbeing_host.selftest import child_main; sys.exit(child_main(sys.argv[2]))"
)


def _limits(memory_mb: int, cpu_s: int):
    def apply() -> None:
        memory = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()

    return apply


def selftest(path: str, timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB) -> dict[str, Any]:
    """Run the module's examples in a limited child; the child's report plus how it ended."""
    path = str(Path(path).resolve())
    host_root = str(Path(__file__).resolve().parent.parent)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
    }
    with tempfile.TemporaryDirectory(prefix="wellbeing-selftest-") as cwd:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-B", "-c", _CHILD, host_root, path],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                preexec_fn=_limits(memory_mb, max(1, int(timeout_s))),
            )
        except subprocess.TimeoutExpired:
            return {"ok": False, "reason": f"examples did not finish within {timeout_s:g} s", "examples": []}
    last = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else []
    if last:
        try:
            return json.loads(last[0])
        except json.JSONDecodeError:
            pass
    if done.returncode < 0:
        reason = f"examples process killed by signal {-done.returncode} (time or memory limit)"
    else:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        reason = f"examples process failed (exit {done.returncode}): {tail[0][:300]}"
        if "MemoryError" in done.stderr:
            reason = f"examples exceeded the memory limit of {memory_mb} MiB"
    return {"ok": False, "reason": reason, "examples": []}
