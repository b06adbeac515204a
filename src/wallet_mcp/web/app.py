"""The FastAPI application the functions with FastAPI routes start from (all but MCP)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse

from wallet_mcp.web.asgi import ANY_ORIGIN, harden
from wallet_mcp.web.errors import validation_error_response

__all__ = ["ANY_ORIGIN", "create_app"]


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_error_response(exc.errors())


def create_app(
    title: str,
    *,
    realm: str,
    openapi: bool = False,
    cors_origins: Sequence[str] = (),
    cors_methods: Sequence[str] = ("GET", "POST"),
) -> FastAPI:
    """A FastAPI app with the shared error handling and headers (`web.asgi.harden`); interactive
    docs only where asked for; a request FastAPI cannot parse is a 400 `invalid_request`."""
    app = FastAPI(
        title=title,
        openapi_url="/api/openapi.json" if openapi else None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    harden(app, realm=realm, cors_origins=cors_origins, cors_methods=cors_methods)
    return app
