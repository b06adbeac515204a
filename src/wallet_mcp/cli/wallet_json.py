"""The Backend API's JSON read back into the wallet's domain objects.

The inverse of `Account.to_json()` and `Transaction.to_json()` and of the API routes' bodies, so
the bridge can hand the remote tools' own code (`mcp_server/wallet_tools.py`) exactly what the
wallet service would have: the texts and structured results are then the remote server's, not a
copy of them. Reading is tolerant of fields added later and strict about the ones it needs.
"""

from __future__ import annotations

from typing import Any, cast

from wallet_mcp.cli.errors import ServiceError
from wallet_mcp.wallet.model import ACCOUNT_TYPES, CATEGORIES, Account, CategorySpending, Page, Transaction
from wallet_mcp.wallet.service import Balance, Spending


class UnexpectedResponse(ServiceError):
    def __init__(self, what: str) -> None:
        super().__init__(f"the wallet API answered an unexpected body ({what})")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnexpectedResponse(f"{what} is not an object")
    return cast(dict[str, Any], value)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise UnexpectedResponse(f"{what} is not a list")
    return value


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise UnexpectedResponse(f"{name} is missing")
    return value


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UnexpectedResponse(f"{name} is missing")
    return value


def account(value: Any) -> Account:
    body = _object(value, "account")
    account_type = _str(body, "type")
    if account_type not in ACCOUNT_TYPES:
        raise UnexpectedResponse(f"account type {account_type[:20]!r}")
    return Account(
        account_id=_str(body, "id"),
        name=_str(body, "name"),
        account_type=account_type,  # type: ignore[arg-type]  # checked against ACCOUNT_TYPES above
        currency=_str(body, "currency"),
        balance=_int(body, "balance_minor"),
        created_at=_int(body, "created_at"),
        updated_at=_int(body, "updated_at"),
    )


def transaction(value: Any) -> Transaction:
    body = _object(value, "transaction")
    category = _str(body, "category")
    if category not in CATEGORIES:
        raise UnexpectedResponse(f"category {category[:20]!r}")
    return Transaction(
        transaction_id=_str(body, "id"),
        account_id=_str(body, "account_id"),
        amount=_int(body, "amount_minor"),
        currency=_str(body, "currency"),
        category=category,  # type: ignore[arg-type]  # checked against CATEGORIES above
        description=_str(body, "description"),
        occurred_at=_int(body, "occurred_at"),
        created_at=_int(body, "created_at"),
    )


def accounts(value: Any) -> list[Account]:
    """`GET /api/accounts`."""
    return [account(a) for a in _list(_object(value, "body").get("accounts"), "accounts")]


def balance(value: Any) -> Balance:
    """`GET /api/balance`: minor units per currency, and how many accounts."""
    body = _object(value, "body")
    totals = {}
    for entry in _list(body.get("totals"), "totals"):
        total = _object(entry, "total")
        totals[_str(total, "currency")] = _int(total, "amount_minor")
    return Balance(totals=totals, accounts=_int(body, "accounts"))


def page(value: Any) -> Page:
    """`GET /api/transactions`."""
    body = _object(value, "body")
    cursor = body.get("next_cursor")
    return Page(
        transactions=[transaction(t) for t in _list(body.get("transactions"), "transactions")],
        next_cursor=cursor if isinstance(cursor, str) else None,
    )


def created_transaction(value: Any) -> tuple[Transaction, Account]:
    """`POST /api/transactions`: the transaction and its account as it stands afterwards."""
    body = _object(value, "body")
    return transaction(body.get("transaction")), account(body.get("account"))


def spending(value: Any) -> Spending:
    """`GET /api/analytics/spending`."""
    body = _object(value, "body")
    period = _object(body.get("period"), "period")
    categories = []
    for entry in _list(body.get("categories"), "categories"):
        item = _object(entry, "category")
        categories.append(
            CategorySpending(
                category=_str(item, "category"),
                currency=_str(item, "currency"),
                spent=_int(item, "spent_minor"),
                count=_int(item, "count"),
            )
        )
    return Spending(
        first_month=_str(period, "first_month"),
        last_month=_str(period, "last_month"),
        categories=categories,
    )
