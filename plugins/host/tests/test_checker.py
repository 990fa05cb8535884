"""The checker: every rule rejects a module that breaks it, and the shipped plugins pass."""

import json
import subprocess
import sys

import pytest
from conftest import GOOD_HEADER, HOST_DIR, HYDRATION, SLEEP

from wellbeing_host import checker, selftest

GOOD_RUN = "async def run(c, l, s):\n    return {'echo': c.get('text', '')}\n"


def rules(source, allow=()):
    return [(v.rule, v.detail) for v in checker.check_source(source, list(allow))]


def test_a_clean_module_has_no_violations():
    assert rules(GOOD_HEADER + GOOD_RUN) == []


@pytest.mark.parametrize(
    "snippet, rule, detail",
    [
        ("def broken(:\n", "syntax", ""),
        ("import os\n", "import", "'os' is not allowed (file and process access)"),
        ("import subprocess\n", "import", "'subprocess'"),
        ("import socket\n", "import", "network access"),
        ("import sys\n", "import", "'sys'"),
        ("from importlib import import_module\n", "import", "'importlib'"),
        ("from pathlib import Path\n", "import", "'pathlib'"),
        ("import shutil\n", "import", "'shutil'"),
        ("import urllib.request\n", "import", "network access outside http_get"),
        ("import numpy\n", "import", "not in the allow-list"),
        ("from . import sibling\n", "import", "relative imports"),
        ("from json import *\n", "import", "star import"),
        ("import wellbeing_host\n", "import", "'wellbeing_host'"),
        ("x = eval('1')\n", "forbidden-call", "'eval'"),
        ("exec('x = 1')\n", "forbidden-call", "'exec'"),
        ("c = compile('1', 'f', 'eval')\n", "forbidden-call", "'compile'"),
        ("m = __import__('os')\n", "forbidden-call", "'__import__'"),
        ("f = open('/etc/passwd')\n", "forbidden-call", "'open'"),
        ("g = globals()\n", "forbidden-call", "'globals'"),
        ("e = eval\n", "forbidden-call", "'eval'"),
        ("v = getattr(object, '__subclasses__')\n", "forbidden-call", "literal attribute name"),
        ("n = 'x'\nv = getattr(object, n)\n", "forbidden-call", "literal attribute name"),
        ("setattr(object, '_x', 1)\n", "forbidden-call", "setattr"),
        ("k = ().__class__.__bases__\n", "dunder", "'__class__'"),
        ("b = __builtins__\n", "dunder", "'__builtins__'"),
        ("s = '{0.__class__}'.format(1)\n", "dunder", "format string"),
        ("from wellbeing_host.api import _set_egress_hosts\n", "dunder", "private host API"),
        ("from wellbeing_host import api\napi._set_egress_hosts(['x'])\n", "dunder", "private host API"),
    ],
)
def test_each_rule_rejects_a_bad_module(snippet, rule, detail):
    found = rules(GOOD_HEADER + GOOD_RUN + snippet)
    assert found, "expected a violation"
    assert {r for r, _ in found} == {rule}, found
    assert any(detail in d for _, d in found), found


NETWORK = """
egress_hosts = ["api.open-meteo.com"]
from wellbeing_host.api import http_get
async def run(c, l, s):
    r = await http_get({url})
    return {{"t": r.text}}
"""


@pytest.mark.parametrize(
    "url, allow, detail",
    [
        ('"https://evil.example/steal"', ["api.open-meteo.com"], "'evil.example', which the manifest does not allow"),
        ('"https://api.open-meteo.com/v1"', [], "egress_hosts declares 'api.open-meteo.com'"),
        ('f"https://{c[\'host\']}/v1"', ["api.open-meteo.com"], "computed host"),
    ],
)
def test_network_rule(url, allow, detail):
    source = GOOD_HEADER.replace("examples = ", "examples_unused = ") + "examples = []\n" + NETWORK.format(url=url)
    found = rules(source, allow)
    assert any(r == "network" and detail in d for r, d in found), found


def test_declared_literal_url_passes_the_network_rule():
    source = GOOD_HEADER + NETWORK.format(url='f"https://api.open-meteo.com/v1/forecast?lat={c[\'lat\']}"')
    assert rules(source, ["api.open-meteo.com"]) == []


def test_undeclared_egress_hosts_and_egress_beyond_manifest():
    source = GOOD_HEADER + "egress_hosts = ['a.example', 'b.example']\n" + GOOD_RUN
    found = rules(source, ["a.example"])
    assert found == [("network", "egress_hosts declares 'b.example', which the manifest does not allow")]


# Fake credentials, built by concatenation so the source of this test is not itself a finding.
FAKES = {
    "slack-token": "xox" + "b-123456789012-abcdefghijklmnop",
    "openai-key": "sk-" + "proj-abcdefghijklmnopqrstuvwx1234",
    "github-token": "gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "github-fine-grained-token": "github" + "_pat_11ABCDEFG0123456789_abcdefghij",
    "google-api-key": "AI" + "za" + "SyA1234567890abcdefghijklmnopqrstuv",
    "aws-access-key-id": "AK" + "IA" + "ABCDEFGHIJKLMNOP",
    "jwt": "ey" + "JhbGciOiJIUzI1NiJ9.ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "high-entropy-string": "Zq8" + "x2LmN9vR4tY7wK1pB6cJ3hF5dG0sA8eQ",
}


@pytest.mark.parametrize("detector", sorted(FAKES))
def test_credential_rule(detector):
    found = rules(GOOD_HEADER + GOOD_RUN + f"TOKEN = {FAKES[detector]!r}\n")
    assert ("credential", f"hard-coded credential ({detector})") in found, found


def test_hex_digests_and_ordinary_text_are_not_credentials():
    assert checker.find_credentials("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == []
    assert checker.find_credentials("Drink a glass of water and take a short walk outside") == []
    assert checker.find_credentials("task-list-for-the-morning-routine-and-evening") == []


def test_missing_contract_names():
    found = rules("import json\n")
    assert {r for r, _ in found} == {"contract"}
    assert any("'input_schema'" in d for _, d in found)
    assert any("async def run" in d for _, d in found)


def check_file(write_module, body, **kw):
    path = write_module(body)
    return checker.check(str(path), [], **kw)


def test_failing_example_is_the_examples_rule(write_module):
    report = check_file(write_module, "async def run(c, l, s):\n    return {'echo': 'wrong'}\n")
    assert not report["ok"] and report["rule"] == "examples"
    assert "output.echo does not contain 'hi'" in report["detail"]


def test_examples_run_under_a_memory_limit(write_module):
    body = "async def run(c, l, s):\n    block = 'x' * (1024 * 1024 * 1024)\n    return {'echo': 'hi'}\n"
    report = check_file(write_module, body, memory_mb=200)
    assert not report["ok"] and report["rule"] == "examples"
    assert "MemoryError" in report["detail"] or "memory" in report["detail"]


def test_examples_run_under_a_time_limit(write_module):
    # A busy loop: the per-example asyncio timeout cannot interrupt it, the process limits must.
    body = "async def run(c, l, s):\n    while True:\n        pass\n"
    report = check_file(write_module, body, timeout_s=2)
    assert not report["ok"] and report["rule"] == "examples"
    assert "2 s" in report["detail"] or "signal" in report["detail"]


def test_sandbox_has_no_assistant_environment(write_module, monkeypatch):
    monkeypatch.setenv("WELLBEING_PLUGIN_TOKEN", "do-not-leak")
    body = (
        "required_secrets = ['gateway']\n"
        "async def run(c, l, s):\n    return {'echo': s.get('gateway') or 'hi'}\n"
    )
    monkeypatch.setenv("GATEWAY", "do-not-leak")
    assert check_file(write_module, body)["ok"]


@pytest.mark.parametrize("plugin", [HYDRATION, SLEEP], ids=["hydration", "sleep-winddown"])
def test_shipped_plugins_pass_the_checker_cli(plugin):
    done = subprocess.run(
        [sys.executable, "-m", "wellbeing_host", "check", "--module", str(plugin)],
        cwd=HOST_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    assert done.returncode == 0, report
    assert report["ok"] and report["examples"]["ok"] and len(report["examples"]["examples"]) >= 3


def test_checker_cli_exits_1_with_the_rule(write_module):
    path = write_module(GOOD_RUN + "import os\n")
    done = subprocess.run(
        [sys.executable, "-m", "wellbeing_host", "check", "--module", str(path)],
        cwd=HOST_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["rule"] == "import" and report["violations"][0]["line"] > 0


@pytest.mark.parametrize(
    "expect, got, ok",
    [
        ({"a": {"$min": 2}}, {"a": 3}, True),
        ({"a": {"$min": 2}}, {"a": 1}, False),
        ({"a": {"$type": "int"}}, {"a": True}, False),
        ({"a": [{"b": 1}]}, {"a": [{"b": 1, "c": 2}]}, True),
        ({"a": [1, 2]}, {"a": [1]}, False),
        ("GLASS", {"s": "a glass of water"}, True),
        (1, True, False),
    ],
)
def test_expect_matching(expect, got, ok):
    assert (selftest.mismatch(expect, got) is None) == ok
