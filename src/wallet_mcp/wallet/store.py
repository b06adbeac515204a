"""The wallet in one DynamoDB table (WalletTable: `pk`, `sk`; GSI `gsi1` on `gsi1pk`, `gsi1sk`).

Every key starts with the owner's partition `USER#<user_id>`, taken from the access token, never
from input: one user's queries cannot reach another's items. Layout (docs/storage.md):

    USER#u  PROFILE                        account_count
    USER#u  ACCOUNT#<account_id>           an account and its balance (minor units)
    USER#u  TX#<occurred_ms:013d>#<tx_id>  a transaction; gsi1: USER#u#ACCOUNT#<id> / same sort key
    USER#u  SPEND#<yyyy-mm>#<ccy>#<cat>    spending of a month by category (kept by each write)
    USER#u  IDEMP#<kind>#<key>             what an idempotent create produced (TTL 24 h)
    USER#u  REPORT#<slug>                  a saved report (an MCP resource the user created)
    USER#u  DAYCAP#<client>#<yyyy-mm-dd>#<ccy>  what one application debited that UTC day (TTL 2 days)

Reads are Queries on one partition (newest-first by the sort key): their cost does not grow with
the number of transactions. A transaction and its balance change commit in one
TransactWriteItems.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from wallet_mcp.storage import items
from wallet_mcp.storage.transactions import LOST, commit
from wallet_mcp.wallet.model import (
    MAX_ACCOUNTS_PER_USER,
    Account,
    CategorySpending,
    MonthSpending,
    Page,
    Transaction,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

IDEMPOTENCY_TTL: Final = 24 * 3600
_CURSOR_PREFIX: Final = "c1."


class AccountNotFound(Exception):
    pass


class TooManyAccounts(Exception):
    pass


class CurrencyMismatch(Exception):
    pass


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


class InvalidCursor(Exception):
    pass


class ConfirmationNotUsable(Exception):
    """The confirmation a write was committed with is not approved for it (any more): used
    already, expired, declined, or for other arguments. Nothing was written."""


class DailyCapReached(Exception):
    """The debit would take the application's debits of the day over the person's cap."""


@dataclass(frozen=True, slots=True)
class DayCap:
    """The day counter a debit by an application adds to; `cap`: the most the counter may reach
    (None: counted, not capped — a debit the person confirmed over the cap)."""

    client_id: str
    day: str
    cap: int | None


DAYCAP_TTL: Final = 2 * 86400


@dataclass(frozen=True, slots=True)
class Replayed:
    """An idempotent create that had already happened: the id of what it produced."""

    result_id: str
    result_sk: str


def user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def _tx_sk(occurred_ms: int, tx_id: str) -> str:
    return f"TX#{occurred_ms:013d}#{tx_id}"


def _daycap_sk(client_id: str, day: str, currency: str) -> str:
    return f"DAYCAP#{client_id}#{day}#{currency}"


def month_of(epoch_ms: int) -> str:
    return time.strftime("%Y-%m", time.gmtime(epoch_ms / 1000))


_MONTH_PAGE: Final = 50
_MONTH_PREFIX: Final = re.compile(r"([0-9]{0,4})(?:-([0-9]{0,2}))?")
_LAST_KEYED_MS: Final = 10**13 - 1
"""The largest time a transaction key holds (13 digits: the year 2286)."""


def _month_start_ms(month: str) -> int:
    year, number = map(int, month.split("-"))
    return int(datetime(year, number, 1, tzinfo=UTC).timestamp() * 1000)


def month_bounds(prefix: str) -> tuple[int, int] | None:
    """The first and last millisecond of the months (`YYYY-MM`) that start with `prefix`, within
    what a transaction key can hold; None if no month does (e.g. `2026-2`)."""
    matched = _MONTH_PREFIX.fullmatch(prefix)
    if matched is None:
        return None
    year, month = matched.group(1), matched.group(2) or ""
    if len(year) < 4 and matched.group(2) is not None:
        return None  # "202-": no month is written so
    if len(month) == 0:
        first_month, last_month = 1, 12
    elif len(month) == 1:
        first_month, last_month = {"0": (1, 9), "1": (10, 12)}.get(month, (0, 0))
    else:
        first_month = last_month = int(month) if 1 <= int(month) <= 12 else 0
    if first_month == 0:
        return None
    first_year, last_year = int(year.ljust(4, "0")), int(year.ljust(4, "9"))
    first_year, last_year = max(first_year, 1970), min(last_year, 2286)
    if first_year > last_year:
        return None
    lowest = _month_start_ms(f"{first_year:04d}-{first_month:02d}")
    after = f"{last_year + last_month // 12:04d}-{last_month % 12 + 1:02d}"
    return lowest, min(_month_start_ms(after) - 1, _LAST_KEYED_MS)


def encode_cursor(sort_key: str) -> str:
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(sort_key.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> str:
    """The sort key a cursor resumes after; only ever applied inside the caller's own partition."""
    if not cursor.startswith(_CURSOR_PREFIX) or len(cursor) > 200:
        raise InvalidCursor("invalid cursor")
    raw = cursor[len(_CURSOR_PREFIX) :]
    try:
        sort_key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("invalid cursor") from exc
    parts = sort_key.split("#")
    if len(parts) != 3 or parts[0] != "TX" or not parts[1].isdigit() or not parts[2]:
        raise InvalidCursor("invalid cursor")
    return sort_key


def account_item(user_id: str, account: Account) -> items.Item:
    return {
        "pk": items.s(user_pk(user_id)),
        "sk": items.s(f"ACCOUNT#{account.account_id}"),
        "kind": items.s("account"),
        "account_id": items.s(account.account_id),
        "name": items.s(account.name),
        "account_type": items.s(account.account_type),
        "currency": items.s(account.currency),
        "balance": items.n(account.balance),
        "opening_balance": items.n(account.balance),
        "created_at": items.n(account.created_at),
        "updated_at": items.n(account.updated_at),
    }


def transaction_item(user_id: str, tx: Transaction) -> items.Item:
    pk = user_pk(user_id)
    sk = _tx_sk(tx.occurred_at, tx.transaction_id)
    return {
        "pk": items.s(pk),
        "sk": items.s(sk),
        "gsi1pk": items.s(f"{pk}#ACCOUNT#{tx.account_id}"),
        "gsi1sk": items.s(sk),
        "kind": items.s("transaction"),
        "transaction_id": items.s(tx.transaction_id),
        "account_id": items.s(tx.account_id),
        "amount": items.n(tx.amount),
        "currency": items.s(tx.currency),
        "category": items.s(tx.category),
        "description": items.s(tx.description),
        "occurred_at": items.n(tx.occurred_at),
        "created_at": items.n(tx.created_at),
    }


def _account(item: items.Item) -> Account:
    return Account(
        account_id=items.req_s(item, "account_id"),
        name=items.req_s(item, "name"),
        account_type=items.req_s(item, "account_type"),  # type: ignore[arg-type]
        currency=items.req_s(item, "currency"),
        balance=items.req_n(item, "balance"),
        created_at=items.req_n(item, "created_at"),
        updated_at=items.req_n(item, "updated_at"),
    )


def _transaction(item: items.Item) -> Transaction:
    return Transaction(
        transaction_id=items.req_s(item, "transaction_id"),
        account_id=items.req_s(item, "account_id"),
        amount=items.req_n(item, "amount"),
        currency=items.req_s(item, "currency"),
        category=items.req_s(item, "category"),  # type: ignore[arg-type]
        description=items.req_s(item, "description"),
        occurred_at=items.req_n(item, "occurred_at"),
        created_at=items.req_n(item, "created_at"),
    )


class WalletStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    # --- reads ---------------------------------------------------------------------------------

    def accounts(self, user_id: str) -> list[Account]:
        found: list[Account] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": items.s(user_pk(user_id)), ":prefix": items.s("ACCOUNT#")},
        }
        while True:
            response = self._db.query(**kwargs)
            found.extend(_account(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return sorted(found, key=lambda a: (a.created_at, a.account_id))
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def account(self, user_id: str, account_id: str) -> Account | None:
        response = self._db.get_item(
            TableName=self.table,
            Key={"pk": items.s(user_pk(user_id)), "sk": items.s(f"ACCOUNT#{account_id}")},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _account(item) if item else None

    def transactions(
        self,
        user_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        account_id: str | None = None,
        only_accounts: Sequence[str] | None = None,
    ) -> Page:
        """Newest first; `cursor` continues a previous page; `only_accounts`: of these accounts
        alone (an application limited to them)."""
        if account_id is None and only_accounts is not None:
            return self._transactions_of(user_id, limit=limit, cursor=cursor, accounts=only_accounts)
        pk = user_pk(user_id)
        kwargs: dict[str, Any] = {"TableName": self.table, "ScanIndexForward": False, "Limit": limit}
        start = decode_cursor(cursor) if cursor else None
        if account_id is None:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :prefix)"
            kwargs["ExpressionAttributeValues"] = {":pk": items.s(pk), ":prefix": items.s("TX#")}
            if start:
                kwargs["ExclusiveStartKey"] = {"pk": items.s(pk), "sk": items.s(start)}
        else:
            index_pk = f"{pk}#ACCOUNT#{account_id}"
            kwargs["IndexName"] = "gsi1"
            kwargs["KeyConditionExpression"] = "gsi1pk = :g AND begins_with(gsi1sk, :prefix)"
            kwargs["ExpressionAttributeValues"] = {":g": items.s(index_pk), ":prefix": items.s("TX#")}
            if start:
                kwargs["ExclusiveStartKey"] = {
                    "pk": items.s(pk),
                    "sk": items.s(start),
                    "gsi1pk": items.s(index_pk),
                    "gsi1sk": items.s(start),
                }
        response = self._db.query(**kwargs)
        found = [_transaction(i) for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        next_cursor = encode_cursor(items.req_s(last, "sk")) if last and found else None
        return Page(transactions=found, next_cursor=next_cursor)

    def _transactions_of(
        self, user_id: str, *, limit: int, cursor: str | None, accounts: Sequence[str]
    ) -> Page:
        """The owner's transactions of some accounts, newest first: the partition read with a
        filter, page after page until `limit` are found."""
        if not accounts:
            return Page(transactions=[], next_cursor=None)
        pk = user_pk(user_id)
        names = {f":a{i}": items.s(a) for i, a in enumerate(sorted(set(accounts)))}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ScanIndexForward": False,
            "Limit": limit,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "FilterExpression": f"account_id IN ({', '.join(names)})",
            "ExpressionAttributeValues": {":pk": items.s(pk), ":prefix": items.s("TX#"), **names},
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = {"pk": items.s(pk), "sk": items.s(decode_cursor(cursor))}
        found: list[items.Item] = []
        while True:
            response = self._db.query(**kwargs)
            found.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if len(found) >= limit:
                kept = found[:limit]
                more = last is not None or len(found) > limit
                next_cursor = encode_cursor(items.req_s(kept[-1], "sk")) if more else None
                return Page(transactions=[_transaction(i) for i in kept], next_cursor=next_cursor)
            if last is None:
                return Page(transactions=[_transaction(i) for i in found], next_cursor=None)
            kwargs["ExclusiveStartKey"] = last

    def spending_of(
        self, user_id: str, first_month: str, last_month: str, accounts: Sequence[str]
    ) -> tuple[list[CategorySpending], list[MonthSpending]]:
        """`spending_report` of some accounts alone, summed from their transactions (the SPEND
        items add up every account)."""
        if not accounts:
            return [], []
        first = datetime.strptime(first_month, "%Y-%m").replace(tzinfo=UTC)
        year, month = map(int, last_month.split("-"))
        after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        names = {f":a{i}": items.s(a) for i, a in enumerate(sorted(set(accounts)))}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "FilterExpression": f"account_id IN ({', '.join(names)}) AND amount < :zero AND category <> :t",
            "ExpressionAttributeValues": {
                ":pk": items.s(user_pk(user_id)),
                ":lo": items.s(f"TX#{int(first.timestamp() * 1000):013d}#"),
                ":hi": items.s(f"TX#{int(after.timestamp() * 1000) - 1:013d}#~"),
                ":zero": items.n(0),
                ":t": items.s("transfer"),
                **names,
            },
        }
        totals: dict[tuple[str, str], list[int]] = {}
        by_month: dict[tuple[str, str], list[int]] = {}
        while True:
            response = self._db.query(**kwargs)
            for item in response.get("Items", []):
                tx = _transaction(item)
                in_month = datetime.fromtimestamp(tx.occurred_at / 1000, UTC).strftime("%Y-%m")
                keyed: tuple[tuple[tuple[str, str], dict[tuple[str, str], list[int]]], ...] = (
                    ((tx.category, tx.currency), totals),
                    ((in_month, tx.currency), by_month),
                )
                for key, into in keyed:
                    entry = into.setdefault(key, [0, 0])
                    entry[0] -= tx.amount
                    entry[1] += 1
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return _report(totals, by_month)

    def day_spent(self, user_id: str, client_id: str, day: str, currency: str) -> int:
        """What the application has debited that UTC day in that currency (minor units)."""
        response = self._db.get_item(
            TableName=self.table,
            Key={"pk": items.s(user_pk(user_id)), "sk": items.s(_daycap_sk(client_id, day, currency))},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return items.req_n(item, "spent") if item else 0

    def spending(self, user_id: str, first_month: str, last_month: str) -> list[CategorySpending]:
        return self.spending_report(user_id, first_month, last_month)[0]

    def spending_report(
        self, user_id: str, first_month: str, last_month: str
    ) -> tuple[list[CategorySpending], list[MonthSpending]]:
        """Spending by category over the months, and by month (each month that has any), from one
        query of the SPEND items (`SPEND#<month>#<currency>#<category>`)."""
        totals: dict[tuple[str, str], list[int]] = {}
        by_month: dict[tuple[str, str], list[int]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": items.s(user_pk(user_id)),
                ":lo": items.s(f"SPEND#{first_month}#"),
                ":hi": items.s(f"SPEND#{last_month}#~"),
            },
        }
        while True:
            response = self._db.query(**kwargs)
            for item in response.get("Items", []):
                _, month, currency, category = items.req_s(item, "sk").split("#", 3)
                spent, count = items.req_n(item, "spent"), items.req_n(item, "count")
                for key, into in (((category, currency), totals), ((month, currency), by_month)):
                    entry = into.setdefault(key, [0, 0])
                    entry[0] += spent
                    entry[1] += count
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return _report(totals, by_month)

    def spending_months(self, user_id: str, prefix: str, limit: int) -> list[str]:
        """Up to `limit` months (`YYYY-MM`, newest first) with spending recorded, among those
        starting with `prefix`: read from the SPEND items' keys alone, one page of keys per query,
        stopping as soon as `limit` months are found."""
        months: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": items.s(user_pk(user_id)),
                ":prefix": items.s(f"SPEND#{prefix}"),
            },
            "ProjectionExpression": "sk",
            "ScanIndexForward": False,
        }
        while True:
            response = self._db.query(**kwargs)
            for item in response.get("Items", []):
                month = items.req_s(item, "sk").split("#", 2)[1]
                if not months or months[-1] != month:  # a month's items are adjacent in key order
                    months.append(month)
                    if len(months) >= limit:
                        return months
            if "LastEvaluatedKey" not in response:
                return months
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def spending_months_of(self, user_id: str, prefix: str, limit: int, accounts: Sequence[str]) -> list[str]:
        """`spending_months` of some accounts alone (the SPEND items add up every account): from
        their debits, newest first, one month at a time — the newest matching debit names a month,
        and the next query starts below that month's first millisecond. Each month found costs
        one query of at most `_MONTH_PAGE` keys (more only while other items fill the pages)."""
        bounds = month_bounds(prefix)
        if bounds is None or not accounts:
            return []
        lowest, upper = bounds
        names = {f":a{i}": items.s(a) for i, a in enumerate(sorted(set(accounts)))}
        months: list[str] = []
        while upper >= lowest and len(months) < limit:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
                "FilterExpression": (
                    f"account_id IN ({', '.join(names)}) AND amount < :zero AND category <> :t"
                ),
                "ExpressionAttributeValues": {
                    ":pk": items.s(user_pk(user_id)),
                    ":lo": items.s(f"TX#{lowest:013d}#"),
                    ":hi": items.s(f"TX#{upper:013d}#~"),
                    ":zero": items.n(0),
                    ":t": items.s("transfer"),
                    **names,
                },
                "ProjectionExpression": "sk",
                "ScanIndexForward": False,
                "Limit": _MONTH_PAGE,
            }
            newest = None
            while newest is None:
                response = self._db.query(**kwargs)
                found = response.get("Items", [])
                if found:
                    newest = int(items.req_s(found[0], "sk").split("#")[1])
                elif "LastEvaluatedKey" in response:
                    kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
                else:
                    return months
            month = month_of(newest)
            months.append(month)
            upper = _month_start_ms(month) - 1
        return months

    def transaction_by_sort_key(self, user_id: str, sort_key: str) -> Transaction | None:
        response = self._db.get_item(
            TableName=self.table,
            Key={"pk": items.s(user_pk(user_id)), "sk": items.s(sort_key)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _transaction(item) if item else None

    # --- writes --------------------------------------------------------------------------------

    def create_account(
        self,
        user_id: str,
        account: Account,
        *,
        idempotency: tuple[str, str] | None,
        now: int,
        authorised_by: Sequence[dict[str, Any]] = (),
    ) -> Account | Replayed:
        """`authorised_by`: as for `create_transaction` (a spent confirmation, when an
        administrator requires one for new accounts)."""
        pk = user_pk(user_id)
        sk = f"ACCOUNT#{account.account_id}"
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": account_item(user_id, account),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": items.s(pk), "sk": items.s("PROFILE")},
                    "UpdateExpression": "ADD account_count :one",
                    "ConditionExpression": "attribute_not_exists(account_count) OR account_count < :max",
                    "ExpressionAttributeValues": {":one": items.n(1), ":max": items.n(MAX_ACCOUNTS_PER_USER)},
                }
            },
        ]
        if idempotency:
            actions.append(self._idempotency_put(pk, "account", idempotency, account.account_id, sk, now))
        guard = len(actions)
        actions.extend(authorised_by)
        reasons = self._commit(actions)
        if reasons is None:
            return account
        if authorised_by and reasons[guard] in LOST:
            raise ConfirmationNotUsable("the confirmation is not approved for this operation")
        if idempotency and reasons[2] == "ConditionalCheckFailed":
            return self._replayed(pk, "account", idempotency)
        if reasons[1] == "ConditionalCheckFailed":
            raise TooManyAccounts(f"at most {MAX_ACCOUNTS_PER_USER} accounts")
        raise RuntimeError(f"account creation cancelled: {reasons}")

    def create_transaction(
        self,
        user_id: str,
        tx: Transaction,
        *,
        idempotency: tuple[str, str] | None,
        now: int,
        authorised_by: Sequence[dict[str, Any]] = (),
        day_cap: DayCap | None = None,
    ) -> Transaction | Replayed:
        """`authorised_by`: actions committed in the same transaction, whose conditions must hold
        for the write to happen (a confirmation spent, its audit event); the first of them is the
        one whose failure means `ConfirmationNotUsable`. `day_cap`: a debit by an application,
        added to its day counter in the same transaction (`DailyCapReached` over the cap: the
        check and the count cannot race)."""
        pk = user_pk(user_id)
        sk = _tx_sk(tx.occurred_at, tx.transaction_id)
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": transaction_item(user_id, tx),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": items.s(pk), "sk": items.s(f"ACCOUNT#{tx.account_id}")},
                    "UpdateExpression": "SET balance = balance + :amount, updated_at = :now",
                    "ConditionExpression": "attribute_exists(pk) AND currency = :currency",
                    "ExpressionAttributeValues": {
                        ":amount": items.n(tx.amount),
                        ":now": items.n(now),
                        ":currency": items.s(tx.currency),
                    },
                }
            },
        ]
        if tx.amount < 0 and tx.category != "transfer":  # moving money between own accounts is not spending
            actions.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {
                            "pk": items.s(pk),
                            "sk": items.s(f"SPEND#{month_of(tx.occurred_at)}#{tx.currency}#{tx.category}"),
                        },
                        "UpdateExpression": "ADD spent :spent, #count :one",
                        "ExpressionAttributeNames": {"#count": "count"},
                        "ExpressionAttributeValues": {":spent": items.n(-tx.amount), ":one": items.n(1)},
                    }
                }
            )
        capped = None
        if day_cap is not None and tx.amount < 0:
            capped = len(actions)
            actions.append(self._day_cap_update(pk, day_cap, tx, now))
        if idempotency:
            actions.append(self._idempotency_put(pk, "transaction", idempotency, tx.transaction_id, sk, now))
        guard = len(actions)
        actions.extend(authorised_by)
        reasons = self._commit(actions)
        if reasons is None:
            return tx
        if authorised_by and reasons[guard] in LOST:
            raise ConfirmationNotUsable("the confirmation is not approved for this operation")
        if idempotency and reasons[guard - 1] == "ConditionalCheckFailed":
            return self._replayed(pk, "transaction", idempotency)
        if capped is not None and reasons[capped] == "ConditionalCheckFailed":
            raise DailyCapReached(tx.currency)
        if reasons[1] == "ConditionalCheckFailed":
            account = self.account(user_id, tx.account_id)
            if account is None:
                raise AccountNotFound(tx.account_id)
            raise CurrencyMismatch(f"the account holds {account.currency}")
        raise RuntimeError(f"transaction cancelled: {reasons}")

    # --- saved reports (resources the user creates) --------------------------------------------

    def put_report(
        self,
        user_id: str,
        slug: str,
        name: str,
        content: dict[str, Any],
        now: int,
        covers: Sequence[str] | None = None,
    ) -> None:
        """`covers`: the accounts the report was computed from (None: every account)."""
        item = {
            "pk": items.s(user_pk(user_id)),
            "sk": items.s(f"REPORT#{slug}"),
            "kind": items.s("report"),
            "name": items.s(name),
            "content": items.s(json.dumps(content, separators=(",", ":"))),
            "updated_at": items.n(now),
        }
        if covers is not None:
            item["covers"] = items.s(json.dumps(sorted(set(covers))))
        self._db.put_item(TableName=self.table, Item=item)

    def reports(self, user_id: str) -> list[SavedReport]:
        """Every saved report, without its content."""
        response = self._db.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": items.s(user_pk(user_id)), ":prefix": items.s("REPORT#")},
            ProjectionExpression="sk, #name, updated_at, covers",
            ExpressionAttributeNames={"#name": "name"},
        )
        return [_saved_report(i) for i in response.get("Items", [])]

    def report(self, user_id: str, slug: str) -> tuple[SavedReport, dict[str, Any]] | None:
        response = self._db.get_item(
            TableName=self.table, Key={"pk": items.s(user_pk(user_id)), "sk": items.s(f"REPORT#{slug}")}
        )
        item = response.get("Item")
        if item is None:
            return None
        content: dict[str, Any] = json.loads(items.req_s(item, "content"))
        return _saved_report(item), content

    def delete_report(self, user_id: str, slug: str) -> bool:
        try:
            self._db.delete_item(
                TableName=self.table,
                Key={"pk": items.s(user_pk(user_id)), "sk": items.s(f"REPORT#{slug}")},
                ConditionExpression="attribute_exists(pk)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # --- helpers -------------------------------------------------------------------------------

    def _day_cap_update(self, pk: str, day_cap: DayCap, tx: Transaction, now: int) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {
                "pk": items.s(pk),
                "sk": items.s(_daycap_sk(day_cap.client_id, day_cap.day, tx.currency)),
            },
            "UpdateExpression": "ADD spent :debit SET expires_at = :expires",
            "ExpressionAttributeValues": {
                ":debit": items.n(-tx.amount),
                ":expires": items.n(now + DAYCAP_TTL),
            },
        }
        if day_cap.cap is not None:
            room = day_cap.cap + tx.amount  # what may have been debited before this one
            # room < 0: this debit alone is over the cap, so no counter (absent or not) may pass
            update["ConditionExpression"] = (
                "attribute_not_exists(spent) OR spent <= :room" if room >= 0 else "spent <= :room"
            )
            update["ExpressionAttributeValues"][":room"] = items.n(room)
        return {"Update": update}

    def _idempotency_put(
        self, pk: str, kind: str, idempotency: tuple[str, str], result_id: str, result_sk: str, now: int
    ) -> dict[str, Any]:
        key, fingerprint = idempotency
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "pk": items.s(pk),
                    "sk": items.s(f"IDEMP#{kind}#{key}"),
                    "fingerprint": items.s(fingerprint),
                    "result_id": items.s(result_id),
                    "result_sk": items.s(result_sk),
                    "expires_at": items.n(now + IDEMPOTENCY_TTL),
                },
                "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now",
                "ExpressionAttributeValues": {":now": items.n(now)},
            }
        }

    def _replayed(self, pk: str, kind: str, idempotency: tuple[str, str]) -> Replayed:
        key, fingerprint = idempotency
        response = self._db.get_item(
            TableName=self.table,
            Key={"pk": items.s(pk), "sk": items.s(f"IDEMP#{kind}#{key}")},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None or items.req_s(item, "fingerprint") != fingerprint:
            raise IdempotencyConflict("this idempotency key was used for a different request")
        return Replayed(result_id=items.req_s(item, "result_id"), result_sk=items.req_s(item, "result_sk"))

    def _commit(self, actions: list[dict[str, Any]]) -> list[str] | None:
        """None on success, else the cancellation reason of each action ("None" where it was fine)."""
        return commit(self._db, actions)


def _report(
    totals: dict[tuple[str, str], list[int]], by_month: dict[tuple[str, str], list[int]]
) -> tuple[list[CategorySpending], list[MonthSpending]]:
    """Spending by (category, currency), most first, and by (month, currency), in month order,
    from sums of [spent, count]."""
    categories = sorted(
        (
            CategorySpending(category=c, currency=ccy, spent=v[0], count=v[1])
            for (c, ccy), v in totals.items()
        ),
        key=lambda s: (-s.spent, s.category),
    )
    months = [
        MonthSpending(month=m, currency=ccy, spent=v[0], count=v[1])
        for (m, ccy), v in sorted(by_month.items())
    ]
    return categories, months


@dataclass(frozen=True, slots=True)
class SavedReport:
    slug: str
    name: str
    updated_at: int
    covers: tuple[str, ...] | None
    """The accounts it was computed from (None: every account, or saved before this was kept)."""


def _saved_report(item: items.Item) -> SavedReport:
    covers = items.get_s(item, "covers")
    return SavedReport(
        slug=items.req_s(item, "sk").removeprefix("REPORT#"),
        name=items.req_s(item, "name"),
        updated_at=items.req_n(item, "updated_at"),
        covers=tuple(json.loads(covers)) if covers is not None else None,
    )
