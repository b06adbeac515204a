"""Resource indicators (RFC 8707): which protected resource a token is for, carried into `aud`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from wallet_mcp.primitives.errors import InvalidTarget


def canonical_resource(uri: str) -> str:
    """Scheme and host lower-cased, default port and a lone trailing slash dropped.

    MCP authorization §Canonical Server URI: servers SHOULD accept upper-case scheme and host.
    """
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:  # a port that is not a number, a broken IPv6 literal
        raise InvalidTarget("resource is not a valid URI") from exc
    if not parts.scheme or not parts.netloc:
        raise InvalidTarget("resource must be an absolute URI")
    if parts.fragment or "#" in uri:
        raise InvalidTarget("resource must not contain a fragment (RFC 8707 §2)")
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    netloc = host if port is None or (scheme, port) in (("https", 443), ("http", 80)) else f"{host}:{port}"
    path = parts.path.rstrip("/") if parts.path != "/" else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{path}{query}"


def select_audience(
    requested: str | None, known: Iterable[str], default: str, aliases: Mapping[str, str] | None = None
) -> str:
    """The audience for a token: the requested resource if this server knows it (or one of its
    `aliases`, another name of it: `Settings.resource_aliases`), else the default."""
    if requested is None:
        return default
    wanted = canonical_resource(requested)
    for resource in known:
        if canonical_resource(resource) == wanted:
            return resource
    for alias, resource in (aliases or {}).items():
        if canonical_resource(alias) == wanted:
            return resource
    raise InvalidTarget("unknown resource")
