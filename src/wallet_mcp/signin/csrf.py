"""CSRF tokens: one scheme for every form this server shows (RFC 6749 §10.12, RFC 9700 §4.7).

The browser holds a random secret in an HttpOnly cookie: the browser binding of a pending
authorization request, the login session, or the account sign-in page's cookie. A form carries
HMAC-SHA256 of that secret over a domain-separation prefix, the form's purpose and its context
(the pending request's id), and a submission is accepted only if the token recomputed from the
cookie it came with matches, compared in constant time (OWASP's HMAC-signed double submit).

Another site can make the browser post a form, cookie included, but can read neither the cookie
nor our page, so it cannot compute the token; a token lifted from one form is worthless for
another purpose, another request or another browser. Nothing is stored: the cookie's secret is
the only state, so the token can be derived again whenever a page is shown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Final, Literal

from wallet_mcp.credentials import opaque

Purpose = Literal["authorize", "sign-in", "session"]
"""`authorize`: the login and consent forms of a pending authorization request (the secret is its
browser binding, the context its request id); `sign-in`: the account sign-in form (a cookie of
its own); `session`: every form of a signed-in page (the session id)."""

_DOMAIN: Final = b"wallet-mcp/csrf/v2"
_ISSUED: Final = re.compile(r"[A-Za-z0-9_-]{43,256}")
"""What a secret from `new_secret` looks like (32 random bytes, base64url), with room to spare."""


def new_secret() -> str:
    """A fresh browser secret (256 bits) for a cookie."""
    return opaque.new_secret()


def browser_secret(sent: str | None) -> str:
    """The secret the browser already holds, if it can be one we issued, else a fresh one: a
    second tab keeps the first one's forms valid, and a short value tossed in by someone else is
    never a key."""
    return sent if sent is not None and _ISSUED.fullmatch(sent) else new_secret()


def token(secret: str, purpose: Purpose, context: str = "") -> str:
    """The token of a form: HMAC-SHA256(secret, domain ‖ purpose ‖ context), base64url. The
    purpose never holds the separator and the context comes last, so distinct inputs never
    collide."""
    message = b"\0".join((_DOMAIN, purpose.encode(), context.encode()))
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify(secret: str | None, presented: str | None, purpose: Purpose, context: str = "") -> bool:
    """True if `presented` is the token of `secret` for this purpose and context (constant time);
    False without a secret or a token."""
    if not secret or not presented:
        return False
    expected = token(secret, purpose, context).encode()
    return hmac.compare_digest(expected, presented.encode("utf-8", "replace"))
