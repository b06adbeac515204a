"""The wallet Backend API (REST, bearer tokens issued for `<issuer>/api`), with its OpenAPI document."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from wallet_mcp.api.auth import BearerAuth
from wallet_mcp.api.confirmations import DebitConfirmations
from wallet_mcp.api.errors import install_api_error_handlers
from wallet_mcp.api.routes import api_router
from wallet_mcp.compose import Deployment
from wallet_mcp.config import settings
from wallet_mcp.observability import traced
from wallet_mcp.wallet.confirmation_gate import ConfirmationGate, op_id_key
from wallet_mcp.wallet.confirmations import effective_threshold
from wallet_mcp.web.app import create_app
from wallet_mcp.web.lambda_adapter import lambda_adapter

deployment = Deployment(settings())
SETTINGS = deployment.settings
logger = Logger()
wallet = deployment.wallet
# exactly the API's audience: a token minted for the MCP server is refused here
auth = BearerAuth(
    deployment.resource_guard(
        SETTINGS.api_resource, SETTINGS.api_resource_metadata_url, personal_tokens=True
    ),
    deployment.grant_limits(SETTINGS.api_resource_metadata_url),
)
app = create_app(
    "wallet-mcp wallet API",
    realm=SETTINGS.issuer,
    openapi=True,
    cors_origins=SETTINGS.allowed_origins,
    cors_methods=("GET", "POST"),
)
install_api_error_handlers(app)
confirmations = deployment.stores.confirmations
# `ConfirmApiDebits`: the API's debits wait for the person, as the MCP tools' do
debits = DebitConfirmations(
    lambda: ConfirmationGate(
        confirmations,
        deployment.stores.audit,
        issuer=SETTINGS.issuer,
        op_id_key=op_id_key(deployment.confirmation_secret),
        clock=deployment.clock,
    ),
    deployment.owners,
    threshold=lambda owner: effective_threshold(
        confirmations.threshold(owner), SETTINGS.confirmation_threshold_max
    ),
)
app.include_router(api_router(wallet, auth, debits if SETTINGS.confirm_api_debits else None))

lambda_handler = traced(
    logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(lambda_adapter(app))
)

coldstart.loaded()
