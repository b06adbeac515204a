"""When to renew an access token: ahead of its expiry, never on every call (a pure rule)."""

from __future__ import annotations

from typing import Final

REFRESH_MARGIN_SECONDS: Final = 30.0
REFRESH_MARGIN_FRACTION: Final = 0.2


def refresh_due(obtained_at: float, expires_at: float, now: float) -> bool:
    """True once less than 30 s, or 20 % of the token's lifetime if that is shorter, remains.

    A one-hour token is replaced 30 s before it expires (a request in flight never carries an
    expired one); a 4-second one after 3.2 s. A token marked expired (`expires_at` 0) is due.
    """
    lifetime = max(expires_at - obtained_at, 0.0)
    margin = min(REFRESH_MARGIN_SECONDS, lifetime * REFRESH_MARGIN_FRACTION)
    return now >= expires_at - margin
