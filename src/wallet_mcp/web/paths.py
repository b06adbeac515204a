"""Where a browser may be sent after signing in: this server's own account pages, nothing else."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

HOME: Final = "/account"


def safe_next(raw: str | None) -> str:
    """`raw` if it is a path of the /account or /admin pages, else /account (never another site:
    no scheme, no host, no `//` or `\\` that a browser would read as one)."""
    if not raw or len(raw) > 512:
        return HOME
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or raw.startswith("//") or "\\" in raw:
        return HOME
    if parts.path in ("/account", "/admin") or parts.path.startswith(("/account/", "/admin/")):
        return raw
    return HOME
