"""Token lifetimes: the deployment's, and a client's within them.

The deployment's lifetimes (`AccessTokenTtlSeconds`, `RefreshTokenIdleTtlSeconds`,
`RefreshTokenFamilyTtlSeconds` in `infra/template.yaml`, read into `Settings`) are **upper bounds**:
an administrator may shorten them for one client (ClientsTable `access_token_ttl`,
`refresh_token_ttl`, `refresh_family_ttl`), never lengthen them, and never below a floor that
keeps a client usable. The upper bound on access tokens is a safety rule, not a preference: an
access token is a JWT refused by the revocation list, whose entries are kept one *global*
access-token lifetime (`storage.revocations`, `oauth.rules.revocation`, `cli.admin`); a token that
lived longer would outlive the entry that refuses it. A value is checked when it is saved
(`refusal`) and clamped again whenever a token is issued (`Lifetimes.of`): the deployment's bounds
may have been lowered since.

Refresh tokens expire two ways (RFC 9700 §4.14.2: unused for some time, and at the latest):
- **idle**: each token dies `refresh_token_ttl` after it was issued unless it is rotated first;
- **absolute**: no token of a family outlives `refresh_family_ttl` after the grant that began it
  (`RefreshToken.grant_issued_at`). A refresh after it is `invalid_grant` (RFC 6749 §5.2), nothing
  is issued, and the person signs in again.

The deadline a token was issued with is stored (`expires_at`, `family_expires_at`) and never
extended. A shorter value set later applies as well, at the token's next use: the token endpoint
reads the client record on every refresh, so what an administrator shortens takes effect without
touching a single token; a longer one applies only to tokens (and families) issued after it.
Access tokens already issued keep their `exp` (a signed JWT cannot be shortened).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from wallet_mcp.config import Settings
from wallet_mcp.storage.clients import ClientRecord
from wallet_mcp.storage.refresh_tokens import RefreshToken

Kind = Literal["access_token_ttl", "refresh_token_ttl", "refresh_family_ttl"]
KINDS: Final[tuple[Kind, ...]] = ("access_token_ttl", "refresh_token_ttl", "refresh_family_ttl")
"""The three lifetimes, named as the ClientsTable attributes (and the admin form's fields)."""

MINIMUMS: Final[dict[Kind, int]] = {
    "access_token_ttl": 60,
    "refresh_token_ttl": 5 * 60,
    "refresh_family_ttl": 5 * 60,
}
"""The shortest a client's lifetime may be set: shorter, hosts spend their time refreshing (and
the per-client token rate limit refuses them)."""

LABELS: Final[dict[Kind, str]] = {
    "access_token_ttl": "Access token lifetime",
    "refresh_token_ttl": "Refresh token idle lifetime",
    "refresh_family_ttl": "Refresh family absolute lifetime",
}


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """Seconds, one per kind: the deployment's (the bounds) or a client's effective ones."""

    access_token_ttl: int
    refresh_token_ttl: int
    refresh_family_ttl: int

    @classmethod
    def bounds(cls, settings: Settings) -> Lifetimes:
        """The deployment's lifetimes: the defaults, and the longest a client may have."""
        return cls(
            access_token_ttl=settings.access_token_ttl,
            refresh_token_ttl=settings.refresh_token_idle_ttl,
            refresh_family_ttl=settings.refresh_token_family_ttl,
        )

    @classmethod
    def of(cls, client: ClientRecord, bounds: Lifetimes) -> Lifetimes:
        """The client's lifetimes as issued: its own values clamped into the bounds (the upper
        bound wins over the floor when the deployment's own value is below it), else the bounds."""
        return cls(*(_clamp(kind, getattr(client, kind), bounds.get(kind)) for kind in KINDS))

    def get(self, kind: Kind) -> int:
        value: int = getattr(self, kind)
        return value


def _clamp(kind: Kind, value: int | None, upper: int) -> int:
    if value is None:
        return upper
    return min(max(value, MINIMUMS[kind]), upper)


def refusal(kind: Kind, value: int, bounds: Lifetimes) -> str | None:
    """Why an administrator may not give a client this lifetime, or None if it may."""
    upper, lower = bounds.get(kind), MINIMUMS[kind]
    if upper < lower:
        return f"{LABELS[kind]}: this deployment's own ({upper} s) is below {lower} s; leave it empty."
    if value < lower:
        return f"{LABELS[kind]} must be at least {lower} s."
    if value > upper:
        return f"{LABELS[kind]} may be at most this deployment's, {upper} s."
    return None


# --- refresh tokens -----------------------------------------------------------------------------


def family_deadline(granted_at: int, lifetimes: Lifetimes, stored: int | None = None) -> int:
    """When a family begun at `granted_at` ends: its lifetime now, or earlier if it was issued
    with an earlier deadline (`stored`, never extended)."""
    deadline = granted_at + lifetimes.refresh_family_ttl
    return deadline if stored is None else min(stored, deadline)


def refresh_deadlines(token: RefreshToken, lifetimes: Lifetimes) -> tuple[int, int]:
    """(idle, absolute): the second at which `token` dies unused, and at which its family ends."""
    idle = min(token.expires_at, token.issued_at + lifetimes.refresh_token_ttl)
    return idle, family_deadline(token.grant_issued_at, lifetimes, token.family_expires_at)


def refresh_expiry(issued_at: int, family_ends: int, lifetimes: Lifetimes) -> int:
    """The `expires_at` of a refresh token issued at `issued_at` (its table TTL too): its idle
    lifetime, but never past its family's end."""
    return min(issued_at + lifetimes.refresh_token_ttl, family_ends)
