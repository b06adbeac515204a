"""Identity Assertion JWT Authorization Grants (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant
§3 and §4.4; MCP ext-auth enterprise-managed-authorization §4.3 and §5.1), presented with the RFC
7523 §2.1 `jwt-bearer` grant.

Pure: the trusted IdP's keys are supplied (`oauth.server.jwt_bearer` fetches them), and the `jti`
is spent elsewhere (`storage.assertion_jtis`). Every refusal is `invalid_grant` (RFC 7521 §5.2,
RFC 7523 §3.1) with one of the fixed descriptions below: nothing of the assertion is echoed.

The checks (RFC 7523 §3 and the draft's §4.4.1):
- header `typ` is `oauth-id-jag+jwt` (RFC 8725 §3.11: explicit typing, so an ID token or an access
  token of the same IdP cannot pass for a grant);
- `alg` from the allow-list (RS256, PS256, ES256): never `none`, never an HMAC;
- `iss` is a configured IdP's issuer, exactly; the signature is by a key of that IdP's JWKS;
- `aud` is this authorization server's issuer and `resource` is its MCP server, together;
- `client_id` is the client that authenticated the request;
- `exp` not passed, `iat` not in the future, and at most `MAX_LIFETIME` between them and now;
- `jti` present (single use: the caller).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from wallet_mcp.config.enterprise import TrustedIdp
from wallet_mcp.primitives.client_assertions import SIGNING_ALGORITHMS, bound_key
from wallet_mcp.primitives.errors import InvalidGrant, InvalidScope
from wallet_mcp.primitives.scopes import parse_scope

GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
"""RFC 7523 §2.1."""
ID_JAG_TYP: Final = "oauth-id-jag+jwt"
MAX_ASSERTION_BYTES: Final = 16 * 1024
MAX_LIFETIME: Final = 3600
"""Seconds an ID-JAG may live (`exp - iat`) and be ahead (`exp - now`): IdPs issue 5 minutes."""
LEEWAY: Final = 30
_MAX_JTI: Final = 256

# the fixed descriptions (never an echo of the assertion)
MALFORMED: Final = "assertion is not a signed ID-JAG"
WRONG_TYP: Final = "assertion typ must be oauth-id-jag+jwt"
WRONG_ALG: Final = "assertion alg is not allowed"
UNTRUSTED: Final = "assertion issuer is not a trusted identity provider"
BAD_SIGNATURE: Final = "assertion signature is not valid"
WRONG_AUDIENCE: Final = "assertion aud and resource must name this authorization server and its MCP server"
WRONG_CLIENT: Final = "assertion was issued to another client"
CLIENT_NOT_ALLOWED: Final = "this client may not use grants of this identity provider"
EXPIRED: Final = "assertion has expired or is not valid yet"
MISSING: Final = "assertion lacks a required claim"
REPLAYED: Final = "assertion was already used"
UNMAPPED: Final = "the assertion's subject is not linked to a wallet user"
NO_SCOPE: Final = "no scope of the assertion is allowed for this client"
IDP_CUT_OFF: Final = "this identity provider's grants were ended by an administrator"


@dataclass(frozen=True, slots=True)
class Refusals:
    """The fixed `invalid_grant` descriptions of one kind of signed JWT grant."""

    expired: str
    wrong_audience: str
    untrusted: str
    missing: str
    malformed: str
    bad_signature: str


_REFUSALS: Final = Refusals(EXPIRED, WRONG_AUDIENCE, UNTRUSTED, MISSING, MALFORMED, BAD_SIGNATURE)


@dataclass(frozen=True, slots=True)
class IdJag:
    """A verified grant."""

    idp: TrustedIdp
    subject: str
    jti: str
    expires_at: int
    issued_at: int
    resource: str
    scope: tuple[str, ...] | None
    """None: the assertion names no scope (the IdP's policy did not narrow it)."""
    email: str | None
    """The `email` claim, only when the IdP asserts `email_verified: true`."""


def unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    import jwt
    from jwt.exceptions import PyJWTError

    if not assertion or len(assertion) > MAX_ASSERTION_BYTES or assertion.count(".") != 2:
        raise InvalidGrant(MALFORMED)
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except (PyJWTError, ValueError, TypeError) as exc:
        raise InvalidGrant(MALFORMED) from exc
    if not isinstance(claims, dict):
        raise InvalidGrant(MALFORMED)
    return header, claims


def issuer_of(assertion: str, trusted: Iterable[TrustedIdp]) -> tuple[TrustedIdp, str | None]:
    """The trusted IdP the assertion names (read before verifying: only to find whose keys to
    verify it with) and its header's `kid`; refuses the header checks first."""
    header, claims = unverified(assertion)
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in (ID_JAG_TYP, f"application/{ID_JAG_TYP}"):
        raise InvalidGrant(WRONG_TYP)
    # RFC 8725 §3.1: only the algorithms this server allows; `none` and HMAC never
    if header.get("alg") not in SIGNING_ALGORITHMS:
        raise InvalidGrant(WRONG_ALG)
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidGrant(MALFORMED)
    issuer = claims.get("iss")
    for idp in trusted:
        if isinstance(issuer, str) and issuer == idp.issuer:
            return idp, kid
    raise InvalidGrant(UNTRUSTED)


def verify_id_jag(
    assertion: str,
    idp: TrustedIdp,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    resources: Mapping[str, str],
    client_id: str,
    now: int,
) -> IdJag:
    """The grant, verified against `idp`'s keys; `resources`: every name of this server's MCP
    resource (locally its loopback aliases too) → the resource."""

    header, _ = unverified(assertion)
    claims = decode_signed(
        assertion,
        jwks,
        str(header.get("alg")),
        header.get("kid"),
        issuer=idp.issuer,
        audience=issuer,
        required=("iss", "sub", "aud", "exp", "iat", "jti"),
        refusals=_REFUSALS,
    )
    # the draft §4.4.1 and ext-auth §4.3: `aud` and `resource` together name us (RFC 8707)
    resource = claims.get("resource")
    if not isinstance(resource, str) or resource not in resources:
        raise InvalidGrant(WRONG_AUDIENCE)
    # ext-auth §5.1: the client it was issued to is the one that authenticated
    if claims.get("client_id") != client_id:
        raise InvalidGrant(WRONG_CLIENT)
    if client_id not in idp.client_ids:
        raise InvalidGrant(CLIENT_NOT_ALLOWED)
    expires_at, issued_at = claims.get("exp"), claims.get("iat")
    if (
        not isinstance(expires_at, int)
        or not isinstance(issued_at, int)
        or issued_at > now + LEEWAY
        or expires_at - issued_at > MAX_LIFETIME
        or expires_at > now + MAX_LIFETIME
    ):
        raise InvalidGrant(EXPIRED)
    subject, jti = claims.get("sub"), claims.get("jti")
    if not isinstance(subject, str) or not subject or len(subject) > 512:
        raise InvalidGrant(MISSING)
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI or not encodable(jti):
        raise InvalidGrant(MISSING)
    raw_scope = claims.get("scope")
    if raw_scope is not None and not isinstance(raw_scope, str):
        raise InvalidGrant(MALFORMED)
    try:
        asserted = parse_scope(raw_scope) if raw_scope is not None else None
    except InvalidScope as exc:
        raise InvalidGrant(MALFORMED) from exc
    email = claims.get("email")
    verified_email = (
        email.strip().lower()
        if isinstance(email, str) and claims.get("email_verified") is True and 3 <= len(email) <= 320
        else None
    )
    return IdJag(
        idp=idp,
        subject=subject,
        jti=jti,
        expires_at=expires_at,
        issued_at=issued_at,
        resource=resources[resource],
        scope=asserted,
        email=verified_email,
    )


def granted_scope(
    requested: tuple[str, ...],
    asserted: tuple[str, ...] | None,
    client_allows: Iterable[str],
    idp_allows: Iterable[str],
) -> tuple[str, ...]:
    """requested ∩ asserted ∩ the client's allowance ∩ the IdP's, in the order asked (RFC 6749
    §3.3: the server may grant less; nothing requested: what the assertion names)."""
    allowed = set(client_allows) & set(idp_allows)
    if asserted is not None:
        allowed &= set(asserted)
    wanted = requested or asserted or tuple(idp_allows)
    return tuple(s for s in dict.fromkeys(wanted) if s in allowed)


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def key_set(jwks: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return []
    return [k for k in keys if isinstance(k, Mapping)]


def decode_signed(
    assertion: str,
    jwks: Mapping[str, Any],
    alg: str,
    kid: object,
    *,
    issuer: str,
    audience: str,
    required: tuple[str, ...],
    refusals: Refusals,
) -> dict[str, Any]:
    """The claims of a JWT signed by one of `jwks`' signing keys (the one named by `kid`, else any
    that verifies), with `iss`, `aud`, `exp`/`iat` (with `LEEWAY`) and `required` checked by
    pyjwt; every failure is `invalid_grant` with one of `refusals`' fixed descriptions."""
    import jwt
    from jwt.exceptions import PyJWTError

    for candidate in key_set(jwks):
        if (kid is not None and candidate.get("kid") != kid) or candidate.get("use") not in (None, "sig"):
            continue
        key = bound_key(candidate, alg)
        if key is None:
            continue
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key=key,
                algorithms=[alg],
                issuer=issuer,
                audience=audience,
                leeway=LEEWAY,
                options={"require": list(required)},
            )
        except jwt.InvalidSignatureError:
            continue
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as exc:
            raise InvalidGrant(refusals.expired) from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidGrant(refusals.wrong_audience) from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidGrant(refusals.untrusted) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidGrant(refusals.missing) from exc
        except (PyJWTError, ValueError, TypeError) as exc:
            raise InvalidGrant(refusals.malformed) from exc
        return claims
    raise InvalidGrant(refusals.bad_signature)
