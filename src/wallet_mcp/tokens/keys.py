"""The public halves of the KMS signing keys, fetched once per cold start (GetPublicKey).

The signing key and the keys still accepted for verification are configured by KMS key id;
after a rotation the previous key stays in VERIFICATION_KEY_IDS until every token it signed
has expired, so JWKS publishes both and verifiers accept both (docs/operations.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from wallet_mcp.tokens.jwk import rsa_public_key_from_der, thumbprint

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient


@dataclass(frozen=True, slots=True)
class PublicKey:
    key_id: str
    """The KMS key id (what Sign is called with)."""
    kid: str
    """RFC 7638 thumbprint: the JWS `kid`."""
    key: RSAPublicKey


class KmsPublicKeys:
    """Lazily loads and caches the public keys of the configured KMS keys."""

    def __init__(self, kms: KMSClient, key_ids: tuple[str, ...]) -> None:
        self._kms = kms
        self._key_ids = key_ids
        self._by_key_id: dict[str, PublicKey] = {}
        self._lock = threading.Lock()

    def get(self, key_id: str) -> PublicKey:
        cached = self._by_key_id.get(key_id)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._by_key_id.get(key_id)
            if cached is None:
                response = self._kms.get_public_key(KeyId=key_id)
                # moto answers only the deprecated CustomerMasterKeySpec; AWS sends both
                spec = response.get("KeySpec") or response.get("CustomerMasterKeySpec")  # type: ignore[unreachable,unused-ignore]
                if (
                    spec != "RSA_2048"
                    or response.get("KeyUsage") != "SIGN_VERIFY"
                    or "RSASSA_PKCS1_V1_5_SHA_256" not in response.get("SigningAlgorithms", [])
                ):
                    raise ValueError(f"KMS key {key_id} is not an RSA_2048 key that signs RS256")
                public = rsa_public_key_from_der(response["PublicKey"])
                cached = PublicKey(key_id=key_id, kid=thumbprint(public), key=public)
                self._by_key_id[key_id] = cached
            return cached

    def forget(self) -> None:
        """Fetch again on next use (after a SnapStart restore: as at any other cold start)."""
        with self._lock:
            self._by_key_id = {}

    def all(self) -> list[PublicKey]:
        return [self.get(key_id) for key_id in self._key_ids]

    def by_kid(self) -> dict[str, PublicKey]:
        return {key.kid: key for key in self.all()}
