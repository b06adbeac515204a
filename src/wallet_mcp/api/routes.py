"""The wallet Backend API: REST routes over `WalletService`, each declaring the scopes it needs.

Every answer is JSON with `Cache-Control: no-store` (balances are personal data); money is an exact
decimal string next to its integer minor units. Bodies over `MAX_BODY_BYTES` are refused (413)
before they are parsed, and validation happens before anything is written. Creates accept an
`Idempotency-Key` header: the same key and body replays the first result, another body is 409.

No `from __future__ import annotations` here: FastAPI resolves string annotations against the
module's globals only, and each route's security dependency is the `BearerAuth` given to
`api_router`.
"""

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, HTTPException, Query, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes
from starlette.concurrency import run_in_threadpool

from wallet_mcp.api.auth import BearerAuth, Caller, authenticated_nonce
from wallet_mcp.api.confirmations import DebitConfirmations
from wallet_mcp.api.schemas import (
    AccountOut,
    AccountsOut,
    BalanceOut,
    CreatedTransaction,
    ErrorBody,
    NewAccount,
    NewTransaction,
    SpendingOut,
    TransactionsOut,
)
from wallet_mcp.primitives.scopes import (
    ACCOUNTS_READ,
    ACCOUNTS_WRITE,
    ANALYTICS_READ,
    SCOPE_DESCRIPTIONS,
    TRANSACTIONS_READ,
    TRANSACTIONS_WRITE,
)
from wallet_mcp.wallet.model import Page
from wallet_mcp.wallet.money import format_money, to_decimal_string
from wallet_mcp.wallet.service import MAX_PAGE, PERIODS, WalletService
from wallet_mcp.web.errors import NO_STORE

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 16 * 1024
"""A wallet request is a few hundred bytes; anything much larger is refused unparsed."""

ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    400: {"model": ErrorBody, "description": "`invalid_request`: the field and the problem"},
    401: {
        "model": ErrorBody,
        "description": "No bearer token, or `invalid_token` (malformed, expired, revoked, or issued for "
        "another resource); with a `WWW-Authenticate: Bearer` challenge naming the resource metadata",
    },
    403: {
        "model": ErrorBody,
        "description": "`insufficient_scope` (the challenge's `scope` names what the operation needs) or "
        "`access_denied` (a client-credentials token of a client that acts for no user)",
    },
    # "4XX" also keeps FastAPI from advertising a 422 this API never sends (it answers 400)
    "4XX": {"model": ErrorBody, "description": "`not_found` (404), `conflict` (409), body too large (413)"},
}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:\-]{8,128}$",
        description="8-128 of letters, digits and `._:-`; the same key and body within 24 h creates once",
    ),
]
ConfirmationId = Annotated[
    str | None,
    Header(
        alias="Confirmation-Id",
        min_length=8,
        max_length=64,
        pattern=r"^op_[A-Za-z0-9_\-]{5,61}$",
        description=(
            "The `operation_id` of a `confirmation_required` answer, when the deployment asks the "
            "person to confirm debits: the retry then names the operation the person approved"
        ),
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size, 1-{MAX_PAGE}")]
Cursor = Annotated[str | None, Query(max_length=256, description="The `next_cursor` of the previous page")]
SpendingPeriod = Annotated[
    str,
    Query(
        max_length=32,
        description=f"One of {', '.join(PERIODS)}, a month `YYYY-MM`, or a range `YYYY-MM..YYYY-MM`",
    ),
]


def _needs(scope: str) -> str:
    return f"Requires the scope `{scope}` ({SCOPE_DESCRIPTIONS[scope].lower()})."


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def _page(page: Page) -> JSONResponse:
    return _json({"transactions": [t.to_json() for t in page.transactions], "next_cursor": page.next_cursor})


class BoundedBodyRoute(APIRoute):
    """A route that refuses a body over `MAX_BODY_BYTES` with a 413 before parsing it, and checks
    the bearer token before it reports a body that is not JSON.

    Rather than FastAPI's `max_body_size`, whose 413 is plain text without `no-store` when the
    request declares a Content-Length: this one goes through the shared JSON error handler. Under
    Lambda the body is in memory already (API Gateway buffers it), so reading it costs nothing.

    FastAPI decodes a JSON body before it runs the route's dependencies, so a malformed body would
    be answered 400 before the security dependency could answer 401/403. RFC 6750 wants the
    challenge first for a request that is not authorised, whatever else is wrong with it: here
    the route's own `BearerAuth`, with the route's scopes, runs first for such a body (for any
    other request it runs once, as the route's dependency).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        requirement = _bearer_requirement(self.dependant)

        async def bounded(request: Request) -> Response:
            declared = request.headers.get("content-length", "")
            too_large = declared.isdigit() and int(declared) > MAX_BODY_BYTES
            body = b"" if too_large else await request.body()
            if too_large or len(body) > MAX_BODY_BYTES:
                raise HTTPException(413, f"the request body must be at most {MAX_BODY_BYTES} bytes")
            if requirement is not None and body and not _is_json(body):
                auth, scopes = requirement
                await run_in_threadpool(auth, request, SecurityScopes(scopes))  # raises its challenge
            response = await handler(request)
            nonce = authenticated_nonce(request)
            if nonce is not None:
                response.headers["DPoP-Nonce"] = nonce  # RFC 9449 §8.2: the nonce to use next
            return response

        return bounded


def _bearer_requirement(dependant: Dependant) -> tuple[BearerAuth, list[str]] | None:
    """The route's `Security(auth, scopes=...)` dependency: the `BearerAuth` and its scopes."""
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, BearerAuth):
            return dependency.call, [
                *(dependency.parent_oauth_scopes or []),
                *(dependency.own_oauth_scopes or []),
            ]
    return None


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return False
    return True


def api_router(
    wallet: WalletService, auth: BearerAuth, debits: DebitConfirmations | None = None
) -> APIRouter:
    """`debits`: the person's confirmation of debits (None: recorded on the token alone)."""
    router = APIRouter(
        prefix="/api", tags=["wallet"], responses=ERROR_RESPONSES, route_class=BoundedBodyRoute
    )
    accounts_read = Annotated[Caller, Security(auth, scopes=[ACCOUNTS_READ])]
    accounts_write = Annotated[Caller, Security(auth, scopes=[ACCOUNTS_WRITE])]
    transactions_read = Annotated[Caller, Security(auth, scopes=[TRANSACTIONS_READ])]
    transactions_write = Annotated[Caller, Security(auth, scopes=[TRANSACTIONS_WRITE])]
    analytics_read = Annotated[Caller, Security(auth, scopes=[ANALYTICS_READ])]

    def _of(caller: Caller) -> WalletService:
        """The wallet within the limits the person chose for the calling application."""
        return wallet.scoped(caller.view)

    @router.get(
        "/balance",
        operation_id="getTotalBalance",
        summary="Total balance per currency",
        description=_needs(ACCOUNTS_READ),
        response_model=BalanceOut,
    )
    def total_balance(caller: accounts_read) -> JSONResponse:
        balance = _of(caller).total_balance(caller.owner)
        totals = [
            {
                "currency": currency,
                "amount": to_decimal_string(minor, currency),
                "amount_minor": minor,
                "formatted": format_money(minor, currency),
            }
            for currency, minor in sorted(balance.totals.items())
        ]
        return _json({"totals": totals, "accounts": balance.accounts})

    @router.get(
        "/accounts",
        operation_id="getUserAccounts",
        summary="Every account, oldest first",
        description=_needs(ACCOUNTS_READ),
        response_model=AccountsOut,
    )
    def accounts(caller: accounts_read) -> JSONResponse:
        return _json({"accounts": [a.to_json() for a in _of(caller).accounts(caller.owner)]})

    @router.get(
        "/accounts/{account_id}",
        operation_id="getAccount",
        summary="One account",
        description=_needs(ACCOUNTS_READ),
        response_model=AccountOut,
    )
    def account(caller: accounts_read, account_id: str) -> JSONResponse:
        return _json(_of(caller).account(caller.owner, account_id).to_json())

    @router.post(
        "/accounts",
        status_code=201,
        operation_id="createAccount",
        summary="Open an account",
        description=_needs(ACCOUNTS_WRITE),
        response_model=AccountOut,
    )
    def create_account(
        caller: accounts_write,
        payload: NewAccount,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        created = _of(caller).create_account(
            caller.owner,
            name=payload.name,
            account_type=payload.type,
            currency=payload.currency,
            opening_balance=payload.opening_balance,
            idempotency_key=idempotency_key,
        )
        logger.info("account created", extra={"account_id": created.account_id})
        return _json(created.to_json(), 201, {"Location": f"/api/accounts/{created.account_id}"})

    @router.get(
        "/transactions",
        operation_id="getRecentTransactions",
        summary="Transactions, newest first, a page at a time",
        description=_needs(TRANSACTIONS_READ),
        response_model=TransactionsOut,
    )
    def transactions(
        caller: transactions_read,
        limit: Limit = 20,
        cursor: Cursor = None,
        account_id: Annotated[str | None, Query(max_length=64, description="Only this account's")] = None,
    ) -> JSONResponse:
        return _page(
            _of(caller).recent_transactions(caller.owner, limit=limit, cursor=cursor, account_id=account_id)
        )

    @router.get(
        "/accounts/{account_id}/transactions",
        operation_id="getAccountTransactions",
        summary="One account's transactions, newest first, a page at a time",
        description=_needs(TRANSACTIONS_READ),
        response_model=TransactionsOut,
    )
    def account_transactions(
        caller: transactions_read,
        account_id: str,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> JSONResponse:
        return _page(
            _of(caller).recent_transactions(caller.owner, limit=limit, cursor=cursor, account_id=account_id)
        )

    @router.post(
        "/transactions",
        status_code=201,
        operation_id="createTransaction",
        summary="Record a transaction and update its account's balance",
        description=_needs(TRANSACTIONS_WRITE),
        response_model=CreatedTransaction,
    )
    def create_transaction(
        caller: transactions_write,
        payload: NewTransaction,
        idempotency_key: IdempotencyKey = None,
        confirmation_id: ConfirmationId = None,
    ) -> JSONResponse:
        wallet_of_caller = _of(caller)
        if debits is None:
            tx, account = wallet_of_caller.create_transaction(
                caller.owner,
                account_id=payload.account_id,
                amount=payload.amount,
                category=payload.category,
                description=payload.description,
                occurred_at=payload.occurred_at,
                idempotency_key=idempotency_key,
            )
        else:
            drafted = wallet_of_caller.draft_transaction(
                caller.owner,
                account_id=payload.account_id,
                amount=payload.amount,
                category=payload.category,
                description=payload.description,
                occurred_at=payload.occurred_at,
            )
            # a debit waits for the person's confirmation (api/confirmations.py)
            tx, account = debits.record(
                caller,
                wallet_of_caller,
                drafted,
                idempotency_key=idempotency_key,
                operation_id=confirmation_id,
            )
        logger.info(
            "transaction created", extra={"transaction_id": tx.transaction_id, "account_id": tx.account_id}
        )
        return _json({"transaction": tx.to_json(), "account": account.to_json()}, 201)

    @router.get(
        "/analytics/spending",
        operation_id="getSpendingByCategory",
        summary="Spending by category over a period",
        description=_needs(ANALYTICS_READ)
        + " Spending is money out, excluding transfers between your own accounts.",
        response_model=SpendingOut,
    )
    def spending(caller: analytics_read, period: SpendingPeriod = "this_month") -> JSONResponse:
        result = _of(caller).spending(caller.owner, period)
        totals: dict[str, tuple[int, int]] = {}
        for entry in result.categories:
            spent, count = totals.get(entry.currency, (0, 0))
            totals[entry.currency] = (spent + entry.spent, count + entry.count)
        return _json(
            {
                "period": {"first_month": result.first_month, "last_month": result.last_month},
                "categories": [
                    {
                        "category": c.category,
                        "currency": c.currency,
                        "spent": to_decimal_string(c.spent, c.currency),
                        "spent_minor": c.spent,
                        "count": c.count,
                    }
                    for c in result.categories
                ],
                "totals": [
                    {
                        "currency": currency,
                        "spent": to_decimal_string(spent, currency),
                        "spent_minor": spent,
                        "count": count,
                    }
                    for currency, (spent, count) in sorted(totals.items())
                ],
            }
        )

    return router
