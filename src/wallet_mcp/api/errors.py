"""The API's own exceptions turned into responses by the shared renderers of `web/errors.py`.

A `BearerChallenge` answers with its RFC 6750 §3 `WWW-Authenticate` header; a `WalletError` with
its own status and code, in the one error body every endpoint uses.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from wallet_mcp.api.confirmations import ConfirmationRequired
from wallet_mcp.resource.authenticate import BearerChallenge
from wallet_mcp.wallet.service import WalletError
from wallet_mcp.web.errors import NO_STORE, challenge_response, error_response


def install_api_error_handlers(app: FastAPI) -> None:
    async def on_challenge(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BearerChallenge)
        return challenge_response(exc.challenge)

    async def on_wallet_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WalletError)
        if isinstance(exc, ConfirmationRequired):
            # the one error body, with where the person confirms and the operation's id
            return JSONResponse(exc.body(), status_code=exc.status, headers=NO_STORE)
        return error_response(exc.status, exc.code, exc.message)

    app.add_exception_handler(BearerChallenge, on_challenge)
    app.add_exception_handler(WalletError, on_wallet_error)
