"""JWS compact serialization (RFC 7515) with RS256 or PS256, the signature computed by KMS.

KMS is asked to sign the raw signing input (`MessageType=RAW`); it hashes it itself. RS256 is
`RSASSA_PKCS1_V1_5_SHA_256`, PS256 (RFC 7518 §3.5: MGF1 with SHA-256, a 32-byte salt) is
`RSASSA_PSS_SHA_256` with the same RSA_2048 key: the FAPI 2.0 profile signs PS256 (§5.4.1), so
switching it on needs no new key. The private key never leaves KMS. One Sign call per token.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, Literal

from wallet_mcp.tokens.jwk import b64url
from wallet_mcp.tokens.keys import KmsPublicKeys

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient

_KMS_RAW_MESSAGE_LIMIT: Final = 4096
"""KMS accepts at most 4096 bytes with MessageType=RAW."""
KMS_ALGORITHMS: Final[dict[str, Literal["RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_256"]]] = {
    "RS256": "RSASSA_PKCS1_V1_5_SHA_256",
    "PS256": "RSASSA_PSS_SHA_256",
}
"""The JWS `alg` of our tokens and the KMS signing algorithm that computes it."""


def signing_algorithm(fapi2_profile: bool) -> str:
    """PS256 under the FAPI 2.0 profile (§5.4.1: PS256, ES256 or EdDSA only), RS256 otherwise."""
    return "PS256" if fapi2_profile else "RS256"


class KmsJwtSigner:
    def __init__(self, kms: KMSClient, keys: KmsPublicKeys, key_id: str, *, alg: str = "RS256") -> None:
        if alg not in KMS_ALGORITHMS:
            raise ValueError(f"tokens are signed {' or '.join(KMS_ALGORITHMS)}, not {alg}")
        self._kms = kms
        self._keys = keys
        self._key_id = key_id
        self.alg = alg

    @property
    def kid(self) -> str:
        return self._keys.get(self._key_id).kid

    def sign(self, claims: dict[str, Any], *, typ: str) -> str:
        header = {"alg": self.alg, "typ": typ, "kid": self.kid}
        signing_input = f"{_segment(header)}.{_segment(claims)}".encode("ascii")
        if len(signing_input) > _KMS_RAW_MESSAGE_LIMIT:
            raise ValueError("token too large to sign")
        response = self._kms.sign(
            KeyId=self._key_id,
            Message=signing_input,
            MessageType="RAW",
            SigningAlgorithm=KMS_ALGORITHMS[self.alg],
        )
        return f"{signing_input.decode('ascii')}.{b64url(response['Signature'])}"


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii"))
