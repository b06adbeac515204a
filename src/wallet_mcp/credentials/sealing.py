"""Sealing a value under a key derived from an opaque credential (AES-256-GCM, HKDF-SHA256).

Used to keep the response of a refresh-token rotation readable only by whoever holds the refresh
token that was rotated: the server stores the token's digest and the sealed response, never the
token, so neither the table alone nor the digest opens it (RFC 5869 for the derivation).
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SALT = b"wallet-mcp/sealing/v1"


class SealBroken(Exception):
    """The sealed value was not sealed under this credential, or was altered."""


def _key(credential: str, purpose: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose).derive(
        credential.encode("utf-8")
    )
    return AESGCM(derived)


def seal(credential: str, purpose: bytes, plaintext: bytes) -> str:
    nonce = os.urandom(12)
    ciphertext = _key(credential, purpose).encrypt(nonce, plaintext, purpose)
    return base64.urlsafe_b64encode(nonce + ciphertext).decode("ascii")


def open_sealed(credential: str, purpose: bytes, sealed: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
        return _key(credential, purpose).decrypt(raw[:12], raw[12:], purpose)
    except (InvalidTag, ValueError) as exc:
        raise SealBroken("sealed value cannot be opened") from exc
