"""`private_key_jwt` client authentication: the JWT a client signs with its own key (RFC 7523 §2.2,
§3; RFC 7521 §4.2), and the public keys it registers (RFC 7591 §2 `jwks`).

Pure: no key is fetched and nothing is stored here. `oauth.server.client_keys` supplies the
client's keys (inline `jwks` or fetched from its `jwks_uri`), `storage.assertion_jtis` makes each
`jti` single-use. Every refusal is `InvalidClient` (RFC 7521 §4.2.1: "invalid_client"), and its
description never repeats the assertion.

The signature is checked with pyjwt against a key bound to one algorithm from the allow-list
(RS256, PS256, ES256; FAPI 2.0 Security Profile §5.4.1 names PS256 and ES256): never `none`, never
an HMAC (a public key used as an HMAC secret would let anyone sign), and an `oct` key is refused
when it is registered. Under the FAPI 2.0 profile (`fapi2=True`): PS256 and ES256 only (§5.4.1),
and RSA keys of at least 2048 bits (§5.4.2), both at registration and when an assertion is verified.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from wallet_mcp.primitives.errors import InvalidClient

if TYPE_CHECKING:
    import jwt

# pyjwt (with every cryptography algorithm it supports) is imported by the functions that use it:
# the token function's common grants never read a client assertion (docs/operations.md "Cold start")

CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
"""RFC 7523 §2.2."""
SIGNING_ALGORITHMS: Final = ("RS256", "PS256", "ES256")
FAPI2_SIGNING_ALGORITHMS: Final = ("PS256", "ES256")
"""FAPI 2.0 Security Profile §5.4.1: PS256, ES256 or EdDSA (not offered here); never RS256."""
FAPI2_MIN_RSA_BITS: Final = 2048
"""FAPI 2.0 Security Profile §5.4.2: RSA keys of at least 2048 bits."""
MAX_ASSERTION_BYTES: Final = 8 * 1024
MAX_LIFETIME: Final = 600
"""Seconds an assertion may be valid for, counted from now: a longer `exp` is refused (RFC 7523 §3
item 4 lets the server bound it; the MCP SDK signs 300 s)."""
LEEWAY: Final = 30
"""Seconds of clock skew allowed on `exp`, `nbf` and `iat` (RFC 7523 §3 items 4-6)."""
MAX_KEYS: Final = 10
MAX_JWKS_BYTES: Final = 16 * 1024
_KEY_TYPES: Final = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MAX_JTI: Final = 256


class InvalidJwks(ValueError):
    """A key set this server will not use; the message is safe to show its registrant."""


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    client_id: str
    jti: str
    expires_at: int


# --- registered keys (RFC 7591 §2, RFC 7517 §5) -------------------------------------------------


def algorithms_for(fapi2: bool) -> tuple[str, ...]:
    return FAPI2_SIGNING_ALGORITHMS if fapi2 else SIGNING_ALGORITHMS


def validate_jwks(value: object, *, fapi2: bool = False) -> dict[str, Any]:
    """A JWK Set of public signing keys this server can verify with, as it will be stored.

    `fapi2`: every key must be usable under the FAPI 2.0 profile (PS256 or ES256, RSA ≥ 2048 bits)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("keys"), list):
        raise InvalidJwks('jwks must be a JSON object with a "keys" array')
    keys = value["keys"]
    if not keys or len(keys) > MAX_KEYS:
        raise InvalidJwks(f"jwks must hold 1 to {MAX_KEYS} keys")
    for key in keys:
        _usable_key(key, fapi2)
    cleaned = {"keys": keys}
    if len(json.dumps(cleaned, separators=(",", ":"))) > MAX_JWKS_BYTES:
        raise InvalidJwks("jwks is too large")
    return cleaned


def _usable_key(key: object, fapi2: bool) -> None:
    if not isinstance(key, Mapping):
        raise InvalidJwks("each key must be a JSON object")
    if _PRIVATE_MEMBERS & set(key):
        # a private or symmetric key must never be sent anywhere, least of all to be stored here
        raise InvalidJwks("jwks must hold public keys only")
    if key.get("kty") not in ("RSA", "EC"):
        raise InvalidJwks("each key must be an RSA or EC public key")
    if key.get("use") not in (None, "sig"):
        raise InvalidJwks('a key\'s "use" must be "sig"')
    alg = key.get("alg")
    if alg is not None and alg not in SIGNING_ALGORITHMS:
        raise InvalidJwks(f"a key's alg must be one of {', '.join(SIGNING_ALGORITHMS)}")
    usable = [k for a in _algorithms_of(key) if (k := _key_for(key, a)) is not None]
    if not usable:
        raise InvalidJwks("a key cannot be read as an RS256, PS256 or ES256 public key")
    if fapi2:
        if alg is not None and alg not in FAPI2_SIGNING_ALGORITHMS:
            raise InvalidJwks(f"a key's alg must be one of {', '.join(FAPI2_SIGNING_ALGORITHMS)} (FAPI 2.0)")
        if not _strong_enough(usable[0]):
            raise InvalidJwks(f"an RSA key must have at least {FAPI2_MIN_RSA_BITS} bits (FAPI 2.0)")


def _strong_enough(key: jwt.PyJWK) -> bool:
    """FAPI 2.0 §5.4.2: RSA ≥ 2048 bits (EC keys are P-256 here: 256 ≥ 160 bits)."""
    size = getattr(key.key, "key_size", None)
    return key.key_type != "RSA" or (isinstance(size, int) and size >= FAPI2_MIN_RSA_BITS)


def _algorithms_of(key: Mapping[str, Any]) -> tuple[str, ...]:
    declared = key.get("alg")
    if declared is not None:
        return (declared,) if declared in SIGNING_ALGORITHMS else ()
    return tuple(a for a in SIGNING_ALGORITHMS if _KEY_TYPES[a] == key.get("kty"))


def _key_for(key: Mapping[str, Any], alg: str) -> jwt.PyJWK | None:
    """The key bound to `alg`, or None when it is not a key of that algorithm."""
    if key.get("kty") != _KEY_TYPES[alg] or (key.get("alg") not in (None, alg)):
        return None
    if alg == "ES256" and key.get("crv") != "P-256":
        return None
    import jwt

    try:
        return jwt.PyJWK(dict(key), algorithm=alg)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None


# --- the assertion (RFC 7523 §3) ----------------------------------------------------------------


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if len(assertion) > MAX_ASSERTION_BYTES or assertion.count(".") != 2:
        raise InvalidClient("client_assertion is not a signed JWT")
    import jwt

    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidClient("client_assertion is not a signed JWT") from exc
    if not isinstance(claims, dict):
        raise InvalidClient("client_assertion is not a signed JWT")
    return header, claims


def asserted_client_id(assertion: str) -> str:
    """The client the assertion says it is (`sub`), read before anything is verified: only to
    find whose keys to verify it with (RFC 7521 §4.2: `client_id` is optional beside it)."""
    _, claims = _unverified(assertion)
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidClient("client_assertion has no sub")
    return subject


def asserted_jti(assertion: str) -> str | None:
    """The `jti` the assertion carries, read before anything is verified (None when it has no
    usable one): only to look up whether it was spent, in the same read as the client."""
    _, claims = _unverified(assertion)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI or not _encodable(jti):
        return None
    return jti


def key_ids(assertion: str, *, fapi2: bool = False) -> tuple[str, str | None]:
    """The header's `alg` (refused unless allowed) and `kid` (None when absent)."""
    header, _ = _unverified(assertion)
    alg, kid = header.get("alg"), header.get("kid")
    # RFC 8725 §3.1: only the algorithms this server allows; `none` and HMAC never
    allowed = algorithms_for(fapi2)
    if alg not in allowed:
        raise InvalidClient(f"client_assertion alg must be one of {', '.join(allowed)}")
    if kid is not None and not isinstance(kid, str):
        raise InvalidClient("client_assertion kid must be a string")
    return alg, kid


def has_key(jwks: Mapping[str, Any], kid: str) -> bool:
    return any(isinstance(k, Mapping) and k.get("kid") == kid for k in jwks.get("keys", ()))


def verify_assertion(
    assertion: str,
    jwks: Mapping[str, Any],
    *,
    client_id: str,
    audiences: Sequence[str],
    now: int,
    fapi2: bool = False,
) -> VerifiedAssertion:
    """The assertion, verified by RFC 7523 §3 against the client's keys; InvalidClient otherwise.

    - §3 items 1-2: `iss` and `sub` are both the client id (RFC 7523 §2.2);
    - item 3: `aud` names this server: its issuer or the endpoint's URL (`audiences`);
    - item 4: `exp` not passed, and (this server's bound) at most `MAX_LIFETIME` ahead;
    - items 5-6: `nbf` and `iat` not in the future;
    - item 7: `jti` present (its single use is `storage.assertion_jtis`);
    - item 8: signed by one of the client's keys with an allowed algorithm (`fapi2`: PS256 or
      ES256, and an RSA key of at least 2048 bits).
    """
    import jwt

    alg, kid = key_ids(assertion, fapi2=fapi2)
    candidates = [
        key
        for key in _keys(jwks)
        if (kid is None or key.get("kid") == kid) and key.get("use") in (None, "sig")
    ]
    verified: dict[str, Any] | None = None
    too_short = False
    for candidate in candidates:
        key = _key_for(candidate, alg)
        if key is None:
            continue
        if fapi2 and not _strong_enough(key):
            # a key fetched from a jwks_uri (or registered before the profile) may be short
            too_short = True
            continue
        try:
            verified = jwt.decode(
                assertion,
                key=key,
                algorithms=[alg],
                audience=list(audiences),
                issuer=client_id,
                leeway=LEEWAY,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError as exc:
            raise InvalidClient("client_assertion has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidClient("client_assertion is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidClient("client_assertion aud does not name this authorization server") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidClient("client_assertion iss must be the client_id") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidClient(f"client_assertion has no {exc.claim}") from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidClient("client_assertion is not valid") from exc
    if verified is None and too_short:
        raise InvalidClient(f"client_assertion keys must have at least {FAPI2_MIN_RSA_BITS} bits (FAPI 2.0)")
    if verified is None:
        raise InvalidClient("client_assertion is not signed by a key of this client")
    if verified.get("sub") != client_id:
        raise InvalidClient("client_assertion sub must be the client_id")
    expires_at, jti = verified.get("exp"), verified.get("jti")
    if not isinstance(expires_at, int) or expires_at > now + MAX_LIFETIME:
        raise InvalidClient(f"client_assertion exp must be within {MAX_LIFETIME} seconds")
    issued_at = verified.get("iat")
    if issued_at is not None and (not isinstance(issued_at, int | float) or issued_at > now + LEEWAY):
        raise InvalidClient("client_assertion iat is in the future")
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI or not _encodable(jti):
        raise InvalidClient("client_assertion jti must be a string of at most 256 characters")
    return VerifiedAssertion(client_id=client_id, jti=jti, expires_at=expires_at)


def _encodable(text: str) -> bool:
    """UTF-8 encodable: JSON escapes may decode to a lone surrogate, which no store can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _keys(jwks: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return ()
    return [k for k in keys if isinstance(k, Mapping)]


def bound_key(key: Mapping[str, Any], alg: str) -> jwt.PyJWK | None:
    """A JWK bound to one allowed algorithm, or None (wrong type, curve or declared `alg`): for
    other JWTs verified against someone's key set (`primitives.id_jag`)."""
    if alg not in SIGNING_ALGORITHMS:
        return None
    return _key_for(key, alg)
