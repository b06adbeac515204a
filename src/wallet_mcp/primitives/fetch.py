"""The one outbound HTTP fetcher: a JSON object from an upstream OpenID provider (discovery, JWKS,
token and userinfo endpoints) or from a client's metadata document URL.

Every rule about talking to another server is here, once:
- the URL: https with verified TLS (the system trust store, or `SSL_CERT_FILE`), or plain http to a
  loopback host when the development switch allows it (`config.upstream.is_allowed_url`);
- the host name is looked up once, within the deadline (getaddrinfo has no timeout of its own), and
  the connection made to an address found: never a second lookup, so never a DNS-rebinding window.
  TLS is for the URL's host name (SNI and certificate), whatever address was connected to;
- one deadline bounds the whole exchange (lookup, connect, TLS, request, response), and every read
  is bounded by what is left of it, so a server dripping bytes cannot stretch it past the API
  Gateway timeout; a byte budget on the wire (headers and framing included) and a cap on the body
  keep a server from filling memory;
- redirects are never followed: the URL is where the document lives (OpenID Connect Discovery §4.3;
  draft-ietf-oauth-client-id-metadata-document §4.1), and a redirect's target would need every
  check again;
- the body: JSON by media type (`application/json` or `+json`), not compressed, UTF-8 (RFC 8259
  §8.1), an object, no name twice (RFC 8259 §4: parsers disagree on which one wins), no `NaN` or
  `Infinity` (RFC 8259 §6).

The address guard (`FetchPolicy.public_only`) refuses a host if any of its addresses is not
globally routable (private, loopback unless allowed, link-local such as 169.254.169.254, ...).
The client-metadata fetch turns it on: whoever starts an authorization request chooses that URL
(SSRF, the draft's §6.5). The upstream OpenID provider leaves it off: its URLs come from the
operator's configuration and from the discovery document of the configured issuer, which is
already trusted with more than any URL (it asserts who signs in); an operator may run it on a
private network; and https-only with no redirects keeps those URLs away from the plain-http
services an SSRF usually aims at (instance metadata, the Lambda runtime API on loopback).

Why `http.client` and not httpx: what a library would take over is HTTP/1.1 framing, which
`http.client` already does here (request syntax, status line, header limits, chunked bodies). What
this module is for is no library's: httpx has per-operation timeouts but no deadline, no resolver
hook and no address vetting, so pinning the vetted address means a custom httpcore network backend
and stream wrapper (it works: `connect_tcp` may ignore the name, `start_tls` still gets it for SNI)
of the same size as `_Connection` and `_Wire` below. The Lambda layer has httpx2/httpcore2 only as
an unpinned dependency of `mcp`, and importing httpcore2 costs about 17 ms on the authorize
function's cold start, which imports this module.
"""

from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlencode, urlsplit

from wallet_mcp.config.upstream import is_allowed_url

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

USER_AGENT: Final = "wallet-mcp/0.1"
HEADER_ALLOWANCE: Final = 16 * 1024
"""Bytes allowed on the wire beyond the body: status line, headers, chunk framing."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
"""Host and port to IP address strings; `socket.getaddrinfo` unless a test says otherwise."""
Reason = Literal[
    "url",
    "address",
    "resolve",
    "timeout",
    "connect",
    "tls",
    "certificate",
    "protocol",
    "redirect",
    "not_json",
    "compressed",
    "too_large",
    "invalid_json",
    "not_object",
]
"""Which rule a fetch broke: callers with their own words for it (client metadata) branch on this."""

_MESSAGES: Final[Mapping[Reason, str]] = {
    "url": "the URL is not https",
    "address": "the host resolves to an address that is not public",
    "resolve": "the host name could not be resolved",
    "timeout": "the server did not answer in time",
    "connect": "the server could not be reached",
    "tls": "the TLS handshake with the server failed",
    "certificate": "the server's TLS certificate is not trusted",
    "protocol": "the server's answer is not usable HTTP",
    "redirect": "the server answered with a redirect (not followed)",
    "not_json": "the server answered HTTP {status} without JSON",
    "compressed": "the server answered with a compressed body",
    "too_large": "the server's answer is too large",
    "invalid_json": "the server answered malformed JSON",
    "not_object": "the server answered JSON that is not an object",
}
_HTTPS_PORT: Final = 443
_HTTP_PORT: Final = 80


class UpstreamUnavailable(Exception):
    """A server this one calls could not be reached, or answered something unusable. Safe to show
    a user."""


class FetchFailed(UpstreamUnavailable):
    """The fetcher refused an exchange: `reason` names the rule, `status` the HTTP status once known."""

    def __init__(self, reason: Reason, status: int | None = None) -> None:
        super().__init__(_MESSAGES[reason].format(status=status))
        self.reason: Reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    allow_loopback: bool = False
    """Development only: http to a loopback host name; with the guard, loopback addresses too."""
    public_only: bool = False
    """The address guard: every address of the host must be globally routable (SSRF)."""
    timeout_seconds: float = 4.0
    """For one whole exchange: lookup, connection, TLS, request and response."""
    max_bytes: int = 256 * 1024
    """Largest body read (a JWKS with a few keys is a few KiB; Microsoft's discovery is 2 KiB)."""
    ssl_context: ssl.SSLContext | None = None
    """None: `ssl.create_default_context()` (the system trust store, or `SSL_CERT_FILE`)."""
    resolver: Resolver | None = None

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.max_bytes <= 0:
            raise ValueError("timeout_seconds and max_bytes must be positive")


@dataclass(frozen=True, slots=True)
class JsonResponse:
    status: int
    document: dict[str, Any]
    cache_control: str
    """Every Cache-Control field value, joined by commas (RFC 9110 §5.3)."""


def get_json(url: str, policy: FetchPolicy, headers: Mapping[str, str] | None = None) -> JsonResponse:
    """GET a JSON object; any status but a redirect is returned with its body. FetchFailed otherwise."""
    return _fetch("GET", url, None, headers or {}, policy)


def post_form(
    url: str, form: Mapping[str, str], policy: FetchPolicy, headers: Mapping[str, str] | None = None
) -> JsonResponse:
    """POST an `application/x-www-form-urlencoded` body (RFC 6749 §4.1.3); any status is returned
    with its JSON body, so the caller can read an OAuth error response (RFC 6749 §5.2)."""
    body = urlencode(dict(form)).encode("ascii")
    headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    return _fetch("POST", url, body, headers, policy)


def _fetch(
    method: str, url: str, body: bytes | None, headers: Mapping[str, str], policy: FetchPolicy
) -> JsonResponse:
    # With the guard on, a loopback host is refused by its address (below), as any other that is
    # not public; without it, by its name here unless the development switch allows it.
    loopback_name_allowed = policy.allow_loopback or policy.public_only
    if not is_allowed_url(url, allow_loopback=loopback_name_allowed, allow_query=True):
        raise FetchFailed("url")
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (_HTTPS_PORT if tls else _HTTP_PORT)
    deadline = time.monotonic() + policy.timeout_seconds
    addresses = _addresses(host, port, policy, deadline)
    context = (policy.ssl_context or _default_context()) if tls else None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    budget = policy.max_bytes + HEADER_ALLOWANCE
    with _Connection(host, port, addresses, context, deadline, budget) as connection:
        try:
            connection.request(
                method,
                target,
                body=body,
                headers={
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                    "Connection": "close",
                    **headers,
                },
            )
            with connection.getresponse() as response:
                return _json_response(response, policy.max_bytes)
        except TimeoutError as exc:
            raise FetchFailed("timeout") from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise FetchFailed("protocol") from exc


@functools.cache
def _default_context() -> ssl.SSLContext:
    """Built once per process: loading the trust store takes milliseconds, wrapping is thread-safe."""
    return ssl.create_default_context()


# --- where to connect -----------------------------------------------------------------------------


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed("timeout")
    return left


def _addresses(host: str, port: int, policy: FetchPolicy, deadline: float) -> list[IPAddress]:
    """The host's addresses, looked up once; with the guard, refused unless every one is public."""
    addresses = _resolve(host, port, policy.resolver or _system_resolver, deadline)
    # Refusing when any one is not public (rather than picking a good one) keeps a name that mixes
    # public and internal addresses from probing the internal network.
    if policy.public_only and not all(_is_public(a, policy.allow_loopback) for a in addresses):
        raise FetchFailed("address")
    return addresses


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _resolve(host: str, port: int, resolver: Resolver, deadline: float) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]  # an IP literal needs no lookup
    except ValueError:
        pass
    results: list[object] = []

    def run() -> None:
        try:
            results.append(resolver(host, port))
        except Exception as exc:  # a resolver's failure is reported below, whatever its type
            results.append(exc)

    # getaddrinfo has no timeout of its own; a daemon thread lets the deadline cover the lookup too.
    thread = threading.Thread(target=run, name="fetch-resolve", daemon=True)
    thread.start()
    thread.join(_remaining(deadline))
    if thread.is_alive():
        raise FetchFailed("timeout")
    found = results[0] if results else None
    if isinstance(found, BaseException):
        raise FetchFailed("resolve") from found
    if not isinstance(found, list | tuple) or not found:
        raise FetchFailed("resolve")
    try:
        return list(dict.fromkeys(ipaddress.ip_address(text) for text in found))
    except ValueError as exc:
        raise FetchFailed("resolve") from exc


def _is_public(address: IPAddress, allow_loopback: bool) -> bool:
    """Globally routable, loopback only when allowed.

    `is_global` alone is not enough on every Python: multicast, reserved (incl. NAT64 64:ff9b::/96
    and IPv4-compatible ::a.b.c.d), link-local (incl. 169.254.169.254, the cloud metadata service)
    and site-local are refused by name. IPv4 embedded in IPv6 (mapped ::ffff:a.b.c.d, 6to4
    2002::/16) is checked as the IPv4 address it reaches.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _is_public(address.ipv4_mapped, allow_loopback)
        if address.sixtofour is not None and not _is_public(address.sixtofour, False):
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


# --- the exchange ---------------------------------------------------------------------------------


class _Connection(http.client.HTTPConnection):
    """http.client writes the request (header syntax checked, `Host` from the URL) and parses the
    answer (status line, header limits, chunked framing); this subclass decides only where the
    bytes go: to an address already looked up, TLS for the URL's host name, every read and write
    through `_Wire`. Used as a context manager, which closes the socket it opened."""

    def __init__(
        self,
        host: str,
        port: int,
        addresses: list[IPAddress],
        context: ssl.SSLContext | None,
        deadline: float,
        budget: int,
    ) -> None:
        # `Host` carries the port only when it is not the scheme's (RFC 9110 §7.2)
        self.default_port = _HTTPS_PORT if context is not None else _HTTP_PORT
        super().__init__(host, port)
        self._addresses = addresses
        self._context = context
        self._deadline = deadline
        self._budget = budget
        self._socket: socket.socket | None = None

    def connect(self) -> None:
        self._socket = _open(self._addresses, self.port, self._deadline)
        if self._context is not None:
            self._socket = _start_tls(self._socket, self._context, self.host, self._deadline)
        self.sock = _Wire(self._socket, self._deadline, self._budget)

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        if self._socket is not None:
            self._socket.close()


def _open(addresses: list[IPAddress], port: int, deadline: float) -> socket.socket:
    """A TCP connection to the first address that answers, in the resolver's order; never a name."""
    last_error: OSError | None = None
    for address in addresses:
        timeout = _remaining(deadline)
        sock = socket.socket(socket.AF_INET6 if address.version == 6 else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((str(address), port))
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        return sock
    if isinstance(last_error, TimeoutError):
        raise FetchFailed("timeout") from last_error
    raise FetchFailed("connect") from last_error


def _start_tls(sock: socket.socket, context: ssl.SSLContext, host: str, deadline: float) -> ssl.SSLSocket:
    sock.settimeout(_remaining(deadline))  # CPython bounds the whole handshake by it
    try:
        # SNI and certificate verification for the URL's name, though the socket was connected to an
        # address: the certificate proves the name, the address is ours.
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise FetchFailed("certificate") from exc
    except TimeoutError as exc:
        raise FetchFailed("timeout") from exc
    except (OSError, ValueError) as exc:
        raise FetchFailed("tls") from exc
    finally:
        sock.close()  # detached by a successful wrap_socket: closes nothing then


class _Wire:
    """The connected socket as http.client uses it (`sendall`, `makefile`, `close`), with every
    operation bounded by what is left of the deadline and all reads by one byte budget: a server
    dripping bytes cannot stretch the exchange, nor a flood of headers fill memory.

    `close` leaves the socket open: http.client calls it as soon as it has the headers of a
    `Connection: close` answer, before the body is read. `_Connection.__exit__` closes it.
    """

    def __init__(self, sock: socket.socket, deadline: float, budget: int) -> None:
        self._sock = sock
        self._deadline = deadline
        self._budget = budget

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_remaining(self._deadline))
        self._sock.sendall(data)

    def recv_into(self, buffer: WriteableBuffer) -> int:
        if self._budget <= 0:
            raise FetchFailed("too_large")
        self._sock.settimeout(_remaining(self._deadline))
        count = self._sock.recv_into(memoryview(buffer).cast("B")[: self._budget])
        self._budget -= count
        return count

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_WireReader(self))

    def close(self) -> None:
        pass


class _WireReader(io.RawIOBase):
    def __init__(self, wire: _Wire) -> None:
        super().__init__()
        self._wire = wire

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        return self._wire.recv_into(buffer)


def _json_response(response: http.client.HTTPResponse, max_bytes: int) -> JsonResponse:
    status = response.status
    if 300 <= status < 400:
        raise FetchFailed("redirect", status)
    content_type = response.headers.get_content_type()  # lower case; text/plain when absent
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise FetchFailed("not_json", status)
    # http.client asked for `identity` (Accept-Encoding); anything else cannot be parsed as sent
    if response.getheader("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        raise FetchFailed("compressed", status)
    if response.length is not None:  # Content-Length: refuse before reading a byte of the body
        if response.length > max_bytes:
            raise FetchFailed("too_large", status)
        body = response.read()  # IncompleteRead if the server sends less than it announced
    else:  # chunked, or until the connection closes: read one byte past the cap to notice
        body = response.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise FetchFailed("too_large", status)
    cache_control = ", ".join(str(value) for value in response.headers.get_all("Cache-Control") or ())
    return JsonResponse(status=status, document=_json_object(body, status), cache_control=cache_control)


def _refuse_duplicate_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal names wins; a document that means two things is refused.
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate name")
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # RFC 8259 §6 has no NaN or Infinity


def _json_object(body: bytes, status: int) -> dict[str, Any]:
    try:
        # RFC 8259 §8.1: JSON exchanged between systems is UTF-8.
        value = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_refuse_duplicate_names,
            parse_constant=_refuse_constant,
        )
    except (ValueError, RecursionError) as exc:  # RecursionError: deep nesting fits in a few KiB
        raise FetchFailed("invalid_json", status) from exc
    if not isinstance(value, dict):
        raise FetchFailed("not_object", status)
    return value
