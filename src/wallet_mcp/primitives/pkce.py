"""PKCE (RFC 7636), S256 only: OAuth 2.1 §7.5.2 and the MCP authorization spec require it of every client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# Used with fullmatch: "$" would also match before a trailing "\n", which neither grammar allows.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
"""RFC 7636 §4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"."""
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
"""BASE64URL(SHA256(verifier)) without padding is always 43 characters."""


def is_valid_challenge(challenge: str) -> bool:
    return _CHALLENGE.fullmatch(challenge) is not None


def is_valid_verifier(verifier: str) -> bool:
    return _VERIFIER.fullmatch(verifier) is not None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6, compared in constant time."""
    if not is_valid_verifier(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
