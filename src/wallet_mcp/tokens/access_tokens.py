"""Access tokens in the JWT profile of RFC 9068: the claims, their issuance and their validation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from wallet_mcp.tokens.keys import KmsPublicKeys
from wallet_mcp.tokens.signer import KmsJwtSigner

ACCESS_TOKEN_TYP: Final = "at+jwt"
"""RFC 9068 §2.1: the `typ` header of an access token (so no other JWT can pass for one)."""

_MAX_TOKEN_LENGTH: Final = 8192
_MAX_LIFETIME: Final = 24 * 3600
_REQUIRED_CLAIMS: Final = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]
ALGORITHMS: Final = ("RS256", "PS256")
"""What our tokens are signed with (`tokens.signer`): RS256, or PS256 under the FAPI 2.0 profile.
Both are accepted whatever the profile, so switching it on or off never ends the tokens issued
before; either is verified only with one of this server's own RSA keys."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A validated access token: who it speaks for, which client holds it, and what it allows."""

    subject: str
    client_id: str
    scopes: frozenset[str]
    audience: str
    issued_at: int
    expires_at: int
    jti: str
    idp: str | None = None
    """The enterprise IdP whose grant (ID-JAG) this token was issued on (`idp` claim), if any."""
    jkt: str | None = None
    """RFC 9449 §6.1 `cnf.jkt`: the thumbprint of the DPoP key the token is bound to (None: a
    bearer token)."""

    def has_scopes(self, needed: Iterable[str]) -> bool:
        return self.scopes.issuperset(needed)


class InvalidAccessToken(Exception):
    """The presented token is not one this resource accepts (RFC 6750 §3.1 `invalid_token`).

    `client_id`: the client the token names, when its signature is ours (expired, or issued for
    another resource) — who to file the refusal under in the connection log; None otherwise, as a
    token we did not sign names nobody."""

    def __init__(self, message: str, *, client_id: str | None = None) -> None:
        super().__init__(message)
        self.client_id = client_id


def access_token_claims(
    *,
    issuer: str,
    subject: str,
    client_id: str,
    audience: str,
    scope: str,
    ttl: int,
    now: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """RFC 9068 §2.2 claims. `sub` is the user, or for client credentials the client itself."""
    issued_at = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "client_id": client_id,
        "scope": scope,
        "iat": issued_at,
        "exp": issued_at + ttl,
        "jti": uuid.uuid4().hex,
    }
    if extra:
        claims.update(extra)
    return claims


def issue_access_token(signer: KmsJwtSigner, claims: dict[str, Any]) -> str:
    return signer.sign(claims, typ=ACCESS_TOKEN_TYP)


class AccessTokenVerifier:
    """Validates access tokens for one audience (RFC 9068 §4), with no network call when warm.

    The algorithm is pinned to RS256 or PS256 (`ALGORITHMS`) and the key is chosen by `kid` among
    this server's own RSA keys only: `alg: none`, HS256 with the public key as secret, or a key
    embedded in the header can never be accepted.
    """

    def __init__(
        self, keys: KmsPublicKeys, *, issuer: str, audience: str | tuple[str, ...], leeway: int = 5
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audiences = (audience,) if isinstance(audience, str) else audience
        self._leeway = leeway

    def verify(self, token: str) -> AccessToken:
        import jwt  # here, not at import: issuing tokens (the token function's usual work) needs none

        if not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidAccessToken("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidAccessToken("malformed token") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidAccessToken("unsupported token algorithm")
        typ = str(header.get("typ", "")).lower()
        if typ not in (ACCESS_TOKEN_TYP, f"application/{ACCESS_TOKEN_TYP}"):
            raise InvalidAccessToken("not an access token")
        public = self._keys.by_kid().get(str(header.get("kid", "")))
        if public is None:
            raise InvalidAccessToken("token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                public.key,
                algorithms=[str(alg)],
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS, "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            # PyJWT checks the signature before the claims: this token is ours, only too old
            raise InvalidAccessToken("token expired", client_id=_signed_client_id(token)) from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidAccessToken("token not issued by this server") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidAccessToken("invalid token") from exc
        # `aud` must be exactly one of ours, as a string: a token minted for several audiences
        # could be replayed from one to the other (RFC 8707 §2, RFC 9068 §4)
        if not isinstance(claims.get("aud"), str) or claims["aud"] not in self._audiences:
            client_id = claims.get("client_id")
            raise InvalidAccessToken(
                "token not issued for this resource",
                client_id=client_id if isinstance(client_id, str) and client_id else None,
            )
        return _to_access_token(claims)


def _signed_client_id(token: str) -> str | None:
    """The `client_id` claim of a token whose signature was verified already."""
    import jwt

    try:
        client_id = jwt.decode(token, options={"verify_signature": False}).get("client_id")
    except jwt.InvalidTokenError:
        return None
    return client_id if isinstance(client_id, str) and client_id else None


def _to_access_token(claims: dict[str, Any]) -> AccessToken:
    subject, client_id, scope, jti = (claims.get(k) for k in ("sub", "client_id", "scope", "jti"))
    iat, exp, aud = claims.get("iat"), claims.get("exp"), claims.get("aud")
    if not all(isinstance(v, str) and v for v in (subject, client_id, jti, aud)) or not isinstance(
        scope, str
    ):
        raise InvalidAccessToken("invalid token claims")
    if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > _MAX_LIFETIME:
        raise InvalidAccessToken("invalid token lifetime")
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if cnf is not None and not (isinstance(jkt, str) and jkt):
        raise InvalidAccessToken("invalid token confirmation")
    return AccessToken(
        subject=str(subject),
        client_id=str(client_id),
        scopes=frozenset(scope.split()),
        audience=str(aud),
        issued_at=iat,
        expires_at=exp,
        jti=str(jti),
        idp=idp if isinstance(idp := claims.get("idp"), str) and idp else None,
        jkt=jkt,
    )
