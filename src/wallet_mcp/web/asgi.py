"""What every function's ASGI app shares, FastAPI or not: error handlers, `nosniff` and HSTS, CORS.

The MCP function is a bare Starlette app (its one route is the MCP SDK's transport, so FastAPI
would add nothing but ~80 ms of import to its cold start); the other functions are FastAPI apps
built by `web.app.create_app` on top of the same pieces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wallet_mcp.web.errors import install_error_handlers

ANY_ORIGIN: Final = ("*",)
"""For endpoints a browser-based MCP client calls with no ambient credentials (no cookies):
discovery, registration, token, revocation. Their answers depend only on what the request carries."""

_REQUEST_HEADERS: Final = (
    "authorization",
    "content-type",
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "idempotency-key",
    "dpop",
)
_EXPOSED_HEADERS: Final = (
    "www-authenticate",
    "mcp-session-id",
    "mcp-protocol-version",
    "retry-after",
    "location",
    "dpop-nonce",
)


class SecurityHeaders:
    """`nosniff` on every response, and HSTS when the issuer is https (RFC 6797)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self._app = app
        self._headers = [(b"x-content-type-options", b"nosniff")]
        if hsts:
            self._headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self._headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self._app(scope, receive, with_headers)


def harden(
    app: Starlette,
    *,
    realm: str,
    cors_origins: Sequence[str] = (),
    cors_methods: Sequence[str] = ("GET", "POST"),
) -> None:
    """The shared error handlers and headers; CORS (preflight answered without a token) for
    `cors_origins`."""
    install_error_handlers(app, realm=realm)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=list(cors_methods),
            allow_headers=list(_REQUEST_HEADERS),
            expose_headers=list(_EXPOSED_HEADERS),
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(SecurityHeaders, hsts=realm.startswith("https://"))


def create_plain_app(
    routes: Sequence[BaseRoute],
    *,
    realm: str,
    cors_origins: Sequence[str] = (),
    cors_methods: Sequence[str] = ("GET", "POST"),
) -> Starlette:
    """A Starlette app with the shared error handling and headers, for a function with no
    FastAPI routes."""
    app = Starlette(routes=list(routes))
    harden(app, realm=realm, cors_origins=cors_origins, cors_methods=cors_methods)
    return app
