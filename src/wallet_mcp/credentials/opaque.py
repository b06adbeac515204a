"""Opaque credentials (client secrets, authorization codes, refresh tokens, session ids).

They are random strings that are only ever stored as SHA-256 digests, so a leaked table gives
nothing to replay; a high-entropy secret needs no slow KDF. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret(prefix: str = "", nbytes: int = 32) -> str:
    """A URL-safe random string of `nbytes` bytes of entropy (32 = 256 bits)."""
    return prefix + secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    """The at-rest form of an opaque credential: hex SHA-256."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Constant-time comparison of a presented secret against its stored digest."""
    return hmac.compare_digest(digest(secret), stored_digest)
