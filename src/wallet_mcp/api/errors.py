"""The API's own exceptions turned into responses, next to the shared handlers of `web/errors.py`.

A `BearerChallenge` answers with its RFC 6750 §3 `WWW-Authenticate` header; a `WalletError` with
its own status and code. Both bodies are `{"error", "error_description"}` and never cached.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from wallet_mcp.resource.authenticate import BearerChallenge
from wallet_mcp.wallet.service import WalletError
from wallet_mcp.web.errors import NO_STORE


def challenge_response(exc: BearerChallenge) -> JSONResponse:
    challenge = exc.challenge
    return JSONResponse(
        challenge.body(),
        status_code=challenge.status,
        headers={**NO_STORE, "WWW-Authenticate": challenge.header()},
    )


def wallet_error_response(exc: WalletError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.code, "error_description": exc.message}, status_code=exc.status, headers=NO_STORE
    )


def install_api_error_handlers(app: FastAPI) -> None:
    async def on_challenge(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BearerChallenge)
        return challenge_response(exc)

    async def on_wallet_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WalletError)
        return wallet_error_response(exc)

    app.add_exception_handler(BearerChallenge, on_challenge)
    app.add_exception_handler(WalletError, on_wallet_error)
