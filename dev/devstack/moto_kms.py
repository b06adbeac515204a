"""moto's KMS signing RSASSA-PSS the way AWS KMS does: the salt as long as the digest.

AWS KMS signs `RSASSA_PSS_SHA_256` with "a 256-bit salt" (the digest's length), which is what a
JWS PS256 signature is (RFC 7518 §3.5: "The size of the salt value is the same size as the hash
function output"). moto (5.x) salts with the maximum length instead, so a PS256 token it signed
would fail every JOSE verifier (pyjwt verifies with a 32-byte salt). Under the FAPI 2.0 profile
our tokens are PS256 (`tokens.signer`): the local stack and the tests apply this patch so they
behave as the deployed stack does. Only the padding of the PSS algorithms changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from moto.kms import utils

_PSS_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "RSASSA_PSS_SHA_256": hashes.SHA256,
    "RSASSA_PSS_SHA_384": hashes.SHA384,
    "RSASSA_PSS_SHA_512": hashes.SHA512,
}


def pss_salt_like_aws() -> None:
    """Idempotent: patch moto's RSA keys so PSS salts are the digest's length, as in AWS."""
    cls: Any = utils.RSAPrivateKey
    original = cls._RSAPrivateKey__padding_and_hash_algorithm
    if getattr(original, "salt_like_aws", False):
        return

    def padding_and_hash(self: Any, signing_algorithm: str) -> tuple[Any, Any]:
        hash_type = _PSS_HASHES.get(str(getattr(signing_algorithm, "value", signing_algorithm)))
        if hash_type is None:
            found: tuple[Any, Any] = original(self, signing_algorithm)
            return found
        digest = hash_type()
        return padding.PSS(mgf=padding.MGF1(hash_type()), salt_length=digest.digest_size), digest

    padding_and_hash.salt_like_aws = True  # type: ignore[attr-defined]
    cls._RSAPrivateKey__padding_and_hash_algorithm = padding_and_hash
