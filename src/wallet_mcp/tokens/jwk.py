"""Public keys as JWKs (RFC 7517) and their thumbprints (RFC 7638), used as `kid`."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def rsa_public_key_from_der(der: bytes) -> RSAPublicKey:
    key = load_der_public_key(der)
    if not isinstance(key, RSAPublicKey):
        raise ValueError("the signing key is not an RSA key")
    return key


def thumbprint(key: RSAPublicKey) -> str:
    """RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace."""
    numbers = key.public_numbers()
    canonical = json.dumps(
        {"e": _uint(numbers.e), "kty": "RSA", "n": _uint(numbers.n)}, separators=(",", ":"), sort_keys=True
    )
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def to_jwk(key: RSAPublicKey, alg: str = "RS256") -> dict[str, Any]:
    """`alg`: what the server signs with now (PS256 under the FAPI 2.0 profile). Our own verifiers
    accept RS256 and PS256 from these keys whatever it says, so tokens signed before a switch of
    the profile stay valid until they expire."""
    numbers = key.public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": alg,
        "kid": thumbprint(key),
        "n": _uint(numbers.n),
        "e": _uint(numbers.e),
    }
