"""The wallet Backend API over HTTP, as the bridge's `WalletService`.

Every request carries `Authorization: Bearer` from the token source (RFC 6750 §2.1), or, with
DPoP-bound tokens, `Authorization: DPoP` and a proof (RFC 9449 §7, `cli.dpop`). A 401 gets
one more try with a token the source obtains anew (an expiry the clock did not foresee, a key
rotation, a revocation); a second 401 is a clear failure, never a loop. Other 4xx answers become
`WalletError`s carrying the API's `error_description`, which the remote tools' own code turns
into tool results with `isError`. Timeouts are bounded (`CliSettings.http_timeout`: 15 s, or
`WALLET_MCP_HTTP_TIMEOUT`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

import httpx2
import jwt

from wallet_mcp.cli import dpop as dpop_client
from wallet_mcp.cli import wallet_json
from wallet_mcp.cli.errors import ServiceError
from wallet_mcp.cli.http_client import error_fields, network_reason
from wallet_mcp.cli.token_sources import TokenSource
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.grant_limits import GrantView
from wallet_mcp.wallet.model import Account, Page, Transaction
from wallet_mcp.wallet.money import to_decimal_string
from wallet_mcp.wallet.service import (
    Balance,
    ConfirmationRefused,
    Draft,
    LimitRefused,
    Spending,
    WalletError,
    WalletService,
)

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class ApiRefused(WalletError):
    """A 4xx answer of the API: its status, `error` code and `error_description`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class BackendApi:
    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        http: httpx2.Client,
        dpop: dpop_client.DpopSession | None = None,
    ) -> None:
        """`dpop`: the tokens are DPoP-bound; each request carries `Authorization: DPoP` and a
        proof (RFC 9449 §7), once more with the API's nonce when it asks for one."""
        self.base_url = base_url
        self.tokens = tokens
        self._http = http
        self._dpop = dpop

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        return self._body(self.authorized("GET", path, params=params))

    def post(self, path: str, body: dict[str, Any], idempotency_key: str | None = None) -> Any:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._body(self.authorized("POST", path, json=body, headers=headers))

    def authorized(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        """The API's answer to a request with the current token (and one fresh one after a 401)."""
        token = self.tokens.token()
        response = self._send(method, path, token, params, json, headers)
        if response.status_code == 401 and self.tokens.refreshable:
            logger.info("the wallet API refused the access token; requesting a new one")
            self.tokens.invalidate(token)
            response = self._send(method, path, self.tokens.token(), params, json, headers)
        if response.status_code == 401:
            _, description = error_fields(response)
            raise ServiceError(
                f"the wallet API refused the access token ({description}); {self.tokens.rejected_hint()}"
            )
        return response

    def _send(
        self,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, str | int] | None,
        json: dict[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx2.Response:
        started = time.monotonic()
        url = self.base_url + path
        try:
            if self._dpop is not None:
                response = dpop_client.send(
                    self._http,
                    self._dpop,
                    method,
                    url,
                    access_token=token,
                    params=params,
                    json=json,
                    headers={"Accept": "application/json", **(headers or {})},
                )
            else:
                response = self._http.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers={
                        "Accept": "application/json",
                        **(headers or {}),
                        "Authorization": f"Bearer {token}",
                    },
                )
        except httpx2.HTTPError as exc:
            raise ServiceError(
                f"cannot reach the wallet API at {self.base_url}: {network_reason(exc)}"
            ) from exc
        elapsed = (time.monotonic() - started) * 1000
        logger.debug("%s %s -> %d (%.0f ms)", method, path, response.status_code, elapsed)
        return response

    @staticmethod
    def _body(response: httpx2.Response) -> Any:
        if 400 <= response.status_code < 500:
            code, description = error_fields(response)
            raise ApiRefused(response.status_code, code, description)
        if response.status_code >= 300:
            raise ServiceError(f"the wallet API failed (HTTP {response.status_code}); try again later")
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceError("the wallet API answered something other than JSON") from exc

    def who(self) -> AccessToken:
        """Check that the API accepts our token, and describe the token (for `ping`).

        `GET /api/balance` is the probe: 200, or 403 for a token without that scope or without a
        wallet, both prove the token is valid. The claims are read unverified, for display only:
        the API, not this process, decides what the token is worth.
        """
        response = self.authorized("GET", "/api/balance")
        if response.status_code not in (200, 403):
            self._body(response)
        token = self.tokens.token()
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            claims = {}
        return AccessToken(
            subject=str(claims.get("sub") or "the token's user"),
            client_id=str(claims.get("client_id") or self.tokens.describe()),
            scopes=frozenset(str(claims.get("scope") or "").split()),
            audience=str(claims.get("aud") or self.base_url),
            issued_at=int(claims.get("iat") or 0),
            expires_at=int(claims.get("exp") or 0),
            jti=str(claims.get("jti") or ""),
        )


def _as_wallet_errors(call: Callable[P, R]) -> Callable[P, R]:
    """A remote failure becomes a `WalletError`, which the tools answer with `isError`."""

    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return call(*args, **kwargs)
        except WalletError:
            raise
        except ServiceError as exc:
            raise WalletError(exc.message) from exc

    return wrapped


class HttpWallet(WalletService):
    """`WalletService` with every use case answered by the Backend API instead of DynamoDB.

    The owner argument is ignored: the API takes the wallet owner from the token, never from
    input. Every public method of `WalletService` is overridden (a test checks it), so none can
    fall through to the store this object does not have.
    """

    def __init__(self, api: BackendApi, clock: Callable[[], float] = time.time) -> None:
        self._api = api  # no store: nothing reaches DynamoDB from here
        self._clock = clock  # drafts are dated as the service dates them
        self._view = lambda: None  # the Backend API applies the grant's limits itself

    def scoped(self, view: GrantView | None) -> WalletService:
        """The Backend API knows the token's grant and applies its limits: nothing to add."""
        return self

    def over_cap(self, owner: str, draft: Draft) -> LimitRefused | None:
        """Caps are the Backend API's to check (it refuses the debit itself)."""
        return None

    def asks_over_cap(self) -> bool:
        return False

    @_as_wallet_errors
    def accounts(self, owner: str) -> list[Account]:
        return wallet_json.accounts(self._api.get("/api/accounts"))

    @_as_wallet_errors
    def account(self, owner: str, account_id: str) -> Account:
        return wallet_json.account(self._api.get(f"/api/accounts/{quote(account_id, safe='')}"))

    @_as_wallet_errors
    def total_balance(self, owner: str) -> Balance:
        return wallet_json.balance(self._api.get("/api/balance"))

    @_as_wallet_errors
    def recent_transactions(
        self, owner: str, *, limit: int = 20, cursor: str | None = None, account_id: str | None = None
    ) -> Page:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        if account_id is not None:
            params["account_id"] = account_id
        return wallet_json.page(self._api.get("/api/transactions", params))

    @_as_wallet_errors
    def spending(self, owner: str, period: str) -> Spending:
        return wallet_json.spending(self._api.get("/api/analytics/spending", {"period": period}))

    @_as_wallet_errors
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
        body = {
            "name": name,
            "type": account_type,
            "currency": currency,
            "opening_balance": str(opening_balance),
        }
        return wallet_json.account(self._api.post("/api/accounts", body, idempotency_key))

    def draft_account(
        self, *, name: str, account_type: str, currency: str, opening_balance: str | int = "0"
    ) -> Account:
        """The service's own validation (nothing to read)."""
        return super().draft_account(
            name=name, account_type=account_type, currency=currency, opening_balance=opening_balance
        )

    def open_account(
        self,
        owner: str,
        account: Account,
        *,
        idempotency_key: str | None = None,
        authorised_by: Sequence[dict[str, Any]] = (),
    ) -> Account:
        """The drafted account, opened by the Backend API; a confirmation cannot ride along (see
        `record`), so one is refused, never dropped."""
        if authorised_by:
            raise ConfirmationRefused(
                "a confirmed operation is recorded by the MCP server, not through the Backend API; "
                "nothing was created"
            )
        return self.create_account(
            owner,
            name=account.name,
            account_type=account.account_type,
            currency=account.currency,
            opening_balance=to_decimal_string(account.balance, account.currency),
            idempotency_key=idempotency_key,
        )

    @_as_wallet_errors
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
        body: dict[str, Any] = {
            "account_id": account_id,
            "amount": str(amount),
            "category": category,
            "description": description,
        }
        if occurred_at is not None:
            body["occurred_at"] = occurred_at
        return wallet_json.created_transaction(self._api.post("/api/transactions", body, idempotency_key))

    @_as_wallet_errors
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
        """The service's own validation, against the account as the Backend API returns it."""
        return super().draft_transaction(
            owner,
            account_id=account_id,
            amount=amount,
            category=category,
            description=description,
            occurred_at=occurred_at,
        )

    def record(
        self,
        owner: str,
        draft: Draft,
        *,
        idempotency_key: str | None = None,
        authorised_by: Sequence[dict[str, Any]] = (),
    ) -> tuple[Transaction, Account]:
        """The drafted transaction, recorded by the Backend API. A confirmation to spend with it
        cannot ride along (the API commits its own transaction), so one is refused, never dropped:
        the confirmation path (`mcp_server/confirmation.py`) runs beside DynamoDB only."""
        if authorised_by:
            raise ConfirmationRefused(
                "a confirmed operation is recorded by the MCP server, not through the Backend API; "
                "nothing was recorded"
            )
        tx = draft.tx
        return self.create_transaction(
            owner,
            account_id=tx.account_id,
            amount=to_decimal_string(tx.amount, tx.currency),
            category=tx.category,
            description=tx.description,
            occurred_at=draft.occurred_at,
            idempotency_key=idempotency_key,
        )
