"""The OAuth token endpoint, with revocation (RFC 7009) and introspection (RFC 7662)."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

import time

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from mangum import Mangum

from wallet_mcp import aws
from wallet_mcp.config import settings
from wallet_mcp.oauth.forms import parse_form
from wallet_mcp.oauth.revocation import Revoker
from wallet_mcp.oauth.token_endpoint import TokenEndpoint, TokenStores
from wallet_mcp.oauth.token_management import TokenManagement
from wallet_mcp.observability import traced
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.storage.auth_codes import AuthCodeStore
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.storage.consents import ConsentStore
from wallet_mcp.storage.rate_limits import RateLimits
from wallet_mcp.storage.refresh_tokens import RefreshTokenStore
from wallet_mcp.storage.revocations import RevocationList
from wallet_mcp.tokens.access_tokens import AccessTokenVerifier
from wallet_mcp.tokens.keys import KmsPublicKeys
from wallet_mcp.tokens.signer import KmsJwtSigner
from wallet_mcp.web.app import ANY_ORIGIN, create_app
from wallet_mcp.web.errors import NO_STORE

SETTINGS = settings()
logger = Logger()


def clock() -> int:
    return int(time.time())


keys = KmsPublicKeys(aws.kms(), SETTINGS.verification_key_ids)
refresh_tokens = RefreshTokenStore(aws.dynamodb(), SETTINGS.tables.require("refresh_tokens"))
revocations = RevocationList(aws.dynamodb(), SETTINGS.tables.require("revoked_tokens"))
audit = AuditLog(aws.dynamodb(), SETTINGS.tables.require("audit"))
stores = TokenStores(
    clients=ClientStore(aws.dynamodb(), SETTINGS.tables.require("clients")),
    codes=AuthCodeStore(aws.dynamodb(), SETTINGS.tables.require("auth_codes")),
    refresh_tokens=refresh_tokens,
    revocations=revocations,
    rates=RateLimits(aws.dynamodb(), SETTINGS.tables.require("rate_limits")),
    audit=audit,
    consents=ConsentStore(aws.dynamodb(), SETTINGS.tables.require("consents")),
    revoker=Revoker(
        refresh_tokens=refresh_tokens,
        revocations=revocations,
        audit=audit,
        access_token_ttl=SETTINGS.access_token_ttl,
        clock=clock,
    ),
)
tokens = TokenEndpoint(
    SETTINGS, aws.dynamodb(), stores, KmsJwtSigner(aws.kms(), keys, SETTINGS.require_signing_key()), clock
)
management = TokenManagement(
    stores,
    AccessTokenVerifier(keys, issuer=SETTINGS.issuer, audience=SETTINGS.known_resources),
    SETTINGS.issuer,
    clock,
    SETTINGS.rate_limits,
)
app = create_app(
    "wallet-mcp token endpoint", realm=SETTINGS.issuer, cors_origins=ANY_ORIGIN, cors_methods=("POST",)
)


def _source(request: Request) -> str:
    """The caller's address as API Gateway saw it (requestContext.http.sourceIp, not a header)."""
    return request.client.host if request.client else "unknown"


async def _form(request: Request) -> dict[str, str]:
    return parse_form(await request.body(), request.headers.get("content-type"))


@app.post("/oauth/token")
async def token(request: Request) -> JSONResponse:
    response = tokens.handle(await _form(request), request.headers.get("authorization"), _source(request))
    return JSONResponse(response, headers=NO_STORE)


@app.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    management.revoke(await _form(request), request.headers.get("authorization"))
    return Response(status_code=200, headers=NO_STORE)


@app.post("/oauth/introspect")
async def introspect(request: Request) -> JSONResponse:
    response = management.introspect(await _form(request), request.headers.get("authorization"))
    return JSONResponse(response, headers=NO_STORE)


lambda_handler = traced(
    logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
        Mangum(app, lifespan="off")
    )
)

coldstart.loaded()
