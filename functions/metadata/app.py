"""Discovery: authorization-server metadata (RFC 8414), protected-resource metadata (RFC 9728), JWKS."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from fastapi import Request
from fastapi.responses import JSONResponse

from wallet_mcp.compose import Deployment
from wallet_mcp.config import settings
from wallet_mcp.oauth.server.metadata import authorization_server_metadata, protected_resource_metadata
from wallet_mcp.observability import traced
from wallet_mcp.tokens.jwk import to_jwk
from wallet_mcp.tokens.signer import signing_algorithm
from wallet_mcp.web.app import ANY_ORIGIN, create_app
from wallet_mcp.web.lambda_adapter import lambda_adapter

deployment = Deployment(settings())
SETTINGS = deployment.settings
logger = Logger()
keys = deployment.keys
app = create_app("wallet-mcp metadata", realm=SETTINGS.issuer, cors_origins=ANY_ORIGIN, cors_methods=("GET",))

_CACHEABLE = {"Cache-Control": "public, max-age=300"}
_TOKEN_ALG = signing_algorithm(SETTINGS.fapi2_profile)
_AS_METADATA = authorization_server_metadata(SETTINGS)
_RESOURCES = {"mcp": SETTINGS.mcp_resource, "api": SETTINGS.api_resource}
_PRM = {name: protected_resource_metadata(SETTINGS, resource) for name, resource in _RESOURCES.items()}


def _prm(name: str, host: str | None) -> dict[str, object]:
    """The cached document, or (a local client on another loopback name) one naming its URL."""
    if SETTINGS.as_addressed(SETTINGS.issuer, host) == SETTINGS.issuer:
        return _PRM[name]
    return protected_resource_metadata(SETTINGS, _RESOURCES[name], host)


@app.get("/.well-known/oauth-authorization-server")
@app.get("/.well-known/openid-configuration")
def as_metadata() -> JSONResponse:
    return JSONResponse(_AS_METADATA, headers=_CACHEABLE)


@app.get("/.well-known/oauth-protected-resource")
def mcp_resource_metadata(request: Request) -> JSONResponse:
    """The root form names the MCP server, the resource most clients come for."""
    return JSONResponse(_prm("mcp", request.headers.get("host")), headers=_CACHEABLE)


@app.get("/.well-known/oauth-protected-resource/{resource}")
def resource_metadata(resource: str, request: Request) -> JSONResponse:
    if resource not in _RESOURCES:
        return JSONResponse({"error": "not_found", "error_description": "unknown resource"}, status_code=404)
    return JSONResponse(_prm(resource, request.headers.get("host")), headers=_CACHEABLE)


@app.get("/.well-known/jwks.json")
def jwks() -> JSONResponse:
    return JSONResponse({"keys": [to_jwk(k.key, _TOKEN_ALG) for k in keys.all()]}, headers=_CACHEABLE)


lambda_handler = traced(
    logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(lambda_adapter(app))
)

coldstart.loaded()
