"""The wallet Backend API (REST, bearer tokens issued for `<issuer>/api`), with its OpenAPI document."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum

from wallet_mcp import aws
from wallet_mcp.api.auth import BearerAuth
from wallet_mcp.api.errors import install_api_error_handlers
from wallet_mcp.api.routes import api_router
from wallet_mcp.config import settings
from wallet_mcp.observability import traced
from wallet_mcp.resource.authenticate import ResourceGuard
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.storage.personal_tokens import PersonalTokenStore
from wallet_mcp.storage.revocations import CachedRevocations, RevocationList
from wallet_mcp.tokens.access_tokens import AccessTokenVerifier
from wallet_mcp.tokens.keys import KmsPublicKeys
from wallet_mcp.wallet.owners import OwnerResolver
from wallet_mcp.wallet.service import WalletService
from wallet_mcp.wallet.store import WalletStore
from wallet_mcp.web.app import create_app

SETTINGS = settings()
logger = Logger()
wallet = WalletService(WalletStore(aws.dynamodb(), SETTINGS.tables.require("wallet")))
revocations = CachedRevocations(
    RevocationList(aws.dynamodb(), SETTINGS.tables.require("revoked_tokens")),
    poll_seconds=SETTINGS.revocation_poll_seconds,
)
auth = BearerAuth(
    ResourceGuard(
        # exactly the API's audience: a token minted for the MCP server is refused here
        AccessTokenVerifier(
            KmsPublicKeys(aws.kms(), SETTINGS.verification_key_ids),
            issuer=SETTINGS.issuer,
            audience=SETTINGS.api_resource,
        ),
        audience=SETTINGS.api_resource,
        resource_metadata_url=SETTINGS.api_resource_metadata_url,
        revoked=revocations.current,
        owners=OwnerResolver(
            ClientStore(aws.dynamodb(), SETTINGS.tables.require("clients")),
            ttl=SETTINGS.revocation_poll_seconds,
        ),
        personal_tokens=PersonalTokenStore(aws.dynamodb(), SETTINGS.tables.require("personal_tokens")),
    )
)
app = create_app(
    "wallet-mcp wallet API",
    realm=SETTINGS.issuer,
    openapi=True,
    cors_origins=SETTINGS.allowed_origins,
    cors_methods=("GET", "POST"),
)
install_api_error_handlers(app)
app.include_router(api_router(wallet, auth))

lambda_handler = traced(
    logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
        Mangum(app, lifespan="off")
    )
)

coldstart.loaded()
