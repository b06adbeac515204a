"""`wallet-mcp serve-stdio`: the seven contract tools over stdio, answered by the Backend API.

For MCP clients that start a local process (Claude Desktop, Claude Code). The tools are the
remote server's own (`mcp_server/wallet_tools.py` and `catalog.PING`): the same names, input
models, output schemas and texts, run against `HttpWallet` instead of DynamoDB; the SDK's
low-level server (`mcp_server/server.build_server`) serves them over `stdio_server`. So are the
remote server's prompts (`mcp_server/wallet_prompts.py`), rendered from the same API, with their
completions but for the months with spending (read from the table, which the bridge does not
reach). The API enforces the token's scopes and picks the wallet from the token: the local
principal below only lets the shared server code through, it grants nothing.

The token comes from the first configured source (`token_sources`); stdout is the MCP channel,
so every log line goes to stderr.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Final

import anyio
import httpx2
from mcp.server.stdio import stdio_server

from wallet_mcp.cli import dpop as dpop_client
from wallet_mcp.cli.backend import BackendApi, HttpWallet
from wallet_mcp.cli.errors import ConfigurationError, ServiceError
from wallet_mcp.cli.http_client import new_http_client
from wallet_mcp.cli.settings import CliSettings
from wallet_mcp.cli.storage import LoginRecord, LoginStore
from wallet_mcp.cli.token_sources import (
    ClientCredentialsSource,
    SavedLoginSource,
    StaticTokenSource,
    TokenSource,
)
from wallet_mcp.mcp_server.catalog import PING, NoArguments, ping
from wallet_mcp.mcp_server.principal import bound_principal
from wallet_mcp.mcp_server.prompts import PromptRegistry
from wallet_mcp.mcp_server.server import build_server
from wallet_mcp.mcp_server.tools import ToolError, ToolOutcome, ToolRegistry
from wallet_mcp.mcp_server.wallet_prompts import wallet_prompts
from wallet_mcp.mcp_server.wallet_tools import wallet_tools
from wallet_mcp.primitives.scopes import TOOLS_LIST
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.owners import OwnerResolver
from wallet_mcp.wallet.store import WalletStore

logger = logging.getLogger(__name__)

BRIDGED_TOOLS: Final = (
    "ping",
    "getTotalBalance",
    "getUserAccounts",
    "getRecentTransactions",
    "createAccount",
    "createTransaction",
    "getSpendingAnalytics",
)
"""CONTRACT.md's seven tools. The saved-report tools stay remote: reports are MCP resources there."""

NO_CREDENTIALS: Final = """no credentials for the wallet API. Either set, in the environment or in .env:
  BACKEND_API_URL, MCP_CLIENT_ID, MCP_CLIENT_SECRET and AUTHORIZATION_SERVER_URL
    (OAuth client credentials; MCP_SCOPE is optional)
or sign in once as a person with `wallet-mcp login --server <issuer URL>`,
or, as a fallback, set BACKEND_API_URL and BACKEND_AUTH_TOKEN (a personal access token)."""


class _OwnerFromToken(OwnerResolver):
    """The API takes the wallet owner from the token; the tools' owner argument goes unused."""

    def __init__(self) -> None:  # no client store: nothing is looked up locally
        pass

    def owner_of(self, principal: AccessToken) -> str:
        return principal.subject


class _NoReportStore(WalletStore):
    """Only the saved-report tools use the store, and they are not bridged."""

    def __init__(self) -> None:  # no table: nothing reaches DynamoDB from here
        pass


def bridged_registry(api: BackendApi) -> ToolRegistry:
    remote = {spec.name: spec for spec in wallet_tools(HttpWallet(api), _NoReportStore(), _OwnerFromToken())}

    def ping_through_api(_: AccessToken, arguments: NoArguments) -> ToolOutcome:
        try:
            return ping(api.who(), arguments)
        except ServiceError as exc:
            raise ToolError(exc.message) from exc

    # the bridge serves no resources, so no MCP Apps view either: its tools name none (text and
    # structuredContent as ever, which is all a host without the views uses)
    bridged = (replace(remote[name], meta=None) for name in BRIDGED_TOOLS[1:])
    return ToolRegistry([replace(PING, run=ping_through_api), *bridged])


def bridged_prompts(api: BackendApi) -> PromptRegistry:
    return wallet_prompts(HttpWallet(api), None, _OwnerFromToken())


def local_principal(tools: ToolRegistry) -> AccessToken:
    """The stdio peer is the local user who started this process: every tool's scopes, locally."""
    scopes = {TOOLS_LIST}
    for spec in tools:
        scopes.update(spec.required_scopes)
    now = int(time.time())
    return AccessToken(
        subject="stdio",
        client_id="wallet-mcp serve-stdio",
        scopes=frozenset(scopes),
        audience="stdio",
        issued_at=now,
        expires_at=0,
        jti="stdio",
    )


def _saved_login(settings: CliSettings, logins: LoginStore) -> LoginRecord | None:
    if settings.server_url is not None:
        return logins.load(settings.server_url)
    records = logins.all()
    if len(records) > 1:
        names = ", ".join(r.issuer for r in records)
        raise ConfigurationError(f"saved logins for several servers ({names}): set AUTHORIZATION_SERVER_URL")
    return records[0] if records else None


@dataclass(frozen=True, slots=True)
class Chosen:
    """The bridge's token source, the API's base URL, and the DPoP key its tokens are bound to."""

    source: TokenSource
    api_base_url: str
    dpop: dpop_client.DpopSession | None = None


def choose_token_source(settings: CliSettings, http: httpx2.Client, logins: LoginStore) -> Chosen:
    """The first configured source (client credentials, saved login, fixed token) and the API's base."""
    signer = settings.assertion_signer()
    credential = settings.client_secret or signer
    if bool(settings.client_id) != bool(credential):
        present, missing = (
            ("MCP_CLIENT_ID", "MCP_CLIENT_SECRET")
            if settings.client_id
            else ("MCP_CLIENT_SECRET", "MCP_CLIENT_ID")
        )
        raise ConfigurationError(
            f"{present} is set but {missing} is not; set both, or neither"
            " (or MCP_CLIENT_PRIVATE_KEY_FILE instead of the secret)"
        )
    if settings.client_id and credential:
        if settings.authorization_server_url is None:
            raise ConfigurationError(
                "MCP_CLIENT_ID and MCP_CLIENT_SECRET are set: set AUTHORIZATION_SERVER_URL too "
                "(the issuer, e.g. http://localhost:3000)"
            )
        if settings.backend_api_url is None:
            raise ConfigurationError(
                "set BACKEND_API_URL (the wallet API's base URL, e.g. http://localhost:3000)"
            )
        dpop = dpop_client.DpopSession(dpop_client.load_key(settings.config_dir)) if settings.dpop else None
        source = ClientCredentialsSource(
            http,
            issuer=settings.authorization_server_url,
            api_base_url=settings.backend_api_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            signer=signer,
            scope=settings.scope,
            dpop=dpop,
        )
        return Chosen(source, settings.backend_api_url, dpop)
    record = _saved_login(settings, logins)
    if record is not None:
        dpop = _bound_key(settings, record)
        return Chosen(
            SavedLoginSource(http, logins, record, dpop=dpop),
            settings.backend_api_url or record.api_base_url,
            dpop,
        )
    if settings.backend_auth_token:
        if settings.backend_api_url is None:
            raise ConfigurationError("BACKEND_AUTH_TOKEN is set: set BACKEND_API_URL too")
        logger.warning(
            "OAuth is not configured: using BACKEND_AUTH_TOKEN, a long-lived fixed token. Move to "
            "OAuth client credentials or `wallet-mcp login` (docs/clients.md)"
        )
        # a personal access token is a bearer token by design, DPoP or not (docs/security.md)
        return Chosen(StaticTokenSource(settings.backend_auth_token), settings.backend_api_url)
    raise ConfigurationError(NO_CREDENTIALS)


def _bound_key(settings: CliSettings, record: LoginRecord) -> dpop_client.DpopSession | None:
    """A bound login's key (it must still be the one the tokens are bound to); None for bearer."""
    if record.dpop_jkt is None:
        if settings.dpop:
            raise ConfigurationError(
                f"the saved login for {record.issuer} holds bearer tokens, not DPoP-bound ones: "
                "run `wallet-mcp login --dpop` again"
            )
        return None
    session = dpop_client.DpopSession(dpop_client.load_key(settings.config_dir, create=False))
    if session.jkt != record.dpop_jkt:
        raise ConfigurationError(
            f"the saved login for {record.issuer} is bound to another DPoP key than "
            f"{dpop_client.key_path(settings.config_dir)}: run `wallet-mcp login` again"
        )
    return session


async def _serve(tools: ToolRegistry, prompts: PromptRegistry) -> None:
    server = build_server(tools, prompts=prompts)
    with bound_principal(local_principal(tools)):
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())


def serve_stdio(settings: CliSettings) -> int:
    with new_http_client(settings.http_timeout) as http:
        chosen = choose_token_source(settings, http, LoginStore(settings.config_dir))
        source, api_base_url = chosen.source, chosen.api_base_url
        api = BackendApi(api_base_url, source, http, dpop=chosen.dpop)
        tools, prompts = bridged_registry(api), bridged_prompts(api)
        logger.info(
            "serving %d wallet tools and %d prompts over stdio: API %s, token from %s%s",
            len(BRIDGED_TOOLS),
            len(prompts.definitions()),
            api_base_url,
            source.describe(),
            ", DPoP-bound" if chosen.dpop is not None else "",
        )
        anyio.run(_serve, tools, prompts)
    logger.debug("stdin closed: stopping")
    return 0
