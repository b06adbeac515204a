"""The Lambda adapter of every function: Mangum, with API Gateway HTTP API events read safely.

Mangum splits the `Host` header on ":" to fill the ASGI `server` pair, so an IPv6 literal
(`[::1]:3000`) or a port that is not a number raised before the app saw the request: a 500 for a
header the client controls. Here `server` is parsed with the standard library and a host that is
not one falls back to no port; the header itself reaches the app unchanged, where the MCP endpoint's
DNS-rebinding check (and Starlette's URL building) decide what to do with it.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from mangum import Mangum
from mangum.handlers.api_gateway import HTTPGateway
from mangum.types import ASGI, Scope

from wallet_mcp.config import settings
from wallet_mcp.web.edge import EdgeOnly

_PARSED_BY_MANGUM: Final = {"host": "localhost", "x-forwarded-port": "443"}
"""Headers Mangum parses as numbers or "name:port" pairs: it is given these stand-ins, and the app
gets the values as sent."""


class _HttpApi(HTTPGateway):
    @property
    def scope(self) -> Scope:
        headers = self.event.get("headers") or {}
        original = self.event
        self.event = {**original, "headers": {**headers, **_PARSED_BY_MANGUM}}
        try:
            scope: Scope = super().scope
        finally:
            self.event = original
        sent = {name.encode(): headers[name] for name in _PARSED_BY_MANGUM if name in headers}
        scope["headers"] = [
            [name, sent[name].encode("latin-1", "replace")] if name in sent else [name, value]
            for name, value in scope["headers"]
            if name in sent or name.decode() not in _PARSED_BY_MANGUM
        ]
        scope["server"] = server_of(headers.get("host"))
        return scope


def server_of(host: str | None) -> tuple[str, int]:
    """The (name, port) an ASGI scope's `server` holds for a `Host` header (port 443 when absent:
    API Gateway is https); ("", 443) for a header that is not a host."""
    try:
        parts = urlsplit(f"//{host or ''}")
        return (parts.hostname or "", parts.port or 443)
    except ValueError:
        return ("", 443)


def lambda_adapter(app: ASGI) -> Any:
    """`app` as a Lambda handler (no lifespan: each function builds what it needs at import).
    Behind the optional CloudFront distribution (`EDGE_ORIGIN_SECRET` set), only requests that
    carry its origin secret reach `app` (`web/edge.py`)."""
    config = settings()
    if config.edge_origin_secret:
        app = EdgeOnly(app, config.edge_origin_secret, urlsplit(config.issuer).netloc)
    return Mangum(app, lifespan="off", custom_handlers=[_HttpApi])
