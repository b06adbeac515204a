"""The OAuth token endpoint, with revocation (RFC 7009) and introspection (RFC 7662)."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wallet_mcp.compose import Deployment
from wallet_mcp.config import settings
from wallet_mcp.oauth.rules.lifetimes import Lifetimes
from wallet_mcp.oauth.server import client_keys
from wallet_mcp.oauth.server.client_auth import ClientAuthenticator
from wallet_mcp.oauth.server.dpop_binding import ProofRequest, TokenDpop
from wallet_mcp.oauth.server.jwt_bearer import IdpKeys, JwtBearerGrant, fetch_idp_jwks
from wallet_mcp.oauth.server.par import PushedAuthorizationEndpoint
from wallet_mcp.oauth.server.token import TokenEndpoint, TokenStores
from wallet_mcp.oauth.server.token_management import TokenManagement
from wallet_mcp.observability import correlated, traced
from wallet_mcp.primitives.forms import parse_form
from wallet_mcp.web.asgi import ANY_ORIGIN, create_plain_app
from wallet_mcp.web.errors import NO_STORE
from wallet_mcp.web.lambda_adapter import lambda_adapter

deployment = Deployment(settings())
SETTINGS = deployment.settings
logger = Logger()
stores = deployment.stores
token_stores = TokenStores(
    clients=stores.clients,
    codes=stores.auth_codes,
    refresh_tokens=stores.refresh_tokens,
    revocations=stores.revocations,
    rates=stores.rate_limits,
    audit=stores.audit,
    consents=stores.consents,
    revoker=deployment.revoker,
    connections=stores.connection_log,
)
keys = client_keys.ClientKeys(
    lambda url: client_keys.fetch_jwks(url, allow_loopback=SETTINGS.allow_loopback_client_metadata),
    deployment.clock,
)
authenticator = ClientAuthenticator(
    keys,
    stores.used_assertions,
    SETTINGS.issuer,
    deployment.clock,
    secrets_allowed=not SETTINGS.fapi2_profile,
    public_allowed=not SETTINGS.fapi2_profile,
    fapi2=SETTINGS.fapi2_profile,
)
dpop = TokenDpop(deployment.dpop_checker, required=SETTINGS.dpop_required, url_of=deployment.public_url)
# the jwt-bearer grant for ID-JAGs of the trusted enterprise IdPs (docs/enterprise.md)
jwt_bearer = (
    JwtBearerGrant(
        SETTINGS,
        IdpKeys(
            lambda url: fetch_idp_jwks(url, allow_loopback=SETTINGS.allow_loopback_identity_providers),
            deployment.clock,
        ),
        stores.used_assertions,
        stores.users,
        stores.identity_links,
    )
    if SETTINGS.trusted_idps or SETTINGS.trusted_workload_issuers
    else None
)
tokens = TokenEndpoint(
    SETTINGS,
    stores.database,
    token_stores,
    deployment.signer,
    deployment.clock,
    authenticator,
    dpop,
    jwt_bearer=jwt_bearer,
)
management = TokenManagement(
    token_stores,
    deployment.verifier(SETTINGS.known_resources),
    SETTINGS.issuer,
    deployment.clock,
    SETTINGS.rate_limits,
    bounds=Lifetimes.bounds(SETTINGS),
    authenticator=authenticator,
)
pushed = PushedAuthorizationEndpoint(
    stores.clients,
    authenticator,
    stores.pushed_requests,
    deployment.clock,
    rates=stores.rate_limits,
    rules=deployment.rate_rules,
    dpop=dpop,
)


def _source(request: Request) -> str:
    """The caller's address as API Gateway saw it (requestContext.http.sourceIp, not a header)."""
    return request.client.host if request.client else "unknown"


async def _form(request: Request) -> dict[str, str]:
    return parse_form(await request.body(), request.headers.get("content-type"))


def _proof(request: Request) -> ProofRequest:
    return ProofRequest(tuple(request.headers.getlist("dpop")), request.headers.get("host"))


def _answer_headers(proof: ProofRequest) -> dict[str, str]:
    headers = dict(NO_STORE)
    nonce = dpop.nonce(deployment.clock()) if proof.proofs else None
    if nonce is not None:
        headers["DPoP-Nonce"] = nonce  # RFC 9449 §8.2: the nonce to use next
    return headers


async def token(request: Request) -> JSONResponse:
    proof = _proof(request)
    response = tokens.handle(
        await _form(request), request.headers.get("authorization"), _source(request), proof
    )
    return JSONResponse(response, headers=_answer_headers(proof))


async def revoke(request: Request) -> Response:
    management.revoke(await _form(request), request.headers.get("authorization"))
    return Response(status_code=200, headers=NO_STORE)


async def par(request: Request) -> JSONResponse:
    """RFC 9126 §2.2: 201 with the request_uri."""
    proof = _proof(request)
    response = pushed.handle(
        await _form(request), request.headers.get("authorization"), _source(request), proof
    )
    return JSONResponse(response, status_code=201, headers=_answer_headers(proof))


async def introspect(request: Request) -> JSONResponse:
    response = management.introspect(await _form(request), request.headers.get("authorization"))
    return JSONResponse(response, headers=NO_STORE)


# a bare Starlette app, as the MCP function's: four form posts, and FastAPI would only add import
# time (~40 % of this function's; docs/operations.md "Cold start")
app = create_plain_app(
    [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/revoke", revoke, methods=["POST"]),
        Route("/oauth/par", par, methods=["POST"]),
        Route("/oauth/introspect", introspect, methods=["POST"]),
    ],
    realm=SETTINGS.issuer,
    cors_origins=ANY_ORIGIN,
    cors_methods=("POST",),
)

lambda_handler = traced(
    correlated(
        logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
            lambda_adapter(app)
        )
    )
)

coldstart.loaded()
