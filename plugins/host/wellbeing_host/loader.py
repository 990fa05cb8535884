"""Loading one plugin module and running it: the contract of plugins/README.md in code."""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from wellbeing_host import api
from wellbeing_host.errors import ContractError, HostError

# Tool names as MCP and OpenAI accept them (OpenAI: ^[a-zA-Z0-9_-]{1,64}$).
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_SECRET_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")


class InvalidOutput(HostError):
    """`run` returned something that is neither a JSON object nor a string."""


class InvalidArguments(HostError):
    """The arguments do not match the plugin's `input_schema`."""


@dataclass
class Plugin:
    name: str
    description: str
    input_schema: dict[str, Any]
    required_secrets: list[str]
    run: Callable[..., Any]
    match: Callable[[dict[str, Any]], bool] | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    egress_hosts: list[str] = field(default_factory=list)
    path: str = ""


def load(path: str | Path) -> Plugin:
    """Import the module at `path` and check it against the contract. Raises ContractError."""
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"plugin module {str(path)!r} does not exist")
    module_name = "wellbeing_plugin_" + re.sub(r"[^a-zA-Z0-9_]", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ContractError(f"cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except HostError:
        raise
    except Exception as e:  # noqa: BLE001 (any import failure is a contract failure of the module)
        raise ContractError(f"importing {path.name} failed: {type(e).__name__}: {e}") from e
    plugin = from_module(module)
    plugin.path = str(path)
    api._set_egress_hosts(plugin.egress_hosts)
    return plugin


def from_module(module: Any) -> Plugin:
    def attr(name: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
        if not hasattr(module, name):
            if required:
                raise ContractError(f"module-level {name!r} is missing")
            return None
        value = getattr(module, name)
        if not isinstance(value, kind):
            raise ContractError(f"{name!r} must be a {_kind_name(kind)}, not {type(value).__name__}")
        return value

    name = attr("name", str)
    if not _TOOL_NAME.match(name):
        raise ContractError(f"name {name!r} must be 1-64 letters, digits, '_' or '-'")
    description = attr("description", str)
    if not description.strip():
        raise ContractError("description must not be empty")
    input_schema = attr("input_schema", dict)
    _check_schema(input_schema)
    required_secrets = attr("required_secrets", (list, tuple))
    for s in required_secrets:
        if not isinstance(s, str) or not _SECRET_NAME.match(s):
            raise ContractError(f"required_secrets entry {s!r} must be letters, digits, '-' or '_'")
    run = attr("run", object)
    if not inspect.iscoroutinefunction(run):
        raise ContractError("run must be an async function: async def run(context, llm, secrets)")
    if len(inspect.signature(run).parameters) != 3:
        raise ContractError("run must take exactly (context, llm, secrets)")
    match = attr("match", object, required=False)
    if match is not None and not callable(match):
        raise ContractError("match must be a function: def match(context) -> bool")
    examples = attr("examples", (list, tuple), required=False) or []
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict) or "input" not in ex or "expect" not in ex:
            raise ContractError(f"examples[{i}] must be a dict with 'input' and 'expect'")
    egress = attr("egress_hosts", (list, tuple), required=False) or []
    if not all(isinstance(h, str) and h and "/" not in h for h in egress):
        raise ContractError("egress_hosts must be a list of host names")
    return Plugin(
        name=name,
        description=description.strip(),
        input_schema=input_schema,
        required_secrets=list(required_secrets),
        run=run,
        match=match,
        examples=list(examples),
        egress_hosts=list(egress),
    )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _check_schema(schema: dict[str, Any]) -> None:
    import jsonschema

    if schema.get("type") != "object":
        raise ContractError("input_schema must be a JSON schema with type 'object'")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ContractError(f"input_schema is not a valid JSON schema: {e.message}") from None


def validate_arguments(plugin: Plugin, arguments: dict[str, Any]) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(plugin.input_schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise InvalidArguments(f"argument {where}: {error.message}")


async def invoke(plugin: Plugin, arguments: dict[str, Any], llm: Any, secrets: Any) -> dict[str, Any] | str:
    """Validate, run, and check the output shape. Exceptions from `run` propagate."""
    validate_arguments(plugin, arguments)
    result = await plugin.run(arguments, llm, secrets)
    return check_output(result)


def check_output(result: Any) -> dict[str, Any] | str:
    if isinstance(result, str):
        return result
    if isinstance(result, dict):
        try:
            # Round trip: what the caller gets is exactly what JSON can carry.
            return json.loads(json.dumps(result, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise InvalidOutput(f"run returned a dict that is not JSON: {e}") from None
    raise InvalidOutput(f"run must return a dict or a str, not {type(result).__name__}")


def matches(plugin: Plugin, context: dict[str, Any]) -> bool:
    """The plugin's `match(context)`, or True when it has none (triggers decide then)."""
    if plugin.match is None:
        return True
    return bool(plugin.match(context))
