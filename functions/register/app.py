"""OAuth dynamic client registration (RFC 7591)."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

import time

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from fastapi import Request
from fastapi.responses import JSONResponse
from mangum import Mangum

from wallet_mcp import aws
from wallet_mcp.config import settings
from wallet_mcp.oauth.limits import Rules
from wallet_mcp.oauth.registration import parse_metadata, register
from wallet_mcp.observability import traced
from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.storage.rate_limits import RateLimits
from wallet_mcp.web.app import ANY_ORIGIN, create_app
from wallet_mcp.web.errors import NO_STORE

SETTINGS = settings()
logger = Logger()
clients = ClientStore(aws.dynamodb(), SETTINGS.tables.require("clients"))
rates = RateLimits(aws.dynamodb(), SETTINGS.tables.require("rate_limits"))
RULES = Rules.from_settings(SETTINGS.rate_limits)
audit = AuditLog(aws.dynamodb(), SETTINGS.tables.require("audit"))
app = create_app(
    "wallet-mcp client registration", realm=SETTINGS.issuer, cors_origins=ANY_ORIGIN, cors_methods=("POST",)
)


@app.post("/oauth/register")
async def register_client(request: Request) -> JSONResponse:
    metadata = parse_metadata(await request.body(), request.headers.get("content-type"))
    now = int(time.time())
    registration = register(metadata, now=now, unused_ttl=SETTINGS.unused_client_ttl)
    # only registrations that would be stored count: per address, and overall (storage stays bounded)
    source = request.client.host if request.client else "unknown"
    rates.hit(RULES.register_address, source, now)
    rates.hit(RULES.register_all, "all", now)
    clients.create(registration.record)
    audit.record(
        AuditEvent(
            "client_registered",
            subject=registration.record.client_id,
            client_id=registration.record.client_id,
            source=source,
            details={"auth_method": registration.record.token_endpoint_auth_method},
        )
    )
    logger.info("client registered", extra={"client_id": registration.record.client_id})
    return JSONResponse(registration.response(), status_code=201, headers=NO_STORE)


lambda_handler = traced(
    logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
        Mangum(app, lifespan="off")
    )
)

coldstart.loaded()
