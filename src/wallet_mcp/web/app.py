"""The FastAPI application every function starts from."""

from __future__ import annotations

from fastapi import FastAPI

from wallet_mcp.web.errors import install_error_handlers


def create_app(title: str, *, realm: str, openapi: bool = False) -> FastAPI:
    """A FastAPI app with the shared error handling; interactive docs only where asked for."""
    app = FastAPI(
        title=title,
        openapi_url="/api/openapi.json" if openapi else None,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app, realm=realm)
    return app
