"""Secrets by name, for the names a plugin declared and no others.

Where a value comes from, first match wins:
1. the env variable named by `WELLBEING_SECRET_ENV_<NAME>` (the operator sets this from the
   Plugin's `requiredSecrets[].env`),
2. the env variable `<NAME>`,
3. the file `<WELLBEING_SECRETS_DIR or /var/run/secrets/wellbeing>/<name>` (a mounted Secret).
`<NAME>` is the secret name in upper snake case (`slack-token` -> `SLACK_TOKEN`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from wellbeing_host.errors import SecretMissing, SecretNotDeclared

DEFAULT_SECRETS_DIR = "/var/run/secrets/wellbeing"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def env_name(secret: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", secret).upper()


class Secrets:
    """What a plugin's `run` receives as `secrets`: `secrets["name"]` or `secrets.get("name")`.

    Values handed out are remembered so the host can scrub them from anything it sends back or
    logs. `repr` shows names only.
    """

    def __init__(
        self,
        declared: list[str] | tuple[str, ...],
        environ: Mapping[str, str] | None = None,
        directory: str | None = None,
        fixed: Mapping[str, str] | None = None,
    ) -> None:
        self._declared = tuple(declared)
        self._environ = os.environ if environ is None else environ
        self._dir = Path(directory or self._environ.get("WELLBEING_SECRETS_DIR") or DEFAULT_SECRETS_DIR)
        # `fixed` stands in for the store in self-tests, where examples bring fake values.
        self._fixed = dict(fixed) if fixed is not None else None
        self._handed_out: set[str] = set()

    def __repr__(self) -> str:
        return f"Secrets(declared={list(self._declared)!r})"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._declared

    def __getitem__(self, name: str) -> str:
        value = self._lookup(name)
        if value is None:
            raise SecretMissing(f"secret {name!r} has no value (set {self._sources(name)})")
        self._handed_out.add(value)
        return value

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self._lookup(name)
        if value is None:
            return default
        self._handed_out.add(value)
        return value

    def _lookup(self, name: str) -> str | None:
        if name not in self._declared:
            raise SecretNotDeclared(f"secret {name!r} is not in the plugin's required_secrets")
        if self._fixed is not None:
            return self._fixed.get(name)
        upper = env_name(name)
        mapped = self._environ.get(f"WELLBEING_SECRET_ENV_{upper}")
        for var in (mapped, upper):
            if var and self._environ.get(var):
                return self._environ[var]
        if _NAME.match(name):
            path = self._dir / name
            try:
                return path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError:
                return None
        return None

    def _sources(self, name: str) -> str:
        upper = env_name(name)
        return f"env {upper}, or WELLBEING_SECRET_ENV_{upper} naming a variable, or file {self._dir / name}"

    def scrub(self, text: str) -> str:
        """`text` with every value handed out so far replaced by [redacted]."""
        for value in sorted(self._handed_out, key=len, reverse=True):
            if len(value) >= 4:
                text = text.replace(value, "[redacted]")
        return text
