"""Client ID Metadata Documents (CIMD): an `https` URL as `client_id`, and the document it points at.

draft-ietf-oauth-client-id-metadata-document-00 lets a client with no prior relationship use a URL as
its `client_id` (§3); the authorization server fetches the JSON document at that URL (§4) and uses it
as the client's registration. MCP authorization (2025-11-25 and 2026-07-28, Client Registration,
"Client ID Metadata Documents") makes this the preferred mechanism, requires the `client_id` in the
document to match the URL exactly and the redirect URIs to be checked against it, and its Security
Considerations ("Client ID Metadata Document Security") point at the draft's §6, SSRF above all.

The fetch is the dangerous part: whoever starts an authorization request chooses the URL, so the
server must not become a proxy into its own network (§6.5). `fetch_client_metadata` therefore
- resolves the host once, refuses it if any address is not globally routable, and connects to the
  validated address itself: no second lookup, so no DNS-rebinding window;
- verifies TLS for the URL's host name, follows no redirect, caps the body (§6.6: 5 KB) and bounds
  the whole exchange (DNS, connect, TLS, request, response) by one deadline.

`validate_client_metadata` accepts public clients only: there is no way to share a secret with a
document (§4.1), and `private_key_jwt` with published keys (§6.2) is not supported here.

Pure: nothing is stored. Callers cache a `FetchedDocument` for its `cache_seconds` (§4.4) and never
cache a failure or an invalid document (§4.4). A `ClientMetadataError` means the authorization
request is aborted (§4.3); its message never repeats text from the document.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import SplitResult, urlsplit

from wallet_mcp.oauth.errors import InvalidRedirectUri, InvalidScope
from wallet_mcp.oauth.redirect_uris import (
    ApplicationType,
    infer_application_type,
    validate_redirect_uri,
)
from wallet_mcp.oauth.scopes import SCOPE_DESCRIPTIONS, parse_scope

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH: Final = 2000
MAX_REDIRECT_URIS: Final = 10
MAX_CLIENT_NAME_LENGTH: Final = 100
USER_AGENT: Final = "wallet-mcp/0.1 (OAuth Client ID Metadata Document fetcher)"

_HTTPS_PORT: Final = 443
_HEADER_ALLOWANCE: Final = 16 * 1024
"""Bytes allowed on the wire beyond the body: status line, headers, chunk framing."""
_ALLOWED_GRANT_TYPES: Final = frozenset({"authorization_code", "refresh_token"})
_BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Invisible characters that reorder text: a name could otherwise render as another client's name."""
_DELTA_SECONDS = re.compile(r"[0-9]+")


class ClientMetadataError(Exception):
    """The client's metadata document cannot be used; the message is safe to show a user."""


@dataclass(frozen=True)
class FetchPolicy:
    allow_loopback: bool = False
    """Development only: permits loopback addresses (a client document served on this machine)."""
    timeout_seconds: float = 5.0
    """For the whole fetch: resolution, connection, TLS handshake, request and response."""
    max_bytes: int = 5 * 1024
    """Largest body accepted; §6.6 recommends 5 kilobytes."""
    min_cache_seconds: int = 60
    max_cache_seconds: int = 86400
    default_cache_seconds: int = 300
    """Cache lifetime when the response has no Cache-Control (§4.4 lets the server set its own bounds)."""
    ssl_context: ssl.SSLContext | None = None
    """None: `ssl.create_default_context()` (the system trust store, or `SSL_CERT_FILE`)."""
    resolver: Callable[[str, int], list[str]] | None = None
    """Host and port to IP address strings; None: `socket.getaddrinfo`."""

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.max_bytes <= 0:
            raise ValueError("timeout_seconds and max_bytes must be positive")
        if not 0 <= self.min_cache_seconds <= self.default_cache_seconds <= self.max_cache_seconds:
            raise ValueError("cache bounds must satisfy 0 <= min <= default <= max")


@dataclass(frozen=True)
class FetchedDocument:
    document: dict[str, Any]
    cache_seconds: int
    """How long the document may be reused; 0: not at all (`no-store`/`no-cache`)."""


@dataclass(frozen=True)
class ClientIdMetadata:
    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: tuple[str, ...] | None
    """The scopes the client may ask for; None: the document does not restrict them."""
    client_uri: str | None
    logo_uri: str | None
    application_type: Literal["web", "native"]


# --- The client_id URL (§3) -------------------------------------------------------------------------


def _split_https_url(value: object) -> SplitResult | None:
    """An absolute `https` URL with a host and no user-info, split; None otherwise."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_LENGTH:
        return None
    # A URI is printable ASCII (RFC 3986 §2); white space, controls or raw UTF-8 would otherwise reach
    # the request line. A backslash is a path separator to some parsers and not to others.
    if not all(0x21 <= ord(c) <= 0x7E for c in value) or "\\" in value:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname or port == 0:
        return None
    if "@" in parts.netloc:  # user-info (§3: MUST NOT contain a username or password)
        return None
    return parts


def _split_client_id(client_id: object) -> SplitResult | None:
    parts = _split_https_url(client_id)
    if parts is None or not isinstance(client_id, str):
        return None
    # §3: MUST contain a path component, MUST NOT contain a fragment (not even an empty one).
    if parts.path in ("", "/") or "#" in client_id:
        return None
    # §3: no single-dot or double-dot segments, percent-encoded ones included (RFC 3986 §2.3: `%2E` is `.`),
    # so that two different client_ids cannot name one document.
    if any(segment.lower().replace("%2e", ".") in (".", "..") for segment in parts.path.split("/")):
        return None
    return parts


def is_client_id_metadata_url(client_id: str) -> bool:
    """Whether `client_id` is a URL the draft allows as a client identifier (§3).

    `https`, a host, a path other than `/`, no fragment, no user-info, no dot segments, at most 2000
    characters. A query is allowed (§3: SHOULD NOT, not MUST NOT); so is a port.
    """
    return _split_client_id(client_id) is not None


# --- Fetching (§4, §6.5, §6.6) ----------------------------------------------------------------------


def fetch_host(url: str) -> str:
    """The host a fetch of `url` goes to (what fetches are counted by, so that no host can be made
    a target through this server)."""
    parts = _split_client_id(url)
    return (parts.hostname or "") if parts is not None else ""


def fetch_client_metadata(url: str, policy: FetchPolicy) -> FetchedDocument:
    """GET the document at `url`, guarded against SSRF; ClientMetadataError for any failure."""
    parts = _split_client_id(url)
    if parts is None or parts.hostname is None:
        raise ClientMetadataError("client_id is not a valid client metadata document URL")
    host = parts.hostname
    port = parts.port or _HTTPS_PORT
    deadline = time.monotonic() + policy.timeout_seconds

    addresses = _resolve(host, port, policy, deadline)
    # §6.5: every address must be public. Refusing when any one is not (rather than picking a good
    # one) keeps a name that mixes public and internal addresses from probing the internal network.
    for address in addresses:
        if not _is_allowed_address(address, policy.allow_loopback):
            raise ClientMetadataError("the client_id host resolves to an address that is not public")

    sock = _connect(addresses, port, deadline)
    with sock:
        context = policy.ssl_context or ssl.create_default_context()
        with _failure_reason("the TLS handshake with the client_id host failed"):
            sock.settimeout(_remaining(deadline))
            try:
                # SNI and certificate verification for the URL's name, though the socket was
                # connected to an address: the certificate proves the name, the address is ours.
                tls = context.wrap_socket(sock, server_hostname=host)
            except ssl.SSLCertVerificationError as exc:
                raise ClientMetadataError("the client_id host's TLS certificate is not trusted") from exc
        with tls, _failure_reason("the client_id host sent an unusable HTTP response"):
            body, cache_control = _exchange(tls, parts, host, port, policy, deadline)
    document = _parse_json_object(body)
    return FetchedDocument(document=document, cache_seconds=_cache_seconds(cache_control, policy))


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ClientMetadataError("fetching the client metadata document timed out")
    return left


@contextmanager
def _failure_reason(message: str) -> Iterator[None]:
    """Turn whatever the standard library raises in one step into a ClientMetadataError."""
    try:
        yield
    except ClientMetadataError:
        raise
    except TimeoutError as exc:
        raise ClientMetadataError("fetching the client metadata document timed out") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise ClientMetadataError(message) from exc


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _resolve(host: str, port: int, policy: FetchPolicy, deadline: float) -> list[IPAddress]:
    """The host's addresses, looked up exactly once."""
    try:
        return [ipaddress.ip_address(host)]  # an IP literal needs no lookup
    except ValueError:
        pass
    resolver = policy.resolver or _system_resolver
    results: list[object] = []

    def run() -> None:
        try:
            results.append(resolver(host, port))
        except Exception as exc:  # a resolver's failure is reported below, whatever its type
            results.append(exc)

    # getaddrinfo has no timeout of its own; a daemon thread lets the deadline cover the lookup too.
    thread = threading.Thread(target=run, name="cimd-resolve", daemon=True)
    thread.start()
    thread.join(_remaining(deadline))
    if thread.is_alive():
        raise ClientMetadataError("resolving the client_id host timed out")
    found = results[0] if results else None
    if isinstance(found, BaseException):
        raise ClientMetadataError("could not resolve the client_id host") from found
    if not isinstance(found, list | tuple) or not found:
        raise ClientMetadataError("could not resolve the client_id host")
    addresses: list[IPAddress] = []
    for text in found:
        try:
            address = ipaddress.ip_address(text)
        except ValueError as exc:
            raise ClientMetadataError("could not resolve the client_id host") from exc
        if address not in addresses:
            addresses.append(address)
    return addresses


def _is_allowed_address(address: IPAddress, allow_loopback: bool) -> bool:
    """Globally routable (§6.5 "private or loopback addresses"), loopback only when allowed.

    `is_global` alone is not enough on every Python: multicast, reserved (incl. NAT64 64:ff9b::/96
    and IPv4-compatible ::a.b.c.d), link-local (incl. 169.254.169.254, the cloud metadata service)
    and site-local are refused by name. IPv4 embedded in IPv6 (mapped ::ffff:a.b.c.d, 6to4
    2002::/16) is checked as the IPv4 address it reaches.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _is_allowed_address(address.ipv4_mapped, allow_loopback)
        if address.sixtofour is not None and not _is_allowed_address(address.sixtofour, False):
            return False
        if address.is_site_local:
            return False
    if address.is_loopback:
        return allow_loopback
    return address.is_global and not (
        address.is_private
        or address.is_multicast
        or address.is_reserved
        or address.is_link_local
        or address.is_unspecified
    )


def _connect(addresses: list[IPAddress], port: int, deadline: float) -> socket.socket:
    """A TCP connection to the first validated address that answers; never a host name."""
    last_error: OSError | None = None
    for address in addresses:
        timeout = _remaining(deadline)
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((str(address), port))
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock
    if isinstance(last_error, TimeoutError):
        raise ClientMetadataError("fetching the client metadata document timed out") from last_error
    raise ClientMetadataError("could not connect to the client_id host") from last_error


class _DeadlineStream(io.RawIOBase):
    """The TLS socket as a stream whose every read is bounded by what is left of the deadline and
    by a total byte budget: a server dripping bytes cannot stretch the fetch or fill memory."""

    def __init__(self, sock: ssl.SSLSocket, deadline: float, budget: int) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline
        self._budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self._budget <= 0:
            raise ClientMetadataError("the client metadata document is too large")
        self._sock.settimeout(_remaining(self._deadline))
        view = memoryview(buffer).cast("B")[: self._budget]
        count = self._sock.recv_into(view)
        self._budget -= count
        return count


def _exchange(
    tls: ssl.SSLSocket, parts: SplitResult, host: str, port: int, policy: FetchPolicy, deadline: float
) -> tuple[bytes, str]:
    """One GET; the body and the Cache-Control value, or ClientMetadataError."""
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    authority = (f"[{host}]" if ":" in host else host) + ("" if port == _HTTPS_PORT else f":{port}")
    request = (
        f"GET {target} HTTP/1.1\r\n"
        f"Host: {authority}\r\n"
        "Accept: application/json\r\n"
        "Accept-Encoding: identity\r\n"
        f"User-Agent: {USER_AGENT}\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("ascii")  # the URL is printable ASCII (checked above): nothing can be injected here
    tls.settimeout(_remaining(deadline))
    tls.sendall(request)

    # http.client parses the response (status line, header limits, chunked framing), but reads
    # through the deadline-bounded stream in place of the plain file it makes of the socket.
    response = http.client.HTTPResponse(tls, method="GET")
    response.fp.close()
    response.fp = io.BufferedReader(_DeadlineStream(tls, deadline, policy.max_bytes + _HEADER_ALLOWANCE))
    with response:
        response.begin()
        if 300 <= response.status < 400:
            # Not followed: the target would need the same checks, and the document must live at
            # the client_id URL itself (§4.1: its client_id must equal the URL).
            raise ClientMetadataError("the client metadata document URL redirects (not followed)")
        if response.status != 200:
            raise ClientMetadataError(f"the client metadata document URL answered HTTP {response.status}")
        # §4.1: `application/json`, or a more specific `application/<AS-defined>+json`; parameters allowed.
        content_type = response.headers.get_content_type()  # lower case; text/plain when absent
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise ClientMetadataError("the client metadata document is not served as JSON")
        if response.getheader("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
            raise ClientMetadataError("the client metadata document is served compressed")
        if response.length is not None:  # Content-Length: refuse before reading a byte of the body
            if response.length > policy.max_bytes:
                raise ClientMetadataError("the client metadata document is too large")
            body = response.read()  # IncompleteRead if the server sends less than it announced
        else:  # chunked, or until the connection closes: read one byte past the limit to notice
            body = response.read(policy.max_bytes + 1)
            if len(body) > policy.max_bytes:
                raise ClientMetadataError("the client metadata document is too large")
        cache_control = ", ".join(str(value) for value in response.headers.get_all("Cache-Control") or ())
    return body, cache_control


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins; a document that means two things is refused.
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate key")
    return document


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # RFC 8259 §6 has no NaN or Infinity


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        # RFC 8259 §8.1: JSON exchanged between systems is UTF-8.
        value = json.loads(
            body.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested arrays fit in 5 KB
        raise ClientMetadataError("the client metadata document is not valid JSON") from exc
    if not isinstance(value, dict):
        raise ClientMetadataError("the client metadata document is not a JSON object")
    return value


def _cache_seconds(cache_control: str, policy: FetchPolicy) -> int:
    """§4.4: respect HTTP caching (RFC 9111 §5.2.2), within the server's own bounds."""
    directives: dict[str, str] = {}
    for item in cache_control.split(","):
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if name:
            directives.setdefault(name, value.strip().strip('"'))  # the first occurrence wins (§4.2.1)
    if "no-store" in directives or "no-cache" in directives:
        return 0
    if "max-age" not in directives:
        return policy.default_cache_seconds
    raw = directives["max-age"]
    # RFC 9111 §4.2.1: invalid freshness information makes the response stale, i.e. max-age=0.
    seconds = int(raw) if _DELTA_SECONDS.fullmatch(raw) else 0
    return max(policy.min_cache_seconds, min(policy.max_cache_seconds, seconds))


# --- Validation (§4.1, §6.2) ------------------------------------------------------------------------


def validate_client_metadata(url: str, document: Mapping[str, Any]) -> ClientIdMetadata:
    """The client the document describes, if this server accepts it; ClientMetadataError otherwise.

    A JSON `null` counts as absent for optional properties. Unknown properties are ignored (§4.1).
    """
    parts = _split_client_id(url)
    if parts is None or parts.hostname is None:
        raise ClientMetadataError("client_id is not a valid client metadata document URL")
    candidate: object = document
    if not isinstance(candidate, Mapping):
        raise ClientMetadataError("the client metadata document is not a JSON object")
    # §4.1: simple string comparison (RFC 3986 §6.2.1), no normalisation: a trailing slash or a
    # different case is a different client.
    if candidate.get("client_id") != url:
        raise ClientMetadataError("the client_id in the client metadata document does not match its URL")
    _refuse_credentials(candidate)
    redirect_uris, application_type = _redirect_uris(candidate)
    grant_types = _grant_types(candidate)
    response_types = candidate.get("response_types")
    if response_types is not None and (
        not isinstance(response_types, list | tuple) or list(response_types) != ["code"]
    ):
        raise ClientMetadataError('response_types must be ["code"]')  # OAuth 2.1: code flow only
    return ClientIdMetadata(
        client_id=url,
        client_name=_client_name(candidate.get("client_name"), default=parts.hostname),
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        scope=_scope(candidate.get("scope")),
        client_uri=_optional_https_url(candidate, "client_uri"),
        logo_uri=_optional_https_url(candidate, "logo_uri"),
        application_type=application_type,
    )


def _refuse_credentials(document: Mapping[Any, Any]) -> None:
    method = document.get("token_endpoint_auth_method")
    if method is not None and not isinstance(method, str):
        raise ClientMetadataError("token_endpoint_auth_method must be a string")
    # §4.1: no shared secret can exist for a document-defined client, so no method based on one and
    # no client_secret properties.
    if (method or "").startswith("client_secret") or "client_secret" in document:
        raise ClientMetadataError("a client metadata document cannot use a client secret")
    if "client_secret_expires_at" in document:
        raise ClientMetadataError("a client metadata document cannot use a client secret")
    # §6.2 allows private_key_jwt with published keys; this server supports public clients only.
    if method not in (None, "none"):
        raise ClientMetadataError("token_endpoint_auth_method must be none (public clients only)")
    if "jwks" in document or "jwks_uri" in document:
        raise ClientMetadataError("jwks and jwks_uri are not supported (public clients only)")


def _redirect_uris(document: Mapping[Any, Any]) -> tuple[tuple[str, ...], ApplicationType]:
    raw = document.get("redirect_uris")
    # MCP: the document MUST include redirect_uris; the draft §4.5 makes them the registered URIs.
    if not isinstance(raw, list | tuple) or not all(isinstance(uri, str) for uri in raw):
        raise ClientMetadataError("redirect_uris must be a list of strings")
    if not raw:
        raise ClientMetadataError("redirect_uris must not be empty")
    if len(raw) > MAX_REDIRECT_URIS:
        raise ClientMetadataError(f"redirect_uris may list at most {MAX_REDIRECT_URIS} URIs")
    uris: tuple[str, ...] = tuple(dict.fromkeys(raw))
    declared = document.get("application_type")
    application_type: ApplicationType
    if declared is None:
        application_type = infer_application_type(uris)
    elif declared == "web":
        application_type = "web"
    elif declared == "native":
        application_type = "native"
    else:
        raise ClientMetadataError('application_type must be "web" or "native"')
    for uri in uris:
        try:
            validate_redirect_uri(uri, application_type)
        except InvalidRedirectUri as exc:
            raise ClientMetadataError(f"redirect_uris: {exc.description}") from exc
    return uris, application_type


def _grant_types(document: Mapping[Any, Any]) -> tuple[str, ...]:
    raw = document.get("grant_types")
    if raw is None:
        return ("authorization_code",)  # RFC 7591 §2's default
    if not isinstance(raw, list | tuple) or not all(isinstance(grant, str) for grant in raw):
        raise ClientMetadataError("grant_types must be a list of strings")
    grants: tuple[str, ...] = tuple(dict.fromkeys(raw))
    # A user-facing client: the code flow, and refresh tokens from it. client_credentials would let a
    # document (anyone's) obtain tokens with no user at all.
    if not set(grants) <= _ALLOWED_GRANT_TYPES or "authorization_code" not in grants:
        raise ClientMetadataError("grant_types must be authorization_code, optionally with refresh_token")
    return grants


def _client_name(raw: object, *, default: str) -> str:
    if raw is None:
        return default  # the draft §6.4: the host is what the user should see anyway
    if not isinstance(raw, str):
        raise ClientMetadataError("client_name must be a string")
    cleaned = "".join(c for c in raw if unicodedata.category(c) != "Cc" and c not in _BIDI_CONTROLS).strip()
    if len(cleaned) > MAX_CLIENT_NAME_LENGTH:
        raise ClientMetadataError(f"client_name may be at most {MAX_CLIENT_NAME_LENGTH} characters")
    return cleaned or default


def _scope(raw: object) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ClientMetadataError("scope must be a space-separated string")
    try:
        scopes = parse_scope(raw)  # RFC 6749 §3.3 syntax
    except InvalidScope as exc:
        raise ClientMetadataError("scope is malformed") from exc
    if any(scope not in SCOPE_DESCRIPTIONS for scope in scopes):
        raise ClientMetadataError("scope names a scope this server does not offer")
    return scopes or None


def _optional_https_url(document: Mapping[Any, Any], name: str) -> str | None:
    raw = document.get(name)
    if raw is None:
        return None
    # Shown to the user (and a logo perhaps fetched later, §6.7): https only, never javascript: or data:.
    if _split_https_url(raw) is None or not isinstance(raw, str):
        raise ClientMetadataError(f"{name} must be an https URL of at most {MAX_URL_LENGTH} characters")
    return raw
