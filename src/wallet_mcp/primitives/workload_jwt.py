"""Workload identity: a JWT a trusted workload issuer (a CI system's OIDC tokens, a cluster's
service-account tokens) signed for a workload, presented with the RFC 7523 §2.1 `jwt-bearer` grant
to obtain a token for the machine client the workload is (MCP SEP-1933; the conformance suite's
`auth/wif-jwt-bearer`). The workload holds no secret of ours: the issuer vouches for it.

Pure, like `primitives.id_jag`: the issuer's keys are supplied, the `jti` spent by the caller. The
checks (RFC 7523 §3): `alg` from the allow-list; signed by a key of the issuer's JWKS; `iss` the
configured issuer; `aud` names the configured audience (default: this server's issuer); `exp` not
passed and `iat` not ahead, at most an hour long; `sub` one of the configured subjects, mapped to
the client that asks (exact match: `repo:acme/app:ref:refs/heads/main`, never a pattern). Every
refusal is `invalid_grant` with a fixed description.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from wallet_mcp.config.enterprise import TrustedWorkloadIssuer
from wallet_mcp.primitives.client_assertions import SIGNING_ALGORITHMS
from wallet_mcp.primitives.errors import InvalidGrant
from wallet_mcp.primitives.id_jag import LEEWAY, MAX_LIFETIME, Refusals, decode_signed, encodable, unverified

WRONG_ALG: Final = "workload token alg is not allowed"
BAD_SIGNATURE: Final = "workload token signature is not valid"
WRONG_AUDIENCE: Final = "workload token aud does not name this authorization server"
EXPIRED: Final = "workload token has expired or is not valid yet"
MISSING: Final = "workload token lacks a required claim"
NOT_THIS_CLIENT: Final = "this workload may not act as this client"
REPLAYED: Final = "workload token was already used"
_REFUSALS: Final = Refusals(
    expired=EXPIRED,
    wrong_audience=WRONG_AUDIENCE,
    untrusted=BAD_SIGNATURE,
    missing=MISSING,
    malformed=BAD_SIGNATURE,
    bad_signature=BAD_SIGNATURE,
)


@dataclass(frozen=True, slots=True)
class WorkloadToken:
    issuer: TrustedWorkloadIssuer
    subject: str
    jti: str | None
    expires_at: int


def trusted_issuer(
    assertion: str, issuers: tuple[TrustedWorkloadIssuer, ...]
) -> TrustedWorkloadIssuer | None:
    """The workload issuer the (unverified) JWT names, if it is one."""
    _, claims = unverified(assertion)
    issuer = claims.get("iss")
    return next((w for w in issuers if isinstance(issuer, str) and issuer == w.issuer), None)


def verify_workload_token(
    assertion: str,
    issuer: TrustedWorkloadIssuer,
    jwks: Mapping[str, Any],
    *,
    own_issuer: str,
    client_id: str,
    now: int,
) -> WorkloadToken:

    header, _ = unverified(assertion)
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in SIGNING_ALGORITHMS:
        raise InvalidGrant(WRONG_ALG)
    claims = decode_signed(
        assertion,
        jwks,
        str(alg),
        kid,
        issuer=issuer.issuer,
        audience=issuer.audience or own_issuer,
        required=("iss", "sub", "aud", "exp", "iat"),
        refusals=_REFUSALS,
    )
    expires_at, issued_at = claims.get("exp"), claims.get("iat")
    if (
        not isinstance(expires_at, int)
        or not isinstance(issued_at, int)
        or issued_at > now + LEEWAY
        or expires_at - issued_at > MAX_LIFETIME
        or expires_at > now + MAX_LIFETIME
    ):
        raise InvalidGrant(EXPIRED)
    subject = claims.get("sub")
    if not isinstance(subject, str) or issuer.subjects.get(subject) != client_id:
        raise InvalidGrant(NOT_THIS_CLIENT)
    jti = claims.get("jti")
    if jti is not None and (not isinstance(jti, str) or not jti or len(jti) > 256 or not encodable(jti)):
        raise InvalidGrant(MISSING)
    return WorkloadToken(issuer=issuer, subject=subject, jti=jti, expires_at=expires_at)
