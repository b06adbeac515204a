"""An upstream provider's metadata (OpenID Connect Discovery 1.0) and signing keys (its JWKS).

Both are fetched on first use and kept per warm container for an hour. The JWKS is fetched again
at once when an ID token names a key it does not hold (the provider rotated its keys), at most
once every `JWKS_MIN_REFRESH` seconds.

Discovery §4.3: the document's `issuer` must be the configured issuer exactly. The one
exception is a multi-tenant issuer (Microsoft's `common` and `organizations` endpoints publish
`https://login.microsoftonline.com/{tenantid}/v2.0`): the template is accepted when, with the
configured path segment in place of `{tenantid}`, it is the configured issuer; each ID token's
`iss` is then checked against the template filled with the token's own `tid`
(`id_tokens.expected_issuer`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from wallet_mcp.config.upstream import IdentityProvider, is_allowed_url
from wallet_mcp.primitives.fetch import FetchPolicy, JsonResponse, UpstreamUnavailable, get_json

TENANT_PLACEHOLDER: Final = "{tenantid}"
METADATA_TTL: Final = 3600
JWKS_TTL: Final = 3600
JWKS_MIN_REFRESH: Final = 30
ALLOWED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Asymmetric signatures only: `none` proves nothing, and an HS* token would be keyed with our own
client secret (RFC 8725 §3.1-3.2); OpenID Connect Core §3.1.3.7 lets a client refuse both."""

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    """As published: the configured issuer, or a multi-tenant template with `{tenantid}`."""
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    id_token_algorithms: tuple[str, ...]
    """The published `id_token_signing_alg_values_supported` this server accepts."""
    token_endpoint_auth_methods: tuple[str, ...]
    userinfo_endpoint: str | None = None

    def auth_method(self, has_secret: bool, preferred: AuthMethod | None = None) -> AuthMethod:
        """How to authenticate at the token endpoint: the configured method, else basic if offered,
        else post (RFC 6749 §2.3.1)."""
        if not has_secret:
            return "none"
        if preferred is not None:
            if preferred not in self.token_endpoint_auth_methods:
                raise UpstreamUnavailable(f"the identity provider does not offer {preferred}")
            return preferred
        if "client_secret_basic" in self.token_endpoint_auth_methods:
            return "client_secret_basic"
        if "client_secret_post" in self.token_endpoint_auth_methods:
            return "client_secret_post"
        raise UpstreamUnavailable("the identity provider offers no client-secret authentication")


def parse_metadata(
    provider: IdentityProvider, document: dict[str, Any], *, allow_loopback: bool
) -> ProviderMetadata:
    """The metadata, if usable; UpstreamUnavailable (the message names what is wrong) otherwise."""
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or not issuer_matches(issuer, provider.issuer):
        raise UpstreamUnavailable("the identity provider's discovery document names another issuer")
    endpoints: dict[str, str] = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str) or not is_allowed_url(
            value, allow_loopback=allow_loopback, allow_query=True
        ):
            raise UpstreamUnavailable(f"the identity provider's {name} is missing or not https")
        endpoints[name] = value
    response_types = document.get("response_types_supported")
    if isinstance(response_types, list) and "code" not in response_types:
        raise UpstreamUnavailable("the identity provider does not support the authorization code flow")
    published = document.get("id_token_signing_alg_values_supported")
    # Discovery §3 makes the list REQUIRED and RS256 always in it; without one, RS256 alone
    algorithms = tuple(
        a for a in (published if isinstance(published, list) else ["RS256"]) if a in ALLOWED_ALGORITHMS
    )
    if not algorithms:
        raise UpstreamUnavailable("the identity provider signs ID tokens with no algorithm accepted here")
    methods = document.get("token_endpoint_auth_methods_supported")
    userinfo = document.get("userinfo_endpoint")
    if userinfo is not None and not (
        isinstance(userinfo, str)
        and is_allowed_url(userinfo, allow_loopback=allow_loopback, allow_query=True)
    ):
        raise UpstreamUnavailable("the identity provider's userinfo_endpoint is not https")
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        jwks_uri=endpoints["jwks_uri"],
        id_token_algorithms=algorithms,
        # Discovery §3: when omitted, the default is client_secret_basic
        token_endpoint_auth_methods=tuple(
            m
            for m in (methods if isinstance(methods, list) else ["client_secret_basic"])
            if isinstance(m, str)
        ),
        userinfo_endpoint=userinfo,
    )


def issuer_matches(published: str, configured: str) -> bool:
    """The published issuer is the configured one, or its multi-tenant template."""
    if published == configured:
        return True
    if published.count(TENANT_PLACEHOLDER) != 1:
        return False
    before, after = published.split(TENANT_PLACEHOLDER)
    if not (configured.startswith(before) and configured.endswith(after)):
        return False
    segment = configured[len(before) : len(configured) - len(after)]
    return bool(segment) and "/" not in segment and len(before) + len(after) < len(configured)


class ProviderDirectory:
    """Metadata and keys of every configured provider, cached per warm container."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        clock: Callable[[], float],
        fetch: Callable[[str, FetchPolicy], JsonResponse] = get_json,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._fetch = fetch
        self._lock = threading.Lock()
        self._metadata: dict[str, tuple[float, ProviderMetadata]] = {}
        self._jwks: dict[str, tuple[float, dict[str, Any]]] = {}

    def metadata(self, provider: IdentityProvider) -> ProviderMetadata:
        now = self._clock()
        with self._lock:
            cached = self._metadata.get(provider.id)
        if cached is not None and now - cached[0] < METADATA_TTL:
            return cached[1]
        response = self._fetch(provider.discovery_url, self._policy)
        if response.status != 200:
            raise UpstreamUnavailable(
                f"the identity provider's discovery document answered HTTP {response.status}"
            )
        metadata = parse_metadata(provider, response.document, allow_loopback=self._policy.allow_loopback)
        with self._lock:
            self._metadata[provider.id] = (now, metadata)
        return metadata

    def keys(
        self, provider: IdentityProvider, metadata: ProviderMetadata, *, refresh: bool = False
    ) -> dict[str, Any]:
        """The provider's JWKS; `refresh`: fetch it again unless that was done a moment ago."""
        now = self._clock()
        with self._lock:
            cached = self._jwks.get(provider.id)
        if cached is not None:
            age = now - cached[0]
            if age < JWKS_TTL and (not refresh or age < JWKS_MIN_REFRESH):
                return cached[1]
        response = self._fetch(metadata.jwks_uri, self._policy)
        keys = response.document.get("keys")
        if response.status != 200 or not isinstance(keys, list):
            raise UpstreamUnavailable("the identity provider's key set (JWKS) cannot be read")
        with self._lock:
            self._jwks[provider.id] = (now, response.document)
        return response.document
