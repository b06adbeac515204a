"""JWS compact serialization (RFC 7515) with RS256, the signature computed by KMS.

KMS is asked to sign the raw signing input (`MessageType=RAW`, RSASSA_PKCS1_V1_5_SHA_256); it
hashes it itself. The private key never leaves KMS. One Sign call per token.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from wallet_mcp.tokens.jwk import b64url
from wallet_mcp.tokens.keys import KmsPublicKeys

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient

_KMS_RAW_MESSAGE_LIMIT: Final = 4096
"""KMS accepts at most 4096 bytes with MessageType=RAW."""


class KmsJwtSigner:
    def __init__(self, kms: KMSClient, keys: KmsPublicKeys, key_id: str) -> None:
        self._kms = kms
        self._keys = keys
        self._key_id = key_id

    @property
    def kid(self) -> str:
        return self._keys.get(self._key_id).kid

    def sign(self, claims: dict[str, Any], *, typ: str) -> str:
        header = {"alg": "RS256", "typ": typ, "kid": self.kid}
        signing_input = f"{_segment(header)}.{_segment(claims)}".encode("ascii")
        if len(signing_input) > _KMS_RAW_MESSAGE_LIMIT:
            raise ValueError("token too large to sign")
        response = self._kms.sign(
            KeyId=self._key_id,
            Message=signing_input,
            MessageType="RAW",
            SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
        )
        return f"{signing_input.decode('ascii')}.{b64url(response['Signature'])}"


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii"))
