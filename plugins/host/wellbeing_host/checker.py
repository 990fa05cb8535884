"""Static and sandboxed checks a generated plugin must pass before it is written to plugins/.

Each violation names the rule it broke, so the generator can feed the reason back to the model:
  syntax          the module does not parse
  contract        a module-level name of the contract is missing or has the wrong shape
  import          a module outside the allow-list is imported
  forbidden-call  eval/exec/compile/__import__/open/... or getattr-style access by computed name
  dunder          a dunder name or attribute (also inside format strings), or a private host API name
  network         an http_get URL whose host is not declared, or egress_hosts beyond --allow-host
  credential      a hard-coded credential (the detectors of credential_patterns.json)
  examples        the module's examples fail in the sandboxed child (time and memory limited)
"""

from __future__ import annotations

import ast
import json
import math
import re
import urllib.parse
from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from wellbeing_host import selftest

# Standard-library modules for data, time, text and maths, and the host's API. Nothing here can
# touch files, processes or the network.
ALLOWED_IMPORTS = frozenset(
    {
        "__future__",
        "bisect",
        "calendar",
        "collections",
        "collections.abc",
        "copy",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "fractions",
        "functools",
        "heapq",
        "itertools",
        "json",
        "math",
        "operator",
        "random",
        "re",
        "statistics",
        "string",
        "textwrap",
        "typing",
        "zoneinfo",
        "wellbeing_host.api",
    }
)

# Named so the report says why, beyond "not in the allow-list".
DANGEROUS_MODULES = {
    "os": "file and process access",
    "subprocess": "process access",
    "socket": "network access",
    "sys": "interpreter access",
    "importlib": "dynamic imports",
    "pathlib": "file access",
    "shutil": "file access",
    "urllib": "network access outside http_get",
    "http": "network access outside http_get",
    "requests": "network access outside http_get",
    "ctypes": "memory access",
    "pickle": "code execution",
    "builtins": "access to builtins",
}

FORBIDDEN_BUILTINS = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "__import__",
        "open",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "input",
        "exit",
        "quit",
        "memoryview",
        "help",
    }
)
NAME_ACCESS_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
CONTRACT_NAMES = ("name", "description", "input_schema", "required_secrets")
_FORMAT_DUNDER = re.compile(r"\{[^{}]*(\.|\[)_[^{}]*\}")


@dataclass
class Violation:
    rule: str
    detail: str
    line: int = 0


@lru_cache(maxsize=1)
def credential_detectors() -> tuple[list[tuple[str, re.Pattern[str]]], dict[str, Any]]:
    data = json.loads((Path(__file__).resolve().parent.parent / "credential_patterns.json").read_text())
    patterns = [(p["name"], re.compile(p["regex"])) for p in data["patterns"]]
    return patterns, data["high_entropy"]


def entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def find_credentials(text: str) -> list[str]:
    """Names of the detectors that fire on `text` (each once)."""
    patterns, high = credential_detectors()
    found = [name for name, regex in patterns if regex.search(text)]
    for token in re.findall(high["token_regex"], text):
        if (
            len(token) >= high["min_length"]
            and entropy(token) >= high["min_bits_per_char"]
            and re.search(r"[A-Za-z]", token)
            and re.search(r"[0-9]", token)
        ):
            found.append("high-entropy-string")
            break
    return found


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


class _Visitor(ast.NodeVisitor):
    def __init__(self, allow_hosts: set[str], declared_hosts: set[str] | None):
        self.allow_hosts = allow_hosts
        self.declared_hosts = declared_hosts
        self.violations: list[Violation] = []
        self.api_aliases: set[str] = set()  # names bound to the wellbeing_host.api module
        self.http_get_names: set[str] = {"http_get"}

    def add(self, rule: str, detail: str, node: ast.AST) -> None:
        self.violations.append(Violation(rule, detail, getattr(node, "lineno", 0)))

    def _check_module(self, module: str, node: ast.AST) -> bool:
        if module in ALLOWED_IMPORTS:
            return True
        top = module.split(".")[0]
        why = DANGEROUS_MODULES.get(top)
        detail = f"import of {module!r} is not allowed" + (f" ({why})" if why else " (not in the allow-list)")
        self.add("import", detail, node)
        return False

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self._check_module(alias.name, node) and alias.name == "wellbeing_host.api":
                if alias.asname:
                    self.api_aliases.add(alias.asname)
                else:
                    self.add("import", "import wellbeing_host.api as a name (from wellbeing_host import api)", node)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.add("import", "relative imports are not allowed", node)
            return
        module = node.module or ""
        if module == "wellbeing_host" and all(a.name == "api" for a in node.names):
            for a in node.names:
                self.api_aliases.add(a.asname or "api")
            return
        if not self._check_module(module, node):
            return
        for alias in node.names:
            if alias.name == "*":
                self.add("import", f"star import from {module!r} is not allowed", node)
            elif module == "wellbeing_host.api":
                if alias.name.startswith("_"):
                    self.add("dunder", f"private host API name {alias.name!r}", node)
                elif alias.name == "http_get":
                    self.http_get_names.add(alias.asname or alias.name)
            elif module == "__future__":
                continue
            elif _dunder(alias.name):
                self.add("dunder", f"import of dunder name {alias.name!r}", node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_BUILTINS:
            self.add("forbidden-call", f"{node.id!r} is not allowed", node)
        elif _dunder(node.id):
            self.add("dunder", f"dunder name {node.id!r}", node)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _dunder(node.attr):
            self.add("dunder", f"dunder attribute {node.attr!r}", node)
        elif isinstance(node.value, ast.Name) and node.value.id in self.api_aliases and node.attr.startswith("_"):
            self.add("dunder", f"private host API name {node.attr!r}", node)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _FORMAT_DUNDER.search(node.value):
            self.add("dunder", "format string reaching an underscore attribute", node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in NAME_ACCESS_BUILTINS:
            name = node.args[1] if len(node.args) > 1 else None
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str) and not name.value.startswith("_")):
                self.add("forbidden-call", f"{func.id} needs a literal attribute name without underscores", node)
        is_http_get = (isinstance(func, ast.Name) and func.id in self.http_get_names) or (
            isinstance(func, ast.Attribute)
            and func.attr == "http_get"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.api_aliases
        )
        if is_http_get and node.args:
            self._check_url(node.args[0], node)
        self.generic_visit(node)

    def _check_url(self, arg: ast.AST, node: ast.AST) -> None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            literal = arg.value
        elif isinstance(arg, ast.JoinedStr):
            first = arg.values[0] if arg.values else None
            literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
            rest = literal.split("://", 1)[1] if "://" in literal else ""
            if "/" not in rest:
                self.add("network", "http_get URL built with a computed host; write the host literally", node)
                return
        else:
            return  # computed URLs are checked at run time against egress_hosts
        host = (urllib.parse.urlsplit(literal).hostname or "").lower()
        if not host:
            self.add("network", f"http_get URL {literal[:80]!r} has no host", node)
        elif host not in self.allow_hosts:
            self.add("network", f"http_get to {host!r}, which the manifest does not allow", node)
        elif self.declared_hosts is not None and host not in self.declared_hosts:
            self.add("network", f"http_get to {host!r}, which the module's egress_hosts does not declare", node)


def _module_assignments(tree: ast.Module) -> dict[str, ast.AST]:
    found: dict[str, ast.AST] = {}
    for stmt in tree.body:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
            value = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets = [stmt.target]
            value = stmt.value
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[stmt.name] = stmt
            continue
        for t in targets:
            if isinstance(t, ast.Name):
                found[t.id] = value
    return found


def check_source(source: str, allow_hosts: list[str], filename: str = "<plugin>") -> list[Violation]:
    """Every static violation in `source`; empty when the module may go on to its examples."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        return [Violation("syntax", f"{e.msg}", e.lineno or 0)]
    violations: list[Violation] = []
    names = _module_assignments(tree)
    for required in CONTRACT_NAMES:
        if required not in names:
            violations.append(Violation("contract", f"module-level {required!r} is missing"))
    run = names.get("run")
    if not isinstance(run, ast.AsyncFunctionDef):
        violations.append(Violation("contract", "async def run(context, llm, secrets) is missing"))
    elif len(run.args.args) != 3:
        violations.append(Violation("contract", "run must take exactly (context, llm, secrets)", run.lineno))
    if "examples" not in names:
        violations.append(Violation("contract", "module-level 'examples' is missing (needed for the self-test)"))

    allowed = {h.lower() for h in allow_hosts}
    declared: set[str] | None = set()
    egress = names.get("egress_hosts")
    if egress is not None:
        try:
            hosts = ast.literal_eval(egress)
            declared = {str(h).lower() for h in hosts}
        except ValueError:
            violations.append(Violation("network", "egress_hosts must be a literal list of host names"))
            declared = None
        for h in sorted(declared or ()):
            if h not in allowed:
                violations.append(Violation("network", f"egress_hosts declares {h!r}, which the manifest does not allow"))

    visitor = _Visitor(allowed, declared)
    visitor.visit(tree)
    violations.extend(visitor.violations)

    for lineno, line in enumerate(source.splitlines(), start=1):
        for detector in find_credentials(line):
            violations.append(Violation("credential", f"hard-coded credential ({detector})", lineno))
    return violations


def check(
    path: str,
    allow_hosts: list[str],
    run_examples: bool = True,
    timeout_s: float = selftest.DEFAULT_TIMEOUT_S,
    memory_mb: int = selftest.DEFAULT_MEMORY_MB,
) -> dict[str, Any]:
    """The JSON report of `python -m wellbeing_host check`."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return {"ok": False, "module": path, "rule": "syntax", "detail": f"cannot read module: {e}", "violations": []}
    violations = check_source(source, allow_hosts, filename=path)
    report: dict[str, Any] = {"module": path, "violations": [asdict(v) for v in violations]}
    if not violations and run_examples:
        examples = selftest.selftest(path, timeout_s=timeout_s, memory_mb=memory_mb)
        report["examples"] = examples
        if not examples.get("ok"):
            violations.append(Violation("examples", str(examples.get("reason") or "examples failed")))
            report["violations"] = [asdict(v) for v in violations]
    report["ok"] = not violations
    report["rule"] = violations[0].rule if violations else None
    report["detail"] = violations[0].detail if violations else None
    return report
