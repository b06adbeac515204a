"""ID token validation (OpenID Connect Core 1.0 §3.1.3.7), for tokens from an upstream provider.

In order: the algorithm must be one the provider publishes and this server accepts (asymmetric
only: never `none`, never HS*; RFC 8725 §3.1); the key is chosen by `kid` among the provider's own
published keys (fetched again once if the `kid` is unknown: the provider rotated); the signature
must verify; `iss` must be the provider's issuer (for a multi-tenant issuer, the template filled
with the token's own `tid`); `aud` must contain our client id, and `azp`, when present, be it;
`exp`, `iat` and `sub` are required and the token unexpired (60 s leeway for clock skew); the
`nonce` must be the one sent with the authorization request (kept as a digest).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import jwt

from wallet_mcp.config.upstream import IdentityProvider
from wallet_mcp.signin.upstream.discovery import ALLOWED_ALGORITHMS, TENANT_PLACEHOLDER, ProviderMetadata

LEEWAY_SECONDS: Final = 60
MAX_TOKEN_LENGTH: Final = 16 * 1024
_TENANT = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_KEY_TYPES: Final = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_CURVES: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_ISSUER_ALIASES: Final = {"https://accounts.google.com": ("accounts.google.com",)}
"""Google documents that its ID tokens' `iss` is `https://accounts.google.com` or `accounts.google.com`."""


class InvalidIdToken(Exception):
    """The ID token must not be trusted; the message (for logs and audit) names the failed check."""


@dataclass(frozen=True, slots=True)
class UpstreamIdentity:
    """Who the provider says signed in: what the ID token asserts, once validated."""

    issuer: str
    """The token's `iss` (for a multi-tenant provider, the user's own tenant's issuer)."""
    subject: str
    email: str | None
    """Lower-case; whether it may be trusted is `email_verified`."""
    email_verified: bool
    """Only an explicit `email_verified: true` counts; Microsoft never sends it (absent: false)."""
    name: str | None
    tenant: str | None


def expected_issuers(metadata: ProviderMetadata, claims: Mapping[str, Any]) -> set[str]:
    """The `iss` values acceptable for a token with these (not yet verified) claims."""
    issuer = metadata.issuer
    if TENANT_PLACEHOLDER in issuer:
        tenant = claims.get("tid")
        if not isinstance(tenant, str) or not _TENANT.match(tenant):
            raise InvalidIdToken("a multi-tenant provider's ID token has no valid tid")
        issuer = issuer.replace(TENANT_PLACEHOLDER, tenant)
    return {issuer, *_ISSUER_ALIASES.get(issuer, ())}


def validate_id_token(
    token: str,
    *,
    provider: IdentityProvider,
    metadata: ProviderMetadata,
    keys: Callable[[bool], Mapping[str, Any]],
    nonce_hash: str,
) -> UpstreamIdentity:
    """The identity in `token`, or InvalidIdToken. `keys(refresh)` is the provider's JWKS."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidIdToken("no ID token")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidIdToken("the ID token is malformed") from exc
    algorithm = header.get("alg")
    accepted = ALLOWED_ALGORITHMS.intersection(metadata.id_token_algorithms)
    if not isinstance(algorithm, str) or algorithm not in accepted:
        raise InvalidIdToken(f"the ID token's algorithm {str(algorithm)[:16]!r} is not accepted")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidIdToken("the ID token's kid is malformed")
    key = _key(keys(False), kid, algorithm) or _key(keys(True), kid, algorithm)
    if key is None:
        raise InvalidIdToken("the ID token is signed with a key the provider does not publish")
    issuers = expected_issuers(metadata, unverified)
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[algorithm],
            audience=provider.client_id,
            issuer=issuers,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidIdToken("the ID token has expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise InvalidIdToken("the ID token is for another client (aud)") from exc
    except jwt.InvalidIssuerError as exc:
        raise InvalidIdToken("the ID token is from another issuer (iss)") from exc
    except jwt.InvalidSignatureError as exc:
        raise InvalidIdToken("the ID token's signature does not verify") from exc
    except jwt.PyJWTError as exc:
        raise InvalidIdToken(f"the ID token is invalid ({type(exc).__name__})") from exc
    return _identity(claims, provider, metadata, nonce_hash)


def _identity(
    claims: Mapping[str, Any], provider: IdentityProvider, metadata: ProviderMetadata, nonce_hash: str
) -> UpstreamIdentity:
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    # Core §3.1.3.7 items 4-5: with several audiences azp should be present; when present, it is us
    if (azp is not None and azp != provider.client_id) or (len(audiences) > 1 and azp is None):
        raise InvalidIdToken("the ID token was issued to another party (azp)")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(
        hashlib.sha256(nonce.encode("utf-8")).hexdigest(), nonce_hash
    ):
        raise InvalidIdToken("the ID token's nonce is not the one sent (replay)")
    subject = claims["sub"]
    if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
        raise InvalidIdToken("the ID token's sub is malformed")
    tenant = claims.get("tid")
    tenant_bound = TENANT_PLACEHOLDER in metadata.issuer or provider.allowed_tenants
    if tenant_bound and (
        not isinstance(tenant, str)
        or (provider.allowed_tenants and tenant.lower() not in provider.allowed_tenants)
    ):
        raise InvalidIdToken("the user's tenant is not allowed to sign in here")
    email, verified = _email(claims)
    return UpstreamIdentity(
        issuer=str(claims["iss"]),
        subject=subject,
        email=email,
        email_verified=verified,
        name=_name(claims),
        tenant=tenant if isinstance(tenant, str) else None,
    )


def with_userinfo(identity: UpstreamIdentity, userinfo: Mapping[str, Any]) -> UpstreamIdentity:
    """The identity completed from the userinfo response, for providers that keep the scope's claims
    out of the ID token (Core §5.4). Core §5.3.2: its `sub` must be the ID token's, or the
    response is not about this user and is refused."""
    if userinfo.get("sub") != identity.subject:
        raise InvalidIdToken("the userinfo response is about another subject")
    email, verified = _email(userinfo)
    return replace(identity, email=email, email_verified=verified, name=identity.name or _name(userinfo))


def _email(claims: Mapping[str, Any]) -> tuple[str | None, bool]:
    raw = claims.get("email")
    if not isinstance(raw, str) or not 3 <= len(raw) <= 320 or "@" not in raw:
        return None, False
    verified = claims.get("email_verified")
    # some providers send the string "true" (a known deviation); anything else is unverified
    return raw.strip().lower(), verified is True or verified == "true"


def _name(claims: Mapping[str, Any]) -> str | None:
    name = claims.get("name")
    return (" ".join(name.split())[:100] or None) if isinstance(name, str) else None


def _key(jwks: Mapping[str, Any], kid: str | None, algorithm: str) -> jwt.PyJWK | None:
    """The published key for this `kid` and algorithm; without a kid, the only suitable one."""
    candidates = []
    for jwk in jwks.get("keys") or ():
        if not isinstance(jwk, dict):
            continue
        if jwk.get("kty") != _KEY_TYPES[algorithm[:2]] or jwk.get("use", "sig") != "sig":
            continue
        if jwk.get("alg", algorithm) != algorithm:
            continue
        if algorithm in _CURVES and jwk.get("crv") != _CURVES[algorithm]:
            continue
        if kid is not None and jwk.get("kid") != kid:
            continue
        candidates.append(jwk)
    if len(candidates) != 1:
        return None  # none, or an ambiguous choice: never guess which key was meant
    try:
        return jwt.PyJWK(candidates[0], algorithm=algorithm)
    except jwt.PyJWTError:
        return None
