"""Accounts and transactions, and the closed sets they draw from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from wallet_mcp.wallet.money import to_decimal_string

AccountType = Literal["checking", "savings", "credit_card", "cash", "investment"]
ACCOUNT_TYPES: Final = get_args(AccountType)

Category = Literal[
    "income",
    "groceries",
    "dining",
    "transport",
    "housing",
    "utilities",
    "entertainment",
    "shopping",
    "health",
    "travel",
    "education",
    "subscriptions",
    "transfer",
    "fees",
    "other",
]
CATEGORIES: Final = get_args(Category)

MAX_NAME: Final = 64
MAX_DESCRIPTION: Final = 200
MAX_ACCOUNTS_PER_USER: Final = 50


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    name: str
    account_type: AccountType
    currency: str
    balance: int
    """Minor units."""
    created_at: int
    updated_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.account_id,
            "name": self.name,
            "type": self.account_type,
            "currency": self.currency,
            "balance": to_decimal_string(self.balance, self.currency),
            "balance_minor": self.balance,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Transaction:
    transaction_id: str
    account_id: str
    amount: int
    """Signed minor units: negative is money out (spending), positive money in."""
    currency: str
    category: Category
    description: str
    occurred_at: int
    """Epoch milliseconds."""
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.transaction_id,
            "account_id": self.account_id,
            "amount": to_decimal_string(self.amount, self.currency),
            "amount_minor": self.amount,
            "currency": self.currency,
            "category": self.category,
            "description": self.description,
            "occurred_at": self.occurred_at,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class CategorySpending:
    category: str
    currency: str
    spent: int
    """Minor units, positive."""
    count: int


@dataclass(frozen=True, slots=True)
class MonthSpending:
    """What was spent in one month in one currency (the "over time" of a spending report)."""

    month: str
    """YYYY-MM"""
    currency: str
    spent: int
    """Minor units, positive."""
    count: int


@dataclass(frozen=True, slots=True)
class Page:
    transactions: list[Transaction]
    next_cursor: str | None
