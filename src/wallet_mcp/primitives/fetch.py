"""HTTP to an upstream OpenID provider: discovery, JWKS and the token endpoint, JSON only.

Every URL is https (verified TLS, the system trust store or `SSL_CERT_FILE`), or plain http to a
loopback host when the development switch allows it; the same rule as the issuer's
(`providers.is_allowed_url`), applied to every URL the discovery document names. Redirects are not
followed (OpenID Connect Discovery §4.3: the document is at the issuer; endpoints are used as
published). Each exchange is bounded by one deadline and the body by a size cap, so a slow or
hostile upstream cannot hold a sign-in longer than the API Gateway timeout or fill memory.

Unlike client metadata documents (oauth/client_id_metadata.py), these URLs are chosen by the
operator's configuration and the configured issuer, never by whoever starts a request, so no
address filtering beyond the loopback rule is needed.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from wallet_mcp.oauth.upstream.providers import is_allowed_url

USER_AGENT: Final = "wallet-mcp/0.1 (OpenID Connect relying party)"


class UpstreamUnavailable(Exception):
    """The provider could not be reached, or answered something unusable. Safe to show a user."""


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    allow_loopback: bool = False
    timeout_seconds: float = 4.0
    """For one whole exchange: connection, TLS, request and response."""
    max_bytes: int = 256 * 1024
    """Largest body read (a JWKS with a few keys is a few KiB; Microsoft's discovery is 2 KiB)."""
    ssl_context: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class JsonResponse:
    status: int
    document: dict[str, Any]
    cache_control: str


def get_json(url: str, policy: FetchPolicy, headers: Mapping[str, str] | None = None) -> JsonResponse:
    return _exchange("GET", url, None, headers or {}, policy)


def post_form(
    url: str, form: Mapping[str, str], policy: FetchPolicy, headers: Mapping[str, str] | None = None
) -> JsonResponse:
    """POST an `application/x-www-form-urlencoded` body (RFC 6749 §4.1.3); any status is returned
    with its JSON body, so the caller can read an OAuth error response (RFC 6749 §5.2)."""
    body = urlencode(dict(form)).encode("ascii")
    return _exchange(
        "POST",
        url,
        body,
        {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        policy,
    )


def _exchange(
    method: str, url: str, body: bytes | None, headers: Mapping[str, str], policy: FetchPolicy
) -> JsonResponse:
    if not is_allowed_url(url, allow_loopback=policy.allow_loopback, allow_query=True):
        raise UpstreamUnavailable("the identity provider published an endpoint that is not https")
    parts = urlsplit(url)
    host = parts.hostname or ""
    deadline = time.monotonic() + policy.timeout_seconds
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = policy.ssl_context or ssl.create_default_context()
        connection = http.client.HTTPSConnection(
            host, parts.port, timeout=policy.timeout_seconds, context=context
        )
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=policy.timeout_seconds)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(
            method,
            target,
            body=body,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **headers},
        )
        response = connection.getresponse()
        raw = _read(connection, response, deadline, policy.max_bytes)
        status = response.status
        content_type = response.headers.get_content_type()
        cache_control = ", ".join(response.headers.get_all("Cache-Control") or ())
    except TimeoutError as exc:
        raise UpstreamUnavailable("the identity provider did not answer in time") from exc
    except ssl.SSLCertVerificationError as exc:
        raise UpstreamUnavailable("the identity provider's TLS certificate is not trusted") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise UpstreamUnavailable("the identity provider could not be reached") from exc
    finally:
        connection.close()
    if 300 <= status < 400:
        raise UpstreamUnavailable("the identity provider answered with a redirect (not followed)")
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UpstreamUnavailable(f"the identity provider answered HTTP {status} without JSON")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise UpstreamUnavailable("the identity provider answered malformed JSON") from exc
    if not isinstance(document, dict):
        raise UpstreamUnavailable("the identity provider answered JSON that is not an object")
    return JsonResponse(status=status, document=document, cache_control=cache_control)


def _read(
    connection: http.client.HTTPConnection,
    response: http.client.HTTPResponse,
    deadline: float,
    max_bytes: int,
) -> bytes:
    """The body, read in pieces each bounded by what is left of the deadline."""
    if response.length is not None and response.length > max_bytes:
        raise UpstreamUnavailable("the identity provider's answer is too large")
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        if connection.sock is not None:
            connection.sock.settimeout(left)
        chunk = response.read1(16 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise UpstreamUnavailable("the identity provider's answer is too large")
        chunks.append(chunk)
