"""Client ID Metadata Documents (CIMD): an `https` URL as `client_id`, and the document it points at.

draft-ietf-oauth-client-id-metadata-document-00 lets a client with no prior relationship use a URL as
its `client_id` (§3); the authorization server fetches the JSON document at that URL (§4) and uses it
as the client's registration. MCP authorization (2025-11-25 and 2026-07-28, Client Registration,
"Client ID Metadata Documents") makes this the preferred mechanism, requires the `client_id` in the
document to match the URL exactly and the redirect URIs to be checked against it, and its Security
Considerations ("Client ID Metadata Document Security") point at the draft's §6, SSRF above all.

The fetch is the dangerous part: whoever starts an authorization request chooses the URL, so the
server must not become a proxy into its own network (§6.5). `fetch_client_metadata` therefore goes
through the project's one fetcher (`primitives.fetch`) with its address guard on: the host is
resolved once and refused if any address is not globally routable, the connection is made to the
vetted address (no second lookup, no DNS-rebinding window) with TLS verified for the URL's host
name; no redirect is followed, the body is capped (§6.6: 5 KB) and the whole exchange bounded by
one deadline. What stays here is this draft's own: the URL's shape (§3), a 200 and nothing else,
the cache lifetime (§4.4), the document's validation (§4.1), and this module's words for a refusal.

`validate_client_metadata` accepts public clients, and confidential ones that authenticate with
`private_key_jwt` and publish their keys (§6.2: a `jwks_uri`, or `jwks` inline), as ChatGPT's
document does. There is no way to share a secret with a document (§4.1): no `client_secret_*`.

Pure: nothing is stored. Callers cache a `FetchedDocument` for its `cache_seconds` (§4.4) and never
cache a failure or an invalid document (§4.4). A `ClientMetadataError` means the authorization
request is aborted (§4.3); its message never repeats text from the document.
"""

from __future__ import annotations

import re
import ssl
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import SplitResult, urlsplit

from wallet_mcp.primitives import fetch
from wallet_mcp.primitives.client_assertions import InvalidJwks, validate_jwks
from wallet_mcp.primitives.errors import InvalidRedirectUri, InvalidScope
from wallet_mcp.primitives.redirect_uris import (
    ApplicationType,
    infer_application_type,
    validate_redirect_uri,
)
from wallet_mcp.primitives.scopes import SCOPE_DESCRIPTIONS, parse_scope

MAX_URL_LENGTH: Final = 2000
MAX_REDIRECT_URIS: Final = 10
MAX_CLIENT_NAME_LENGTH: Final = 100
USER_AGENT: Final = "wallet-mcp/0.1 (OAuth Client ID Metadata Document fetcher)"
REFUSALS: Final[Mapping[fetch.Reason, str]] = {
    "url": "client_id is not a valid client metadata document URL",
    "address": "the client_id host resolves to an address that is not public",
    "resolve": "could not resolve the client_id host",
    "timeout": "fetching the client metadata document timed out",
    "connect": "could not connect to the client_id host",
    "tls": "the TLS handshake with the client_id host failed",
    "certificate": "the client_id host's TLS certificate is not trusted",
    "protocol": "the client_id host sent an unusable HTTP response",
    "redirect": "the client metadata document URL redirects (not followed)",
    "not_json": "the client metadata document is not served as JSON",  # §4.1: application/json
    "compressed": "the client metadata document is served compressed",
    "too_large": "the client metadata document is too large",
    "invalid_json": "the client metadata document is not valid JSON",
    "not_object": "the client metadata document is not a JSON object",
}
"""A fetch refusal in this module's words, one for each of the fetcher's reasons."""

_ALLOWED_GRANT_TYPES: Final = frozenset({"authorization_code", "refresh_token"})
_BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Invisible characters that reorder text: a name could otherwise render as another client's name."""
_DELTA_SECONDS = re.compile(r"[0-9]+")


class ClientMetadataError(Exception):
    """The client's metadata document cannot be used; the message is safe to show a user."""


@dataclass(frozen=True)
class FetchPolicy:
    """How documents are fetched and cached; the address guard is not a setting (§6.5)."""

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
    resolver: fetch.Resolver | None = None
    """Host and port to IP address strings; None: `socket.getaddrinfo`."""

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.max_bytes <= 0:
            raise ValueError("timeout_seconds and max_bytes must be positive")
        if not 0 <= self.min_cache_seconds <= self.default_cache_seconds <= self.max_cache_seconds:
            raise ValueError("cache bounds must satisfy 0 <= min <= default <= max")

    def transport(self) -> fetch.FetchPolicy:
        """The fetcher's policy for a document: always address-guarded."""
        return fetch.FetchPolicy(
            allow_loopback=self.allow_loopback,
            public_only=True,
            timeout_seconds=self.timeout_seconds,
            max_bytes=self.max_bytes,
            ssl_context=self.ssl_context,
            resolver=self.resolver,
        )


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
    token_endpoint_auth_method: Literal["none", "private_key_jwt"] = "none"
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None


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


# --- Fetching (§4, §4.4, §6.5, §6.6) ---------------------------------------------------------------


def fetch_host(url: str) -> str:
    """The host a fetch of `url` goes to (what fetches are counted by, so that no host can be made
    a target through this server)."""
    parts = _split_client_id(url)
    return (parts.hostname or "") if parts is not None else ""


def fetch_client_metadata(url: str, policy: FetchPolicy) -> FetchedDocument:
    """GET the document at `url` with the fetcher's address guard on; ClientMetadataError for any failure."""
    if _split_client_id(url) is None:
        raise ClientMetadataError("client_id is not a valid client metadata document URL")
    try:
        response = fetch.get_json(url, policy.transport(), {"User-Agent": USER_AGENT})
    except fetch.FetchFailed as exc:
        raise _refusal(exc) from exc
    if response.status != 200:
        raise ClientMetadataError(f"the client metadata document URL answered HTTP {response.status}")
    return FetchedDocument(
        document=response.document, cache_seconds=_cache_seconds(response.cache_control, policy)
    )


def _refusal(failure: fetch.FetchFailed) -> ClientMetadataError:
    if failure.status not in (None, 200) and failure.reason != "redirect":
        return ClientMetadataError(f"the client metadata document URL answered HTTP {failure.status}")
    return ClientMetadataError(REFUSALS[failure.reason])


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
    method, jwks, jwks_uri = _credentials(candidate)
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
        token_endpoint_auth_method=method,
        jwks=jwks,
        jwks_uri=jwks_uri,
    )


def _credentials(
    document: Mapping[Any, Any],
) -> tuple[Literal["none", "private_key_jwt"], dict[str, Any] | None, str | None]:
    method = document.get("token_endpoint_auth_method")
    if method is not None and not isinstance(method, str):
        raise ClientMetadataError("token_endpoint_auth_method must be a string")
    # §4.1: no shared secret can exist for a document-defined client, so no method based on one and
    # no client_secret properties.
    if (method or "").startswith("client_secret") or "client_secret" in document:
        raise ClientMetadataError("a client metadata document cannot use a client secret")
    if "client_secret_expires_at" in document:
        raise ClientMetadataError("a client metadata document cannot use a client secret")
    if method in (None, "none"):
        if document.get("jwks") is not None or document.get("jwks_uri") is not None:
            raise ClientMetadataError("jwks and jwks_uri are only for private_key_jwt")
        return "none", None, None
    # §6.2: a confidential client authenticates with keys it publishes (RFC 7523 §2.2)
    if method != "private_key_jwt":
        raise ClientMetadataError("token_endpoint_auth_method must be none or private_key_jwt")
    raw_jwks, raw_uri = document.get("jwks"), document.get("jwks_uri")
    if (raw_jwks is None) == (raw_uri is None):  # RFC 7591 §2: never both
        raise ClientMetadataError("private_key_jwt needs exactly one of jwks or jwks_uri")
    if raw_uri is not None:
        return "private_key_jwt", None, _optional_https_url(document, "jwks_uri")
    try:
        return "private_key_jwt", validate_jwks(raw_jwks), None
    except InvalidJwks as exc:
        raise ClientMetadataError(f"jwks: {exc}") from exc


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
