"""The MCP endpoint (Streamable HTTP, stateless, JSON responses)."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

import logging

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from starlette.routing import Route

from wallet_mcp.compose import Deployment
from wallet_mcp.config import settings
from wallet_mcp.mcp_server.catalog import build_registry
from wallet_mcp.mcp_server.confirmation import ConfirmationGate, op_id_key, request_state_security
from wallet_mcp.mcp_server.http import McpEndpoint
from wallet_mcp.mcp_server.server import build_server
from wallet_mcp.mcp_server.tool_audit import ToolAudit
from wallet_mcp.mcp_server.wallet_prompts import wallet_prompts
from wallet_mcp.mcp_server.wallet_resources import WalletResources
from wallet_mcp.mcp_server.wallet_tools import wallet_tools
from wallet_mcp.observability import correlated, traced
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.wallet.confirmations import effective_threshold
from wallet_mcp.web.asgi import create_plain_app
from wallet_mcp.web.lambda_adapter import lambda_adapter

deployment = Deployment(settings())
SETTINGS = deployment.settings
logger = Logger()
logging.getLogger("mcp").setLevel(logging.WARNING)  # the SDK logs every stateless request at INFO

store = deployment.stores.wallet
confirmations = deployment.stores.confirmations
tools = build_registry(
    wallet_tools(
        deployment.wallet,
        store,
        deployment.owners,
        threshold=lambda owner: effective_threshold(
            confirmations.threshold(owner), SETTINGS.confirmation_threshold_max
        ),
        confirm_new_accounts=SETTINGS.require_create_account_confirmation,
    )
)
prompts = wallet_prompts(deployment.wallet, store, deployment.owners)
secret = deployment.confirmation_secret
tool_audit = ToolAudit(deployment.stores.audit, deployment.owners, retention=SETTINGS.tool_audit_retention)
server = build_server(
    tools,
    WalletResources(deployment.wallet, store, deployment.owners),
    prompts,
    confirmations=ConfirmationGate(
        confirmations,
        deployment.stores.audit,
        issuer=SETTINGS.issuer,
        op_id_key=op_id_key(secret),
        clock=deployment.clock,
    ),
    request_state=request_state_security(secret, audience=SETTINGS.mcp_resource),
    tool_audit=tool_audit,
)
endpoint = McpEndpoint(
    server,
    tools,
    deployment.resource_guard(SETTINGS.mcp_resource, SETTINGS.mcp_resource_metadata_url),
    initial_scopes=[s for s in SUPPORTED_SCOPES if s.endswith(":read") or s.startswith("mcp:tools:")],
    allowed_hosts=list(SETTINGS.served_hosts),
    allowed_origins=list(SETTINGS.allowed_origins),
    prompts=prompts,
    connections=deployment.stores.connection_log,
    as_addressed=SETTINGS.as_addressed,
    grant_limits=deployment.grant_limits(SETTINGS.mcp_resource_metadata_url),
    tool_audit=tool_audit,
)
# a bare Starlette app: the one route is the SDK's transport, and FastAPI would only add import time
app = create_plain_app(
    [Route("/mcp", endpoint, methods=["GET", "POST", "DELETE"])],
    realm=SETTINGS.issuer,
    cors_origins=SETTINGS.allowed_origins,
    cors_methods=("GET", "POST", "DELETE"),
)

lambda_handler = traced(
    correlated(
        logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
            lambda_adapter(app)
        )
    )
)

coldstart.loaded()
