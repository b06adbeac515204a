"""Redirect URIs: what may be registered, and how a presented one matches (OAuth 2.1 §2.3, RFC 8252).

Registration rules by `application_type`:
- `web`: `https`, or plain `http` on a loopback host (local development), matched exactly.
- `native`: `http` on a loopback IP literal or `localhost` (RFC 8252 §7.3, matched on any port),
  `https` (claimed URLs, §7.2), or a private-use scheme (§7.1). RFC 8252 asks apps for
  reverse-domain schemes (`com.example.app:`), but the MCP hosts people use register plain ones
  (`cursor://anysphere.cursor-mcp/oauth/callback`, `vscode://…`, `claude://…`), so any scheme is
  accepted that is not a web, file, script or messaging scheme (`_NOT_APP_SCHEMES`). Such a client
  is public, so it is never approved silently: its user consents every time it asks.
Always: an absolute URI, no fragment (RFC 6749 §3.1.2), no user-info, never `javascript:`,
`data:`, `file:` or `vbscript:`. Matching is exact string comparison otherwise (OAuth 2.1 §4.1.3).

Syntax is this module's own grammar, not `urllib.parse`: `urlsplit` takes almost any string
(non-ASCII, `"<>\\^`{|}`, an empty port, a `;` in the host), and even a strict RFC 3986 parser
would accept `https://acc.example;acc-injected/cb`, because RFC 3986 §3.2.2's reg-name allows the
sub-delims (`!$&'()*+,;=`) and percent-escapes. A registered URI's origin goes into the login
page's Content-Security-Policy and its host is what a browser resolves, so the URI must be ASCII
RFC 3986 (§3: scheme, path, query, percent-escapes) and its host one of `_HOST_FORMS`: a DNS name
of LDH labels (RFC 1123 §2.1; `localhost` is one), an IPv4 dotted literal, or a bracketed IPv6
literal (§3.2.2, without IPvFuture or zone identifiers).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, Literal

from wallet_mcp.primitives.errors import InvalidRedirectUri

ApplicationType = Literal["web", "native"]

MAX_REDIRECT_URI_LENGTH = 2000
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "filesystem"})
_NOT_APP_SCHEMES = frozenset(
    {"http", "https", "ws", "wss", "ftp", "mailto", "tel", "sms", "intent", "view-source", "jar"}
)
"""Schemes that name no installed app: never a private-use redirect (https/http have rules of their own)."""
_PRIVATE_USE_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# RFC 3986 §2-§3, ASCII only. Every pattern here is used with fullmatch ("$" also matches before
# a trailing newline).
_UNRESERVED: Final = r"A-Za-z0-9\-._~"
_SUB_DELIMS: Final = r"!$&'()*+,;="
_PCHAR: Final = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|%[0-9A-Fa-f]{{2}})"
_URI: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):"
    r"(?://(?P<authority>[^/?#]*+))?"
    rf"(?P<path>(?:{_PCHAR}|/)*+)"
    rf"(?:\?(?P<query>(?:{_PCHAR}|[/?])*+))?"
)
"""absolute-URI (§4.3): the authority is split and checked apart, by the stricter host rules below."""

_LDH_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_DNS_NAME: Final = re.compile(rf"{_LDH_LABEL}(?:\.{_LDH_LABEL})*")
_MAX_DNS_NAME_LENGTH: Final = 253
_NUMERIC_LABEL: Final = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
_IPV4: Final = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_IPV6: Final = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_PORT: Final = re.compile(r"[0-9]{1,5}")


def _is_dns_name(host: str) -> bool:
    # A name whose last label is a number is read by browsers (WHATWG URL) as an IPv4 address:
    # `127.1` is 127.0.0.1, `1.2.3.256` an error. Such hosts must be real dotted literals.
    return (
        len(host) <= _MAX_DNS_NAME_LENGTH
        and _DNS_NAME.fullmatch(host) is not None
        and _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]) is None
    )


def _is_ipv4_literal(host: str) -> bool:
    if _IPV4.fullmatch(host) is None:
        return False
    try:
        ipaddress.IPv4Address(host)  # each part 0-255, no leading zeros
    except ValueError:
        return False
    return True


def _is_ipv6_literal(host: str) -> bool:
    if _IPV6.fullmatch(host) is None:
        return False
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError:
        return False
    return True


_HOST_FORMS: Final[tuple[Callable[[str], bool], ...]] = (_is_dns_name, _is_ipv4_literal, _is_ipv6_literal)


def is_valid_host(host: str) -> bool:
    """A host as written in a URI: an LDH DNS name, an IPv4 dotted literal or a bracketed IPv6 literal."""
    return any(form(host) for form in _HOST_FORMS)


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


@dataclass(frozen=True, slots=True)
class _Uri:
    scheme: str
    """Lower-cased (RFC 3986 §3.1: schemes are case-insensitive)."""
    host: str | None
    """As written, IPv6 in brackets; None when there is no authority, "" when it is empty."""
    path: str
    query: str | None

    @property
    def hostname(self) -> str | None:
        """The host compared and looked up: lower-cased, without IPv6 brackets."""
        return None if self.host is None else self.host.strip("[]").lower()


def _parse(uri: str) -> _Uri:
    """The URI's parts if it is strict ASCII RFC 3986 with an allowed host; InvalidRedirectUri otherwise."""
    if not uri or len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise InvalidRedirectUri("redirect URI is empty or too long")
    if not uri.isascii() or any(c <= " " or c == "\x7f" for c in uri):
        raise InvalidRedirectUri("redirect URI must be ASCII without white space or control characters")
    if "#" in uri:
        raise InvalidRedirectUri("redirect URI must not contain a fragment")
    match = _URI.fullmatch(uri)
    if match is None:
        raise InvalidRedirectUri("redirect URI is not a valid absolute URI (RFC 3986)")
    scheme = match["scheme"].lower()
    if scheme in _FORBIDDEN_SCHEMES:
        raise InvalidRedirectUri("redirect URI scheme is not allowed")
    authority: str | None = match["authority"]
    return _Uri(scheme, None if authority is None else _host(authority), match["path"], match["query"])


def _host(authority: str) -> str:
    """The host of an authority (RFC 3986 §3.2), its port checked; no user-info."""
    if "@" in authority:
        raise InvalidRedirectUri("redirect URI must not contain user information")
    if authority == "":
        return ""  # `com.example.app:///cb`: allowed for private-use schemes, http(s) need a host
    if authority.startswith("["):
        end = authority.find("]") + 1
        host, rest = (authority[:end], authority[end:]) if end else (authority, "")
    else:
        host, colon, port = authority.partition(":")
        rest = colon + port
    if not is_valid_host(host):
        raise InvalidRedirectUri(
            "redirect URI host must be a DNS name of letters, digits and hyphens, an IPv4 address "
            "or a bracketed IPv6 address"
        )
    if rest and not (
        rest.startswith(":") and _PORT.fullmatch(rest[1:]) is not None and 0 < int(rest[1:]) <= 65535
    ):
        raise InvalidRedirectUri("redirect URI port must be a number from 1 to 65535")
    return host


def is_private_use_scheme(scheme: str) -> bool:
    """A scheme an app on the device claims (RFC 8252 §7.1), lower-cased: not a web, file, script
    or messaging scheme."""
    return (
        _PRIVATE_USE_SCHEME.fullmatch(scheme) is not None
        and scheme not in _NOT_APP_SCHEMES
        and scheme not in _FORBIDDEN_SCHEMES
    )


def validate_redirect_uri(uri: str, application_type: ApplicationType) -> str:
    """The URI, unchanged, if a client of this type may register it; InvalidRedirectUri otherwise."""
    parts = _parse(uri)
    scheme = parts.scheme
    if scheme in ("http", "https") and not parts.host:
        raise InvalidRedirectUri("redirect URI must have a host")
    if scheme == "https":
        return uri
    if scheme == "http":
        if is_loopback_host(parts.hostname):
            return uri
        raise InvalidRedirectUri("plain http redirect URIs are only allowed on loopback hosts")
    if application_type == "native" and is_private_use_scheme(scheme):
        return uri
    raise InvalidRedirectUri(f"redirect URI scheme {scheme!r} is not allowed for {application_type} clients")


def infer_application_type(uris: Iterable[str]) -> ApplicationType:
    """For a registration without `application_type`: native when every redirect is loopback or a
    private-use scheme (what native MCP clients register), else web (RFC 7591's default)."""
    kinds = []
    for uri in uris:
        try:
            parts = _parse(uri)
        except InvalidRedirectUri:
            return "web"
        kinds.append(
            (parts.scheme == "http" and is_loopback_host(parts.hostname))
            or is_private_use_scheme(parts.scheme)
        )
    return "native" if kinds and all(kinds) else "web"


def redirect_uri_matches(
    registered: Iterable[str], presented: str, application_type: ApplicationType
) -> bool:
    """Exact match; for native clients a loopback http URI matches on any port (RFC 8252 §7.3).

    Never raises: a presented URI that could not be registered matches nothing, even a stored
    registration made under older, looser rules.
    """
    try:
        validate_redirect_uri(presented, application_type)
    except InvalidRedirectUri:
        return False
    candidates = tuple(registered)
    if presented in candidates:
        return True
    if application_type != "native":
        return False
    want = _parse(presented)
    if want.scheme != "http" or not is_loopback_host(want.hostname):
        return False
    for uri in candidates:
        try:
            have = _parse(uri)
        except InvalidRedirectUri:
            continue
        if (
            have.scheme == "http"
            and have.hostname == want.hostname
            and have.path == want.path
            and (have.query or "") == (want.query or "")
        ):
            return True
    return False
