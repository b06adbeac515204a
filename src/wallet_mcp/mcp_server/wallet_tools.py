"""The wallet tools (names and scopes fixed by CONTRACT.md), over the shared wallet service.

Each tool answers text for people and `structuredContent` matching its output schema. Arguments are
validated strictly (pydantic, unknown fields refused); amounts are exact decimals, given as a
string ("-12.50") or a JSON number (read through its shortest decimal form, never as binary
floating point arithmetic), and stored in minor units.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from wallet_mcp.mcp_server import apps
from wallet_mcp.mcp_server.tools import Proposal, ToolError, ToolOutcome, ToolSpec
from wallet_mcp.primitives import scopes
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.confirmations import Operation, needs_confirmation
from wallet_mcp.wallet.model import (
    MAX_DESCRIPTION,
    MAX_NAME,
    Account,
    AccountType,
    Category,
    Transaction,
)
from wallet_mcp.wallet.money import CURRENCIES, format_money, to_decimal_string
from wallet_mcp.wallet.owners import OwnerResolver
from wallet_mcp.wallet.service import (
    PERIODS,
    ConfirmationRefused,
    Draft,
    LimitRefused,
    SavedReports,
    WalletError,
    WalletService,
)
from wallet_mcp.wallet.store import WalletStore

ArgsT = TypeVar("ArgsT", bound=BaseModel)

Amount = Annotated[
    str | int | float,
    Field(description='Exact decimal amount, e.g. "-12.50" (a string is best; numbers are read as written)'),
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD")]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NoArgs(_Args):
    pass


class RecentTransactionsArgs(_Args):
    limit: int = Field(10, ge=1, le=100, description="How many transactions (1-100), newest first")
    accountId: str | None = Field(None, max_length=64, description="Only this account's transactions")
    cursor: str | None = Field(None, max_length=200, description="next_cursor of a previous call, for more")


class CreateAccountArgs(_Args):
    name: str = Field(min_length=1, max_length=MAX_NAME, description="Account name, e.g. Holiday fund")
    type: AccountType = Field(description="Kind of account")
    currency: CurrencyCode = "USD"
    openingBalance: Amount = "0"
    idempotencyKey: str | None = Field(
        None, min_length=8, max_length=128, description="Send the same key when retrying: never creates twice"
    )


class CreateTransactionArgs(_Args):
    accountId: str = Field(max_length=64, description="The account's id (see getUserAccounts)")
    amount: Amount = Field(description='Signed: negative for spending ("-12.50"), positive for income')
    category: Category
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    occurredAt: str | None = Field(
        None, max_length=40, description="ISO 8601 date-time, e.g. 2026-11-26T12:30:00Z (default: now)"
    )
    idempotencyKey: str | None = Field(
        None, min_length=8, max_length=128, description="Send the same key when retrying: never records twice"
    )


class SpendingArgs(_Args):
    period: str = Field(
        "this_month",
        max_length=20,
        description=f"One of {', '.join(PERIODS)}, a month YYYY-MM, or a range YYYY-MM..YYYY-MM",
    )


class SaveReportArgs(SpendingArgs):
    name: str = Field(min_length=1, max_length=MAX_NAME, description="Report name; saving again replaces it")


class DeleteReportArgs(_Args):
    slug: str = Field(min_length=1, max_length=MAX_NAME, description="The report's slug (from its URI)")


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_MONEY = {"type": "object", "properties": {"currency": {"type": "string"}, "amount": {"type": "string"}}}
_ACCOUNT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "type": {"type": "string"},
        "currency": {"type": "string"},
        "balance": {"type": "string"},
        "balance_minor": {"type": "integer"},
    },
    "required": ["id", "name", "type", "currency", "balance", "balance_minor"],
}
_TRANSACTION = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "account_id": {"type": "string"},
        "amount": {"type": "string"},
        "amount_minor": {"type": "integer"},
        "currency": {"type": "string"},
        "category": {"type": "string"},
        "description": {"type": "string"},
        "occurred_at": {"type": "integer"},
    },
    "required": [
        "id",
        "account_id",
        "amount",
        "amount_minor",
        "currency",
        "category",
        "description",
        "occurred_at",
    ],
}
_MONTH = {
    "type": "object",
    "properties": {
        "month": {"type": "string"},
        "currency": {"type": "string"},
        "spent": {"type": "string"},
        "spent_minor": {"type": "integer"},
        "count": {"type": "integer"},
    },
    "required": ["month", "currency", "spent", "spent_minor", "count"],
}
_SPENDING = _schema(
    {
        "first_month": {"type": "string"},
        "last_month": {"type": "string"},
        "categories": {"type": "array", "items": {"type": "object"}},
        "totals": {"type": "array", "items": _MONEY},
        "months": {"type": "array", "items": _MONTH},
    },
    ["first_month", "last_month", "categories", "totals", "months"],
)


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise ToolError("the name needs at least one letter or digit")
    return slug[:MAX_NAME]


def _date(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_ms / 1000))


def balance_text(totals: dict[str, int], accounts: int) -> str:
    """The contract's text: `💰 Total Balance: $5,432.10\\nAccounts: 3\\nRetrieved with OAuth scope: …`."""
    amounts = " + ".join(format_money(v, c) for c, v in sorted(totals.items())) or format_money(0, "USD")
    return (
        f"💰 Total Balance: {amounts}\nAccounts: {accounts}\nRetrieved with OAuth scope: "
        + scopes.ACCOUNTS_READ
    )


def account_line(account: Account) -> str:
    return (
        f"• {account.name} ({account.account_type}, {account.currency}): "
        f"{format_money(account.balance, account.currency)} — id {account.account_id}"
    )


def transaction_line(tx: Transaction, names: dict[str, str]) -> str:
    return (
        f"{_date(tx.occurred_at)}  {format_money(tx.amount, tx.currency):>12}  {tx.category:<13} "
        f"{tx.description}  ({names.get(tx.account_id, tx.account_id)})"
    )


def spending_json(first: str, last: str, categories: list[Any], months: Sequence[Any] = ()) -> dict[str, Any]:
    """The report: by category, totals per currency, and by month (each month with spending, per
    currency, oldest first: what the spending view draws over time)."""
    totals: dict[str, int] = {}
    for entry in categories:
        totals[entry.currency] = totals.get(entry.currency, 0) + entry.spent
    return {
        "first_month": first,
        "last_month": last,
        "categories": [
            {
                "category": e.category,
                "currency": e.currency,
                "spent": to_decimal_string(e.spent, e.currency),
                "spent_minor": e.spent,
                "count": e.count,
            }
            for e in categories
        ],
        "totals": [{"currency": c, "amount": to_decimal_string(v, c)} for c, v in sorted(totals.items())],
        "months": [
            {
                "month": m.month,
                "currency": m.currency,
                "spent": to_decimal_string(m.spent, m.currency),
                "spent_minor": m.spent,
                "count": m.count,
            }
            for m in months
        ],
    }


def spending_text(report: dict[str, Any]) -> str:
    period = (
        report["first_month"]
        if report["first_month"] == report["last_month"]
        else (f"{report['first_month']} to {report['last_month']}")
    )
    if not report["categories"]:
        return f"📊 No spending recorded for {period}."
    lines = [f"📊 Spending by category, {period}:"]
    for entry in report["categories"]:
        minor = entry["spent_minor"]
        lines.append(
            f"• {entry['category']}: {format_money(minor, entry['currency'])} ({entry['count']} transactions)"
        )
    totals = ", ".join(
        format_money(
            sum(e["spent_minor"] for e in report["categories"] if e["currency"] == t["currency"]),
            t["currency"],
        )
        for t in report["totals"]
    )
    lines.append(f"Total: {totals}")
    return "\n".join(lines)


def wallet_tools(
    service: WalletService,
    store: WalletStore,
    owners: OwnerResolver,
    *,
    threshold: Callable[[str], int] = lambda _owner: 0,
    confirm_new_accounts: bool = False,
) -> list[ToolSpec[Any]]:
    """The wallet tools, each bound to the service and to the caller's wallet owner. `threshold`:
    the owner's effective "confirm debits over" in US cents (0, the default: every debit);
    `confirm_new_accounts`: an administrator requires the person's confirmation for createAccount
    too (`RequireCreateAccountConfirmation`)."""
    saved = SavedReports(store)

    def bound(run: Callable[[str, ArgsT], ToolOutcome]) -> Callable[[AccessToken, ArgsT], ToolOutcome]:
        def call(principal: AccessToken, args: ArgsT) -> ToolOutcome:
            try:
                return run(owners.owner_of(principal), args)
            except WalletError as exc:
                raise ToolError(exc.message, reason=_reason(exc)) from exc

        return call

    def get_total_balance(owner: str, _: NoArgs) -> ToolOutcome:
        balance = service.total_balance(owner)
        return ToolOutcome(
            text=balance_text(balance.totals, balance.accounts),
            structured={
                "totals": [
                    {"currency": c, "amount": to_decimal_string(v, c)}
                    for c, v in sorted(balance.totals.items())
                ],
                "accounts": balance.accounts,
                "scope": scopes.ACCOUNTS_READ,
            },
        )

    def get_user_accounts(owner: str, _: NoArgs) -> ToolOutcome:
        accounts = service.accounts(owner)
        text = f"{len(accounts)} account{'s' if len(accounts) != 1 else ''}"
        text += ":\n" + "\n".join(account_line(a) for a in accounts) if accounts else ""
        return ToolOutcome(text=text, structured={"accounts": [a.to_json() for a in accounts]})

    def get_recent_transactions(owner: str, args: RecentTransactionsArgs) -> ToolOutcome:
        page = service.recent_transactions(
            owner, limit=args.limit, cursor=args.cursor, account_id=args.accountId
        )
        names = {a.account_id: a.name for a in service.accounts(owner)} if page.transactions else {}
        if page.transactions:
            text = "\n".join(transaction_line(t, names) for t in page.transactions)
            if page.next_cursor:
                text += f"\n(more: call again with cursor {page.next_cursor})"
        else:
            text = "No transactions."
        return ToolOutcome(
            text=text,
            structured={
                "transactions": [t.to_json() for t in page.transactions],
                "next_cursor": page.next_cursor,
            },
        )

    def create_account(owner: str, args: CreateAccountArgs) -> ToolOutcome:
        if args.currency not in CURRENCIES:
            raise ToolError(
                f"unsupported currency {args.currency}; use one of {', '.join(sorted(CURRENCIES))}"
            )
        account = service.create_account(
            owner,
            name=args.name,
            account_type=args.type,
            currency=args.currency,
            opening_balance=_amount(args.openingBalance),
            idempotency_key=args.idempotencyKey,
        )
        return _opened(account)

    def propose_account(principal: AccessToken, args: CreateAccountArgs) -> Proposal | None:
        """With the administrator's rule, a new account waits for the person's confirmation."""
        if not confirm_new_accounts:
            return None
        if args.currency not in CURRENCIES:
            raise ToolError(
                f"unsupported currency {args.currency}; use one of {', '.join(sorted(CURRENCIES))}"
            )
        try:
            owner = owners.owner_of(principal)
            drafted = service.draft_account(
                name=args.name,
                account_type=args.type,
                currency=args.currency,
                opening_balance=_amount(args.openingBalance),
            )
        except WalletError as exc:
            raise ToolError(exc.message, reason=_reason(exc)) from exc
        operation = Operation(
            tool="createAccount",
            account_id=drafted.account_id,
            account_name=drafted.name,
            amount_minor=drafted.balance,
            currency=drafted.currency,
            category=drafted.account_type,
            description=f"Open a new {drafted.account_type} account",
            occurred_at=None,
        )

        def execute(authorised_by: Sequence[dict[str, Any]]) -> ToolOutcome:
            try:
                account = service.open_account(
                    owner, drafted, idempotency_key=args.idempotencyKey, authorised_by=authorised_by
                )
            except WalletError as exc:
                raise ToolError(exc.message, reason=_reason(exc)) from exc
            return _opened(account)

        return Proposal(owner=owner, operation=operation, transaction_id=drafted.account_id, execute=execute)

    def draft(owner: str, args: CreateTransactionArgs) -> Draft:
        return service.draft_transaction(
            owner,
            account_id=args.accountId,
            amount=_amount(args.amount),
            category=args.category,
            description=args.description,
            occurred_at=args.occurredAt,
        )

    def record(
        owner: str, drafted: Draft, args: CreateTransactionArgs, authorised_by: Sequence[dict[str, Any]] = ()
    ) -> ToolOutcome:
        try:
            tx, account = service.record(
                owner, drafted, idempotency_key=args.idempotencyKey, authorised_by=authorised_by
            )
        except WalletError as exc:
            raise ToolError(exc.message, reason=_reason(exc)) from exc
        return _recorded(tx, account)

    def create_transaction(owner: str, args: CreateTransactionArgs) -> ToolOutcome:
        # no confirmation needed (a credit), or a surface without one (the stdio bridge, whose
        # Backend API answers for itself): the service as it always was
        tx, account = service.create_transaction(
            owner,
            account_id=args.accountId,
            amount=_amount(args.amount),
            category=args.category,
            description=args.description,
            occurred_at=args.occurredAt,
            idempotency_key=args.idempotencyKey,
        )
        return _recorded(tx, account)

    def propose_transaction(principal: AccessToken, args: CreateTransactionArgs) -> Proposal | None:
        """A debit waits for the person's confirmation (a credit moves no money out)."""
        try:
            owner = owners.owner_of(principal)
            drafted = draft(owner, args)
        except WalletError as exc:
            raise ToolError(exc.message, reason=_reason(exc)) from exc
        tx = drafted.tx
        over = service.over_cap(owner, drafted)
        if over is not None and not service.asks_over_cap():
            # the person's cap: refused before asking them anything
            raise ToolError(over.message, reason=_reason(over))
        if over is None and not needs_confirmation(
            tx.amount, tx.currency, threshold_minor=threshold(owner) if tx.amount < 0 else 0
        ):
            return None
        if not owners.may_debit(principal):
            raise ToolError(
                "This application acts without a person (client credentials) and may not move money "
                "unless an administrator allows it; nothing was recorded.",
                reason="refused_machine_client",
            )
        operation = Operation.transaction(drafted)
        return Proposal(
            owner=owner,
            operation=operation,
            transaction_id=tx.transaction_id,
            execute=lambda authorised_by: record(owner, drafted, args, authorised_by),
        )

    def get_spending_analytics(owner: str, args: SpendingArgs) -> ToolOutcome:
        spending = service.spending(owner, args.period)
        report = spending_json(
            spending.first_month, spending.last_month, spending.categories, spending.months
        )
        return ToolOutcome(text=spending_text(report), structured=report)

    def save_report(owner: str, args: SaveReportArgs) -> ToolOutcome:
        spending = service.spending(owner, args.period)
        report = spending_json(
            spending.first_month, spending.last_month, spending.categories, spending.months
        )
        slug = slugify(args.name)
        saved.save(owner, slug, args.name, {"period": args.period, **report})
        return ToolOutcome(
            text=f"📌 Saved report “{args.name}” as resource wallet://reports/{slug}",
            structured={"uri": f"wallet://reports/{slug}", "name": args.name, "report": report},
        )

    def delete_report(owner: str, args: DeleteReportArgs) -> ToolOutcome:
        if not saved.delete(owner, args.slug):
            raise ToolError(f"no saved report {args.slug!r}")
        return ToolOutcome(text=f"🗑️ Deleted wallet://reports/{args.slug}", structured={"deleted": args.slug})

    return [
        ToolSpec(
            name="getTotalBalance",
            title="Total balance",
            description="Total balance across all of the user's accounts, with the number of accounts.",
            arguments=NoArgs,
            run=bound(get_total_balance),
            scopes=(scopes.ACCOUNTS_READ,),
            output_schema=_schema(
                {
                    "totals": {"type": "array", "items": _MONEY},
                    "accounts": {"type": "integer"},
                    "scope": {"type": "string"},
                },
                ["totals", "accounts", "scope"],
            ),
            meta=apps.tool_meta(apps.BALANCES),
        ),
        ToolSpec(
            name="getUserAccounts",
            title="Accounts",
            description="The user's accounts with their type, currency, balance and id.",
            arguments=NoArgs,
            run=bound(get_user_accounts),
            scopes=(scopes.ACCOUNTS_READ,),
            output_schema=_schema({"accounts": {"type": "array", "items": _ACCOUNT}}, ["accounts"]),
            meta=apps.tool_meta(apps.BALANCES),
        ),
        ToolSpec(
            name="getRecentTransactions",
            title="Recent transactions",
            description=(
                "The user's most recent transactions, newest first; optionally of one account. "
                "Pass next_cursor back as cursor for older ones."
            ),
            arguments=RecentTransactionsArgs,
            run=bound(get_recent_transactions),
            scopes=(scopes.TRANSACTIONS_READ,),
            output_schema=_schema(
                {
                    "transactions": {"type": "array", "items": _TRANSACTION},
                    "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                ["transactions", "next_cursor"],
            ),
            meta=apps.tool_meta(apps.TRANSACTIONS),
        ),
        ToolSpec(
            name="createAccount",
            title="Create account",
            description="Open a new account in the user's wallet with an optional opening balance.",
            arguments=CreateAccountArgs,
            run=bound(create_account),
            propose=propose_account,
            scopes=(scopes.ACCOUNTS_WRITE,),
            read_only=False,
            destructive=False,
            idempotent=False,
            output_schema=_schema({"account": _ACCOUNT}, ["account"]),
        ),
        ToolSpec(
            name="createTransaction",
            title="Record transaction",
            description=(
                "Record a transaction in one of the user's accounts (negative amount for spending, "
                "positive for income); the account's balance changes with it. Spending needs the "
                "person's confirmation in their browser: the call then answers with a URL to open, "
                "and the same call afterwards records it."
            ),
            arguments=CreateTransactionArgs,
            run=bound(create_transaction),
            propose=propose_transaction,
            scopes=(scopes.TRANSACTIONS_WRITE,),
            read_only=False,
            destructive=False,
            idempotent=False,
            output_schema=_schema(
                {"transaction": _TRANSACTION, "account": _ACCOUNT}, ["transaction", "account"]
            ),
        ),
        ToolSpec(
            name="getSpendingAnalytics",
            title="Spending analytics",
            description=(
                "How much the user spent, by category, over a period "
                "(transfers between the user's own accounts are not spending)."
            ),
            arguments=SpendingArgs,
            run=bound(get_spending_analytics),
            scopes=(scopes.ANALYTICS_READ,),
            output_schema=_SPENDING,
            meta=apps.tool_meta(apps.SPENDING),
        ),
        ToolSpec(
            name="saveSpendingReport",
            title="Save spending report",
            description=(
                "Save the spending analytics of a period as a named resource (wallet://reports/<slug>) "
                "the user can read again later. Saving under the same name replaces the report."
            ),
            arguments=SaveReportArgs,
            run=bound(save_report),
            scopes=(scopes.RESOURCES_WRITE, scopes.ANALYTICS_READ),
            read_only=False,
            destructive=True,
            idempotent=True,
            output_schema=_schema(
                {"uri": {"type": "string"}, "name": {"type": "string"}, "report": _SPENDING},
                ["uri", "name", "report"],
            ),
        ),
        ToolSpec(
            name="deleteSpendingReport",
            title="Delete spending report",
            description="Delete a saved report resource (wallet://reports/<slug>).",
            arguments=DeleteReportArgs,
            run=bound(delete_report),
            scopes=(scopes.RESOURCES_WRITE,),
            read_only=False,
            destructive=True,
            idempotent=True,
            output_schema=_schema({"deleted": {"type": "string"}}, ["deleted"]),
        ),
    ]


def _opened(account: Account) -> ToolOutcome:
    return ToolOutcome(
        text=(
            f"✅ Created {account.account_type} account “{account.name}” ({account.currency}) "
            f"with balance {format_money(account.balance, account.currency)} — id {account.account_id}"
        ),
        structured={"account": account.to_json()},
    )


def _reason(exc: WalletError) -> str:
    """The audit's decision for a refusal (`mcp_server/tool_audit.py`)."""
    if isinstance(exc, LimitRefused):
        return f"refused_{exc.reason}"
    if isinstance(exc, ConfirmationRefused):
        return "refused_confirmation"
    return "refused"


def _recorded(tx: Transaction, account: Account) -> ToolOutcome:
    return ToolOutcome(
        text=(
            f"✅ Recorded {format_money(tx.amount, tx.currency)} ({tx.category}) in {account.name}: "
            f"“{tx.description}”. New balance: {format_money(account.balance, account.currency)}"
        ),
        structured={"transaction": tx.to_json(), "account": account.to_json()},
    )


def _amount(value: str | int | float) -> str:
    """A JSON number through its shortest round-trip text (what the client wrote), never float math."""
    if isinstance(value, bool):
        raise ToolError("amount must be a decimal number")
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
