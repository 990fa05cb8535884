"""The host API a plugin may import (`from wellbeing_host.api import http_get`).

Network access goes only through `http_get`, and only to the hosts the plugin module declares in
`egress_hosts`. In the cluster a NetworkPolicy enforces the same list; this check gives the plugin a
clear error instead of a connection timeout, and holds in embedded mode where no policy exists.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from wellbeing_host.errors import (
    EgressDenied,
    HostError,
    HttpError,
    LlmError,
    LlmUnavailable,
    SecretMissing,
    SecretNotDeclared,
)

__all__ = [
    "EgressDenied",
    "HostError",
    "HttpError",
    "LlmError",
    "LlmUnavailable",
    "Response",
    "SecretMissing",
    "SecretNotDeclared",
    "http_get",
]

# Responses are read whole into memory; a plugin has no business with anything larger.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024

_allowed_hosts: frozenset[str] = frozenset()


def _set_egress_hosts(hosts: list[str] | tuple[str, ...]) -> None:
    """Called by the loader with the module's `egress_hosts`; not for plugins."""
    global _allowed_hosts
    _allowed_hosts = frozenset(h.strip().lower().rstrip(".") for h in hosts if h.strip())


def allowed_host(url: str, hosts: frozenset[str] | set[str]) -> str | None:
    """The URL's host when the scheme is http(s) and the host is in `hosts`, else None."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    host = parsed.hostname.lower().rstrip(".")
    return host if host in hosts else None


@dataclass(frozen=True)
class Response:
    status: int
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a new request: it must go to a declared host too."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 (stdlib signature)
        if allowed_host(newurl, _allowed_hosts) is None:
            host = urllib.parse.urlsplit(newurl).hostname or newurl
            raise EgressDenied(f"redirect to undeclared host {host!r} refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_CheckedRedirects)


def _get(url: str, headers: dict[str, str], timeout: float) -> Response:
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with _opener.open(request, timeout=timeout) as reply:
            body = reply.read(MAX_RESPONSE_BYTES + 1)
            if len(body) > MAX_RESPONSE_BYTES:
                raise HttpError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
            charset = reply.headers.get_content_charset() or "utf-8"
            return Response(reply.status, body.decode(charset, errors="replace"), dict(reply.headers.items()))
    except urllib.error.HTTPError as e:
        raise HttpError(f"GET {urllib.parse.urlsplit(url).hostname} answered {e.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise HttpError(f"GET {urllib.parse.urlsplit(url).hostname} failed: {reason}") from None


async def http_get(url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0) -> Response:
    """GET `url` (http or https) from a host the plugin declared. Raises EgressDenied or HttpError."""
    if allowed_host(url, _allowed_hosts) is None:
        host = urllib.parse.urlsplit(url).hostname or url
        raise EgressDenied(f"host {host!r} is not in the plugin's egress_hosts")
    return await asyncio.to_thread(_get, url, dict(headers or {}), timeout)
