"""Exceptions turned into responses in one place.

OAuth errors render as RFC 6749 §5.2 JSON with `Cache-Control: no-store`; a 401 carries a
`WWW-Authenticate` challenge. A failing dependency (DynamoDB, KMS) is a 503 with
`Retry-After`, never a 500 that leaks detail. Anything unexpected is logged and answered with a
bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from wallet_mcp.aws import is_transient
from wallet_mcp.observability import count
from wallet_mcp.primitives.bearer import Challenge
from wallet_mcp.primitives.errors import InvalidDpopProof, OAuthError, TemporarilyUnavailable, TooManyRequests

logger = logging.getLogger(__name__)

NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def error_response(
    status: int, error: str, description: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The one error body of every endpoint: `{"error", "error_description"}` (RFC 6749 §5.2's
    shape, which RFC 6750 §3 and the wallet API reuse), never cached."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**NO_STORE, **(headers or {})},
    )


def unavailable_response() -> JSONResponse:
    """A dependency (DynamoDB, KMS) is not answering: 503 with `Retry-After`, never a 500 (a retry
    may work, and nothing was changed: every write is one conditional request or transaction)."""
    return error_response(
        503,
        "temporarily_unavailable",
        "a dependency is temporarily unavailable; retry later",
        {"Retry-After": "1"},
    )


def challenge_response(challenge: Challenge) -> JSONResponse:
    """A protected resource's refusal (RFC 6750 §3) with its `WWW-Authenticate` challenge (and,
    for a DPoP refusal with a fresh server nonce, the `DPoP-Nonce` header: RFC 9449 §9)."""
    headers = {**NO_STORE, "WWW-Authenticate": challenge.header()}
    if challenge.dpop_nonce:
        headers["DPoP-Nonce"] = challenge.dpop_nonce
    return JSONResponse(challenge.body(), status_code=challenge.status, headers=headers)


def oauth_error_response(exc: OAuthError, *, realm: str) -> JSONResponse:
    headers = dict(NO_STORE)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{realm}", charset="UTF-8"'
    if isinstance(exc, TooManyRequests | TemporarilyUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, InvalidDpopProof) and exc.dpop_nonce:
        headers["DPoP-Nonce"] = exc.dpop_nonce  # RFC 9449 §8
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


def validation_error_response(errors: Sequence[Any]) -> JSONResponse:
    """A 400 `invalid_request` naming the first problem of a request FastAPI could not parse."""
    return error_response(400, "invalid_request", _describe_validation(errors))


def install_error_handlers(app: Starlette, *, realm: str) -> None:
    """Handlers shared by every function. FastAPI apps add the request-validation handler
    (`web.app.create_app`); this module stays free of FastAPI so the MCP function need not import it."""

    async def on_oauth_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OAuthError)
        if isinstance(exc, TooManyRequests):
            count("RateLimited", rule=exc.rule)
        else:
            count("OAuthErrors", error=exc.error)
        return oauth_error_response(exc, realm=realm)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    async def on_aws_error(_: Request, exc: Exception) -> JSONResponse:
        code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
        if not is_transient(exc):
            logger.exception("AWS call failed", extra={"aws_error": code})
            return _server_error()
        logger.warning("dependency unavailable", extra={"aws_error": code})
        count("DependencyErrors")  # by service only: what the alarm sums (the code is in the log line)
        return unavailable_response()

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return _server_error()

    app.add_exception_handler(OAuthError, on_oauth_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(ClientError, on_aws_error)
    app.add_exception_handler(BotoCoreError, on_aws_error)
    app.add_exception_handler(Exception, on_unexpected)


def _describe_validation(errors: Sequence[Any]) -> str:
    """`<field>: <problem>` for the first problem; the request part (body, query, header) left out."""
    if not errors:
        return "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "the body is not valid JSON"
    loc = [str(p) for p in first.get("loc", ())]
    if loc and loc[0] in ("body", "query", "header", "path", "cookie"):
        loc = loc[1:]
    where = ".".join(loc)
    message = str(first.get("msg", "invalid"))
    return f"{where}: {message}" if where else message


def _server_error() -> JSONResponse:
    return error_response(500, "server_error", "internal error")
