"""The wallet's use cases, shared by the Backend API and the MCP tools.

Every input is validated here (the surfaces add their own schemas on top): names and descriptions
are cleaned and bounded, amounts are exact decimals within limits, currencies and categories come
from closed sets, and a failure raises a `WalletError` before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from wallet_mcp.wallet import grant_limits
from wallet_mcp.wallet import store as st
from wallet_mcp.wallet.grant_limits import GrantView
from wallet_mcp.wallet.model import (
    ACCOUNT_TYPES,
    CATEGORIES,
    MAX_DESCRIPTION,
    MAX_NAME,
    Account,
    CategorySpending,
    MonthSpending,
    Page,
    Transaction,
)
from wallet_mcp.wallet.money import MoneyError, require_currency, to_decimal_string, to_minor

MAX_PAGE: Final = 100
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
PERIODS: Final = (
    "this_month",
    "last_month",
    "last_3_months",
    "last_6_months",
    "last_12_months",
    "year_to_date",
)


class WalletError(Exception):
    """A request the wallet refuses; `status` is the HTTP status the API answers with."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(WalletError):
    pass


class NotFound(WalletError):
    status = 404
    code = "not_found"


class Conflict(WalletError):
    status = 409
    code = "conflict"


class ConfirmationRefused(WalletError):
    """A write whose confirmation is not (or no longer) approved for it."""

    status = 403
    code = "access_denied"


class LimitRefused(WalletError):
    """A call outside the limits the person chose for the application at consent; `reason`:
    `account` (an account it was not given), `cap_per_transaction`, `cap_per_day`."""

    status = 403
    code = "access_denied"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


OUTSIDE_ACCOUNTS: Final = (
    "this application may only use the accounts you chose when you allowed it; nothing was recorded"
)


def over_cap_message(reason: str, cap: int, currency: str) -> str:
    what = "per transaction" if reason == "cap_per_transaction" else "per day"
    return (
        f"this debit is over the limit of {to_decimal_string(cap, currency)} {currency} {what} you set "
        "for this application; nothing was recorded (change the limit in your account page)"
    )


@dataclass(frozen=True, slots=True)
class Draft:
    """A validated transaction and its account, not yet written."""

    tx: Transaction
    account: Account
    occurred_at: str | None
    """As the caller gave it (part of the idempotency fingerprint)."""


@dataclass(frozen=True, slots=True)
class Balance:
    totals: dict[str, int]
    """Minor units per currency."""
    accounts: int


@dataclass(frozen=True, slots=True)
class Spending:
    first_month: str
    last_month: str
    categories: list[CategorySpending]
    months: list[MonthSpending] = field(default_factory=list)
    """Each month of the period with any spending, per currency, oldest first (empty where the
    source gives only categories: the stdio bridge's REST backend)."""


def clean_text(raw: str, *, field: str, limit: int, required: bool = True) -> str:
    text = " ".join("".join(c for c in raw if c.isprintable()).split())
    if required and not text:
        raise InvalidInput(f"{field} must not be empty")
    if len(text) > limit:
        raise InvalidInput(f"{field} must be at most {limit} characters")
    return text


def _fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _idempotency(key: str | None, payload: dict[str, Any], view: GrantView | None) -> tuple[str, str] | None:
    """The stored key and the request's fingerprint. An application the person approved (a grant
    view) has keys of its own: another app's key never replays — nor, by a conflict, reveals —
    what that app created (an account this one may not see, with today's balance)."""
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise InvalidInput("idempotency key must be 8-128 characters of letters, digits and . _ : -")
    return (key if view is None else f"{view.client_id}#{key}"), _fingerprint(payload)


def _months_back(year: int, month: int, count: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) - count
    return index // 12, index % 12 + 1


def resolve_period(period: str, *, now: float) -> tuple[str, str]:
    """A period name, a month (`YYYY-MM`) or a range (`YYYY-MM..YYYY-MM`) as first and last month."""
    today = datetime.fromtimestamp(now, UTC)
    y, m = today.year, today.month
    named = {
        "this_month": ((y, m), (y, m)),
        "last_month": (_months_back(y, m, 1), _months_back(y, m, 1)),
        "last_3_months": (_months_back(y, m, 2), (y, m)),
        "last_6_months": (_months_back(y, m, 5), (y, m)),
        "last_12_months": (_months_back(y, m, 11), (y, m)),
        "year_to_date": ((y, 1), (y, m)),
    }
    if period in named:
        (fy, fm), (ly, lm) = named[period]
        return f"{fy:04d}-{fm:02d}", f"{ly:04d}-{lm:02d}"
    first, _, last = period.partition("..")
    last = last or first
    for month in (first, last):
        match = _MONTH.match(month)
        if not match or not 1 <= int(match.group(2)) <= 12 or not 1970 <= int(match.group(1)) <= 9999:
            raise InvalidInput(
                f"period must be one of {', '.join(PERIODS)}, a month YYYY-MM or YYYY-MM..YYYY-MM"
            )
    if first > last:
        raise InvalidInput("the period's first month is after its last")
    fy, fm = map(int, first.split("-"))
    ly, lm = map(int, last.split("-"))
    if (ly * 12 + lm) - (fy * 12 + fm) >= 120:
        raise InvalidInput("a period spans at most 120 months")
    return first, last


def parse_occurred_at(value: str | None, *, now: float) -> int:
    """ISO 8601 (with a zone, or UTC) to epoch milliseconds, within ten years back and a day ahead."""
    if value is None:
        return int(now * 1000)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput("occurred_at must be an ISO 8601 date-time, e.g. 2026-11-26T14:30:00Z") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    millis = int(moment.timestamp() * 1000)
    if millis > (now + 86400) * 1000 or millis < (now - 10 * 365 * 86400) * 1000:
        raise InvalidInput("occurred_at must be within the last ten years and not more than a day ahead")
    return millis


class WalletService:
    """Every read and write of a wallet, within the limits of the calling application's grant
    (`view`: by default the one the MCP endpoint bound for the request, `grant_limits.current`;
    the REST API passes its own through `scoped`). Accounts the application was not given do not
    exist for it; its debits stay within the caps the person set."""

    def __init__(
        self,
        store: st.WalletStore,
        clock: Callable[[], float] = time.time,
        view: Callable[[], GrantView | None] = grant_limits.current,
    ) -> None:
        self._store = store
        self._clock = clock
        self._view = view

    def scoped(self, view: GrantView | None) -> WalletService:
        """The same wallet within `view`'s limits (None: none)."""
        return WalletService(self._store, self._clock, view=lambda: view)

    # --- reads ---------------------------------------------------------------------------------

    def accounts(self, owner: str) -> list[Account]:
        view = self._view()
        found = self._store.accounts(owner)
        return found if view is None else [a for a in found if view.sees(a.account_id)]

    def account(self, owner: str, account_id: str) -> Account:
        view = self._view()
        visible = _plausible_id(account_id) and (view is None or view.sees(account_id))
        account = self._store.account(owner, account_id) if visible else None
        if account is None:
            raise NotFound("no such account")
        return account

    def total_balance(self, owner: str) -> Balance:
        accounts = self.accounts(owner)
        totals: dict[str, int] = {}
        for account in accounts:
            totals[account.currency] = totals.get(account.currency, 0) + account.balance
        return Balance(totals=totals, accounts=len(accounts))

    def recent_transactions(
        self, owner: str, *, limit: int = 20, cursor: str | None = None, account_id: str | None = None
    ) -> Page:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        if account_id is not None:
            self.account(owner, account_id)
        view = self._view()
        try:
            return self._store.transactions(
                owner,
                limit=limit,
                cursor=cursor,
                account_id=account_id,
                only_accounts=view.chosen if view is not None else None,
            )
        except st.InvalidCursor as exc:
            raise InvalidInput("cursor is not one this server returned") from exc

    def spending(self, owner: str, period: str) -> Spending:
        first, last = resolve_period(period, now=self._clock())
        view = self._view()
        if view is not None and view.chosen is not None:
            categories, months = self._store.spending_of(owner, first, last, view.chosen)
        else:
            categories, months = self._store.spending_report(owner, first, last)
        return Spending(first_month=first, last_month=last, categories=categories, months=months)

    def spending_months(self, owner: str, prefix: str, limit: int) -> list[str]:
        """Up to `limit` months (`YYYY-MM`, newest first) with spending, among those starting with
        `prefix` (a prompt's month suggestions): for an application limited to some accounts, the
        months those accounts spent in — a month only another account spent in is not its to
        know."""
        view = self._view()
        if view is None or view.chosen is None:
            return self._store.spending_months(owner, prefix, limit)
        return self._store.spending_months_of(owner, prefix, limit, view.chosen)

    # --- writes --------------------------------------------------------------------------------

    def create_account(
        self,
        owner: str,
        *,
        name: str,
        account_type: str,
        currency: str,
        opening_balance: str | int = "0",
        idempotency_key: str | None = None,
    ) -> Account:
        drafted = self.draft_account(
            name=name, account_type=account_type, currency=currency, opening_balance=opening_balance
        )
        return self.open_account(owner, drafted, idempotency_key=idempotency_key)

    def draft_account(
        self, *, name: str, account_type: str, currency: str, opening_balance: str | int = "0"
    ) -> Account:
        """A validated new account, not written: what a confirmation shows the person."""
        name = clean_text(name, field="name", limit=MAX_NAME)
        if account_type not in ACCOUNT_TYPES:
            raise InvalidInput(f"type must be one of {', '.join(ACCOUNT_TYPES)}")
        try:
            require_currency(currency)
            balance = to_minor(opening_balance, currency)
        except MoneyError as exc:
            raise InvalidInput(str(exc)) from exc
        now = int(self._clock())
        return Account(
            account_id=str(uuid.uuid4()),
            name=name,
            account_type=account_type,  # type: ignore[arg-type]
            currency=currency,
            balance=balance,
            created_at=now,
            updated_at=now,
        )

    def open_account(
        self,
        owner: str,
        account: Account,
        *,
        idempotency_key: str | None = None,
        authorised_by: Sequence[dict[str, Any]] = (),
    ) -> Account:
        """Write a drafted account; `authorised_by` as for `record`."""
        payload = {
            "name": account.name,
            "type": account.account_type,
            "currency": account.currency,
            "opening_balance": account.balance,
        }
        try:
            result = self._store.create_account(
                owner,
                account,
                idempotency=_idempotency(idempotency_key, payload, self._view()),
                now=account.created_at,
                authorised_by=authorised_by,
            )
        except st.TooManyAccounts as exc:
            raise Conflict(str(exc)) from exc
        except st.IdempotencyConflict as exc:
            raise Conflict(str(exc)) from exc
        except st.ConfirmationNotUsable as exc:
            raise ConfirmationRefused(
                "this operation was not approved, or its approval was already used or has expired; "
                "nothing was created"
            ) from exc
        if isinstance(result, st.Replayed):
            replayed = self._store.account(owner, result.result_id)
            if replayed is None:
                raise NotFound("the original account no longer exists")
            return replayed
        return result

    def draft_transaction(
        self,
        owner: str,
        *,
        account_id: str,
        amount: str | int,
        category: str,
        description: str,
        occurred_at: str | None = None,
    ) -> Draft:
        """A transaction validated against the owner's account, not written: what a confirmation
        shows the person before anything happens."""
        view = self._view()
        if view is not None and not view.sees(account_id):
            raise LimitRefused("account", OUTSIDE_ACCOUNTS)
        account = self.account(owner, account_id)
        if category not in CATEGORIES:
            raise InvalidInput(f"category must be one of {', '.join(CATEGORIES)}")
        description = clean_text(description, field="description", limit=MAX_DESCRIPTION)
        try:
            minor = to_minor(amount, account.currency)
        except MoneyError as exc:
            raise InvalidInput(str(exc)) from exc
        if minor == 0:
            raise InvalidInput("amount must not be zero (negative for spending, positive for income)")
        now = self._clock()
        occurred = parse_occurred_at(occurred_at, now=now)
        tx = Transaction(
            transaction_id=str(uuid.uuid4()),
            account_id=account_id,
            amount=minor,
            currency=account.currency,
            category=category,  # type: ignore[arg-type]
            description=description,
            occurred_at=occurred,
            created_at=int(now),
        )
        return Draft(tx=tx, account=account, occurred_at=occurred_at)

    def create_transaction(
        self,
        owner: str,
        *,
        account_id: str,
        amount: str | int,
        category: str,
        description: str,
        occurred_at: str | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Transaction, Account]:
        """The transaction and its account as it stands afterwards."""
        draft = self.draft_transaction(
            owner,
            account_id=account_id,
            amount=amount,
            category=category,
            description=description,
            occurred_at=occurred_at,
        )
        return self.record(owner, draft, idempotency_key=idempotency_key)

    def record(
        self,
        owner: str,
        draft: Draft,
        *,
        idempotency_key: str | None = None,
        authorised_by: Sequence[dict[str, Any]] = (),
    ) -> tuple[Transaction, Account]:
        """Write a drafted transaction; `authorised_by`: conditions committed with it (a spent
        confirmation), whose failure writes nothing and raises `ConfirmationRefused`. A debit by
        an application with caps is refused over them (`LimitRefused`), unless the person
        confirmed it and chose to be asked over a cap; the day's debits are counted in the same
        transaction."""
        tx, account = draft.tx, draft.account
        view = self._view()
        day_cap = None
        if view is not None:
            if not view.sees(tx.account_id):
                raise LimitRefused("account", OUTSIDE_ACCOUNTS)
            if tx.amount < 0:
                waived = bool(authorised_by) and view.confirms_over_cap()
                if not waived:
                    self._within_cap_per_transaction(view, tx)
                cap = None if waived else view.cap_per_day(tx.currency)
                day_cap = st.DayCap(view.client_id, grant_limits.utc_day(tx.created_at), cap)
        payload = {
            "account_id": tx.account_id,
            "amount": tx.amount,
            "category": tx.category,
            "description": tx.description,
            "occurred_at": draft.occurred_at,
        }
        try:
            result = self._store.create_transaction(
                owner,
                tx,
                idempotency=_idempotency(idempotency_key, payload, self._view()),
                now=tx.created_at,
                authorised_by=authorised_by,
                day_cap=day_cap,
            )
        except st.DailyCapReached as exc:
            assert view is not None and day_cap is not None and day_cap.cap is not None
            raise LimitRefused(
                "cap_per_day", over_cap_message("cap_per_day", day_cap.cap, tx.currency)
            ) from exc
        except st.AccountNotFound as exc:
            raise NotFound("no such account") from exc
        except (st.CurrencyMismatch, st.IdempotencyConflict) as exc:
            raise Conflict(str(exc)) from exc
        except st.ConfirmationNotUsable as exc:
            raise ConfirmationRefused(
                "this operation was not approved, or its approval was already used or has expired; "
                "nothing was recorded"
            ) from exc
        if isinstance(result, st.Replayed):
            replayed = self._store.transaction_by_sort_key(owner, result.result_sk)
            if replayed is None:
                raise NotFound("the original transaction no longer exists")
            return replayed, self.account(owner, tx.account_id)
        # the transaction added exactly this amount to the balance read above
        return result, replace(account, balance=account.balance + tx.amount, updated_at=tx.created_at)

    def over_cap(self, owner: str, draft: Draft) -> LimitRefused | None:
        """Whether a debit would go over a cap of the calling application (what to say if so),
        before asking the person anything: one read of the day's counter when there is a daily
        cap. `record` checks again, in its transaction."""
        view, tx = self._view(), draft.tx
        if view is None or tx.amount >= 0:
            return None
        try:
            self._within_cap_per_transaction(view, tx)
        except LimitRefused as refused:
            return refused
        cap = view.cap_per_day(tx.currency)
        if cap is None:
            return None
        spent = self._store.day_spent(owner, view.client_id, grant_limits.utc_day(tx.created_at), tx.currency)
        if spent - tx.amount > cap:
            return LimitRefused("cap_per_day", over_cap_message("cap_per_day", cap, tx.currency))
        return None

    def asks_over_cap(self) -> bool:
        """The person chose to be asked, rather than refuse, a debit over a cap."""
        view = self._view()
        return view is not None and view.confirms_over_cap()

    @staticmethod
    def _within_cap_per_transaction(view: GrantView, tx: Transaction) -> None:
        cap = view.cap_per_transaction(tx.currency)
        if cap is not None and -tx.amount > cap:
            raise LimitRefused(
                "cap_per_transaction", over_cap_message("cap_per_transaction", cap, tx.currency)
            )


def _plausible_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isalnum() or c == "-" for c in value)


class SavedReports:
    """The spending reports a person saved (MCP resources), seen through the call's limits: an app
    limited to some accounts lists, reads and deletes only reports computed from accounts it may
    see — never one covering every account, nor one saved before reports kept what they cover."""

    def __init__(
        self,
        store: st.WalletStore,
        clock: Callable[[], float] = time.time,
        view: Callable[[], GrantView | None] = grant_limits.current,
    ) -> None:
        self._store = store
        self._clock = clock
        self._view = view

    def reports(self, owner: str) -> list[st.SavedReport]:
        view = self._view()
        return [r for r in self._store.reports(owner) if _readable(r, view)]

    def report(self, owner: str, slug: str) -> tuple[st.SavedReport, dict[str, Any]]:
        found = self._store.report(owner, slug)
        if found is None or not _readable(found[0], self._view()):
            raise NotFound("no such report")
        return found

    def save(self, owner: str, slug: str, name: str, content: dict[str, Any]) -> None:
        """Kept with the accounts it was computed from: those this call may see."""
        view = self._view()
        covers = None if view is None or view.chosen is None else view.chosen
        self._store.put_report(owner, slug, name, content, int(self._clock()), covers=covers)

    def delete(self, owner: str, slug: str) -> bool:
        """False if there is no such report this call may see."""
        found = self._store.report(owner, slug)
        if found is None or not _readable(found[0], self._view()):
            return False
        return self._store.delete_report(owner, slug)


def _readable(report: st.SavedReport, view: GrantView | None) -> bool:
    if view is None or view.chosen is None:
        return True
    return report.covers is not None and all(view.sees(a) for a in report.covers)
