"""OAuth dynamic client registration (RFC 7591)."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from fastapi import Request
from fastapi.responses import JSONResponse

from wallet_mcp.compose import Deployment
from wallet_mcp.config import settings
from wallet_mcp.oauth.server.registration import RegistrationEndpoint
from wallet_mcp.observability import correlated, traced
from wallet_mcp.web.app import ANY_ORIGIN, create_app
from wallet_mcp.web.errors import NO_STORE
from wallet_mcp.web.lambda_adapter import lambda_adapter

deployment = Deployment(settings())
SETTINGS = deployment.settings
logger = Logger()
stores = deployment.stores
endpoint = RegistrationEndpoint(
    stores.clients,
    stores.rate_limits,
    deployment.rate_rules,
    stores.audit,
    unused_ttl=SETTINGS.unused_client_ttl,
    clock=deployment.clock,
    secrets_allowed=not SETTINGS.fapi2_profile,
    fapi2=SETTINGS.fapi2_profile,
    connections=stores.connection_log,
)
app = create_app(
    "wallet-mcp client registration", realm=SETTINGS.issuer, cors_origins=ANY_ORIGIN, cors_methods=("POST",)
)


@app.post("/oauth/register")
async def register_client(request: Request) -> JSONResponse:
    source = request.client.host if request.client else "unknown"
    registration = endpoint.handle(await request.body(), request.headers.get("content-type"), source)
    logger.info("client registered", extra={"client_id": registration.record.client_id})
    return JSONResponse(registration.response(), status_code=201, headers=NO_STORE)


lambda_handler = traced(
    correlated(
        logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
            lambda_adapter(app)
        )
    )
)

coldstart.loaded()
