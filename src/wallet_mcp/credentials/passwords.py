"""User passwords: scrypt (RFC 7914), a memory-hard KDF, with a random salt per password.

Stored as `scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>` so parameters can be raised later
and old hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
"""The lengths a new password may have (NIST SP 800-63B §3.1.1.2: at least 8; a generous maximum
that bounds the KDF's input)."""

_LOG2_N = 15
_R = 8
_P = 3  # OWASP Password Storage Cheat Sheet: N=2^15, r=8, p=3
_DKLEN = 32
_MAXMEM = 128 * 1024 * 1024


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    derived = _scrypt(password, salt, _LOG2_N, _R, _P)
    return "$".join(["scrypt", str(_LOG2_N), str(_R), str(_P), _b64(salt), _b64(derived)])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, log2_n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = _scrypt(password, _unb64(salt), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, _unb64(expected))


def burn_verification(password: str) -> None:
    """Spend what a real verification costs, for a user that does not exist.

    An unknown username then takes as long as a wrong password (no user enumeration by timing).
    """
    _scrypt(password, b"\0" * 16, _LOG2_N, _R, _P)


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=1 << log2_n, r=r, p=p, dklen=_DKLEN, maxmem=_MAXMEM
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
