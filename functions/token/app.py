"""The OAuth token endpoint."""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from fastapi import Request
from fastapi.responses import JSONResponse
from mangum import Mangum

from wallet_mcp import aws
from wallet_mcp.config import settings
from wallet_mcp.oauth.forms import parse_form
from wallet_mcp.oauth.token_endpoint import TokenEndpoint
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.tokens.keys import KmsPublicKeys
from wallet_mcp.tokens.signer import KmsJwtSigner
from wallet_mcp.web.app import create_app
from wallet_mcp.web.errors import NO_STORE

SETTINGS = settings()
logger = Logger()
endpoint = TokenEndpoint(
    SETTINGS,
    clients=ClientStore(aws.dynamodb(), SETTINGS.tables.require("clients")),
    signer=KmsJwtSigner(
        aws.kms(), KmsPublicKeys(aws.kms(), SETTINGS.verification_key_ids), SETTINGS.require_signing_key()
    ),
    clock=lambda: int(time.time()),
)
app = create_app("wallet-mcp token endpoint", realm=SETTINGS.issuer)


@app.post("/oauth/token")
async def token(request: Request) -> JSONResponse:
    form = parse_form(await request.body(), request.headers.get("content-type"))
    response = endpoint.handle(form, request.headers.get("authorization"))
    return JSONResponse(response, headers=NO_STORE)


lambda_handler = logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
    Mangum(app, lifespan="off")
)
