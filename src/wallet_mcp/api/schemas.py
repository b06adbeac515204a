"""The API's wire shapes: requests parsed strictly at the edge, responses described for OpenAPI.

Request models forbid unknown fields and coerce nothing: an amount must be a JSON string of decimal
digits, never a float (a binary float cannot hold 0.10 exactly). They bound every length; the wallet
service then applies the domain rules (currency exponent, limits, closed sets) before any write.

Response bodies are produced by the domain's own `to_json()`; the models below describe them for
the OpenAPI document and are checked against real responses by the handler tests.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from wallet_mcp.wallet.model import MAX_DESCRIPTION, MAX_NAME, AccountType, Category
from wallet_mcp.wallet.money import CURRENCIES

# ASCII digits only: `\d` would admit other scripts' digits, which `Decimal` also accepts
_DECIMAL: Final = re.compile(r"[+-]?[0-9]{1,16}(\.[0-9]{1,8})?")
_CURRENCY_CODES: Final = sorted(CURRENCIES)


def _decimal_text(value: str) -> str:
    if not _DECIMAL.fullmatch(value):
        raise PydanticCustomError(
            "decimal_string", 'must be a decimal string such as "-12.34" (no exponent, no separators)'
        )
    return value


DecimalString = Annotated[
    str,
    Field(
        min_length=1,
        max_length=26,
        json_schema_extra={"pattern": f"^{_DECIMAL.pattern}$"},
        examples=["-12.34"],
    ),
    AfterValidator(_decimal_text),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NewAccount(_Request):
    """`POST /api/accounts`."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME, examples=["Holiday Fund"])]
    type: AccountType
    currency: Annotated[
        str,
        Field(
            min_length=3,
            max_length=3,
            description=f"ISO 4217 code, one of {', '.join(_CURRENCY_CODES)}",
            examples=["USD"],
        ),
    ]
    opening_balance: Annotated[
        DecimalString, Field(description="In major units, at most the currency's decimal places")
    ] = "0"


class NewTransaction(_Request):
    """`POST /api/transactions`."""

    account_id: Annotated[str, Field(min_length=1, max_length=64)]
    amount: Annotated[
        DecimalString,
        Field(description="Signed, in major units of the account's currency: negative is spending"),
    ]
    category: Category
    description: Annotated[str, Field(min_length=1, max_length=MAX_DESCRIPTION, examples=["Coffee"])]
    occurred_at: Annotated[
        str | None,
        Field(
            max_length=40,
            description="ISO 8601 date-time (UTC when no zone is given); default now",
            examples=["2026-11-26T14:30:00Z"],
        ),
    ] = None


# --- responses (documentation of what `to_json()` and the routes produce) ---------------------


class ErrorBody(BaseModel):
    error: str
    error_description: str


class AccountOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    type: AccountType
    currency: str
    balance: Annotated[str, Field(description="Exact decimal in major units", examples=["5432.10"])]
    balance_minor: Annotated[int, Field(description="Minor units (cents)", examples=[543210])]
    created_at: Annotated[int, Field(description="Epoch seconds")]
    updated_at: Annotated[int, Field(description="Epoch seconds")]


class TransactionOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    account_id: str
    amount: Annotated[str, Field(description="Signed exact decimal: negative is spending")]
    amount_minor: int
    currency: str
    category: Category
    description: str
    occurred_at: Annotated[int, Field(description="Epoch milliseconds")]
    created_at: Annotated[int, Field(description="Epoch seconds")]


class MoneyTotal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str
    amount: str
    amount_minor: int
    formatted: Annotated[str, Field(examples=["$5,432.10"])]


class BalanceOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    totals: list[MoneyTotal]
    accounts: Annotated[int, Field(description="How many accounts the totals cover")]


class AccountsOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[AccountOut]


class TransactionsOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transactions: Annotated[list[TransactionOut], Field(description="Newest first")]
    next_cursor: Annotated[
        str | None, Field(description="Pass as `cursor` for the next page; null at the end")
    ]


class CreatedTransaction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transaction: TransactionOut
    account: Annotated[AccountOut, Field(description="The account as it stands after the transaction")]


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_month: Annotated[str, Field(examples=["2026-10"])]
    last_month: Annotated[str, Field(examples=["2026-12"])]


class CategorySpendingOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: Category
    currency: str
    spent: Annotated[str, Field(description="Positive exact decimal")]
    spent_minor: int
    count: int


class SpendingTotal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str
    spent: str
    spent_minor: int
    count: int


class SpendingOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: Period
    categories: Annotated[list[CategorySpendingOut], Field(description="Largest spending first")]
    totals: Annotated[list[SpendingTotal], Field(description="Per currency")]
