"""Redirect URIs: what may be registered, and how a presented one matches (OAuth 2.1 §2.3, RFC 8252).

Registration rules by `application_type`:
- `web`: `https`, or plain `http` on a loopback host (local development), matched exactly.
- `native`: `http` on a loopback IP literal or `localhost` (RFC 8252 §7.3, matched on any port),
  `https` (claimed URLs, §7.2), or a private-use scheme in reverse-domain form (§7.1).
Always: an absolute URI, no fragment (RFC 6749 §3.1.2), no user-info, never `javascript:`,
`data:`, `file:` or `vbscript:`. Matching is exact string comparison otherwise (OAuth 2.1 §4.1.3).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from wallet_mcp.oauth.errors import InvalidRedirectUri

ApplicationType = Literal["web", "native"]

MAX_REDIRECT_URI_LENGTH = 2000
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "filesystem"})
_PRIVATE_USE_SCHEME = re.compile(r"^[a-z][a-z0-9+\-]*(\.[a-z0-9+\-]+)+$")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback_host(host: str | None) -> bool:
    """`localhost`, or an IP literal in 127.0.0.0/8 or ::1 (never a DNS name that merely starts
    with "127.", such as 127.evil.example)."""
    if host is None:
        return False
    if host.lower() in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parts(uri: str) -> SplitResult:
    if not uri or len(uri) > MAX_REDIRECT_URI_LENGTH or any(c.isspace() or ord(c) < 0x20 for c in uri):
        raise InvalidRedirectUri("redirect URI is empty, too long or contains white space")
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise InvalidRedirectUri("redirect URI is malformed") from exc
    scheme = parts.scheme.lower()
    if not scheme or scheme in _FORBIDDEN_SCHEMES:
        raise InvalidRedirectUri("redirect URI scheme is not allowed")
    if "#" in uri:
        raise InvalidRedirectUri("redirect URI must not contain a fragment")
    if parts.username is not None or parts.password is not None:
        raise InvalidRedirectUri("redirect URI must not contain user information")
    return parts


def validate_redirect_uri(uri: str, application_type: ApplicationType) -> str:
    """The URI, unchanged, if a client of this type may register it; InvalidRedirectUri otherwise."""
    parts = _parts(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and not parts.hostname:
        raise InvalidRedirectUri("redirect URI must have a host")
    if scheme == "https":
        return uri
    if scheme == "http":
        if is_loopback_host(parts.hostname):
            return uri
        raise InvalidRedirectUri("plain http redirect URIs are only allowed on loopback hosts")
    if application_type == "native" and _PRIVATE_USE_SCHEME.match(scheme):
        return uri
    raise InvalidRedirectUri(f"redirect URI scheme {scheme!r} is not allowed for {application_type} clients")


def infer_application_type(uris: Iterable[str]) -> ApplicationType:
    """For a registration without `application_type`: native when every redirect is loopback or a
    private-use scheme (what native MCP clients register), else web (RFC 7591's default)."""
    kinds = []
    for uri in uris:
        try:
            parts = urlsplit(uri)
        except ValueError:
            return "web"
        kinds.append(
            (parts.scheme == "http" and is_loopback_host(parts.hostname))
            or bool(_PRIVATE_USE_SCHEME.match(parts.scheme.lower()))
        )
    return "native" if kinds and all(kinds) else "web"


def redirect_uri_matches(
    registered: Iterable[str], presented: str, application_type: ApplicationType
) -> bool:
    """Exact match; for native clients a loopback http URI matches on any port (RFC 8252 §7.3)."""
    candidates = tuple(registered)
    if presented in candidates:
        return True
    if application_type != "native":
        return False
    try:
        want = urlsplit(presented)
        if want.scheme != "http" or not is_loopback_host(want.hostname) or "#" in presented:
            return False
        for uri in candidates:
            have = urlsplit(uri)
            if (
                have.scheme == "http"
                and have.hostname == want.hostname
                and have.path == want.path
                and have.query == want.query
                and want.username is None
            ):
                _ = want.port  # a malformed port never matches
                return True
    except ValueError:
        return False
    return False
