"""The limits a person chose for one application at consent, as the wallet applies them.

The consent record (`storage/consents.py`, per user and client) holds them; a token carries only
the grant (its subject and client), so the record is read on each call that reaches the wallet
and an edit in /account applies to the very next call. `WalletService` asks `current()` on every
read and write — the one place both surfaces go through: the MCP endpoint binds the view for the
request (`applying`), the REST API hands it to `WalletService.scoped`. No view (a machine client,
a personal access token, an approval given before limits existed): the whole wallet, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from wallet_mcp.storage.consents import ConsentStore, Limits
from wallet_mcp.wallet.money import MoneyError, to_minor


@dataclass(frozen=True, slots=True)
class GrantView:
    """One application's view of one person's wallet."""

    client_id: str
    limits: Limits

    def sees(self, account_id: str) -> bool:
        return self.limits.accounts is None or account_id in self.limits.accounts

    @property
    def chosen(self) -> tuple[str, ...] | None:
        """The accounts it may see (None: every one)."""
        return self.limits.accounts

    def cap_per_transaction(self, currency: str) -> int | None:
        return _minor(self.limits.cap_per_transaction, currency)

    def cap_per_day(self, currency: str) -> int | None:
        return _minor(self.limits.cap_per_day, currency)

    def confirms_over_cap(self) -> bool:
        """The person chose "ask me instead" over a cap."""
        return self.limits.over_cap == "confirm"


def _minor(cap: str | None, currency: str) -> int | None:
    if cap is None:
        return None
    try:
        return to_minor(cap, currency)
    except MoneyError:
        return 0  # a cap that cannot be read in this currency allows nothing (never everything)


def utc_day(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%d")


class GrantViews:
    """Reads the view of a call: one GetItem on the consent record, only for calls that reach the
    wallet (never for `tools/list`)."""

    def __init__(self, consents: ConsentStore) -> None:
        self._consents = consents

    def view_of(self, *, owner: str | None, subject: str, client_id: str) -> GrantView | None:
        """The view of a person's token (None: no limits apply). Whether the grant's duration is
        over is the grant rule's to say (`oauth.rules.grants.lapsed`, asked by
        `resource.grant_limits`)."""
        if owner is None or subject != owner or subject == client_id or client_id.startswith("pat:"):
            # a client acting for nobody or for its owner (client credentials), a personal token
            return None
        consent = self._consents.get(owner, client_id)
        if consent is None:
            return None  # approved before limits existed, or withdrawn (the revocation list refuses it)
        return GrantView(client_id, consent.limits)


_current: ContextVar[GrantView | None] = ContextVar("grant_view", default=None)


def current() -> GrantView | None:
    return _current.get()


@contextmanager
def applying(view: GrantView | None) -> Iterator[None]:
    reset = _current.set(view)
    try:
        yield
    finally:
        _current.reset(reset)
