"""A stand-in for the two KMS calls the token code makes, backed by local RSA keys."""

from __future__ import annotations

import uuid
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class FakeKms:
    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.calls: list[str] = []

    def create_key(self) -> str:
        key_id = str(uuid.uuid4())
        self.keys[key_id] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key_id

    def get_public_key(self, KeyId: str) -> dict[str, Any]:
        self.calls.append("GetPublicKey")
        der = (
            self.keys[KeyId]
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return {
            "KeyId": KeyId,
            "PublicKey": der,
            "KeySpec": "RSA_2048",
            "KeyUsage": "SIGN_VERIFY",
            "SigningAlgorithms": ["RSASSA_PKCS1_V1_5_SHA_256"],
        }

    def sign(self, KeyId: str, Message: bytes, MessageType: str, SigningAlgorithm: str) -> dict[str, Any]:
        self.calls.append("Sign")
        assert MessageType == "RAW" and SigningAlgorithm == "RSASSA_PKCS1_V1_5_SHA_256"
        return {"Signature": self.keys[KeyId].sign(Message, padding.PKCS1v15(), hashes.SHA256())}
