"""The MCP server: the SDK's low-level `Server` with handlers over a `ToolRegistry`.

Built once per cold start. Arguments are validated against each tool's pydantic model; a bad
argument or a domain failure is a tool result with `isError` (the model can read and correct
it), an unknown tool is a JSON-RPC error (MCP tools §Error Handling).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import mcp_types as types
from botocore.exceptions import BotoCoreError, ClientError
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from wallet_mcp.aws import is_transient
from wallet_mcp.mcp_server.principal import current_principal
from wallet_mcp.mcp_server.tools import ToolError, ToolOutcome, ToolRegistry
from wallet_mcp.mcp_server.wallet_resources import ResourceNotFound, WalletResources
from wallet_mcp.wallet.service import WalletError

UNAVAILABLE = "The wallet is temporarily unavailable; nothing was changed. Try again in a moment."
SERVER_NAME = "wallet-mcp"
SERVER_VERSION = "0.1.0"
INSTRUCTIONS = (
    "Tools for the user's personal-finance wallet: balances, accounts, transactions and spending "
    "analytics. Amounts are exact decimal strings in the account's currency."
)


def build_server(tools: ToolRegistry, resources: WalletResources | None = None) -> Server[Any]:
    async def list_tools(
        _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools.definitions())

    async def call_tool(
        _ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = tools.get(params.name)
        if spec is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name[:100]}")
        # the scopes were checked once, before the transport (mcp_server/http.required_scopes)
        principal = current_principal()
        try:
            arguments = spec.arguments.model_validate(params.arguments or {})
        except ValidationError as exc:
            return _error(_describe(exc))
        try:
            outcome: ToolOutcome = await anyio.to_thread.run_sync(spec.run, principal, arguments)
        except ToolError as exc:
            return _error(str(exc))
        except (ClientError, BotoCoreError) as exc:
            if not is_transient(exc):
                raise
            # every write is one DynamoDB transaction: a failure changed nothing
            return _error(UNAVAILABLE)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=outcome.text)],
            structured_content=outcome.structured,
        )

    if resources is None:
        return Server(
            SERVER_NAME,
            version=SERVER_VERSION,
            instructions=INSTRUCTIONS,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
        )
    wallet = resources

    async def list_resources(
        _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        try:
            listed = await anyio.to_thread.run_sync(wallet.list, current_principal())
        except WalletError as exc:
            raise MCPError(types.INVALID_REQUEST, exc.message) from exc
        except (ClientError, BotoCoreError) as exc:
            raise MCPError(types.INTERNAL_ERROR, UNAVAILABLE) from exc
        return types.ListResourcesResult(resources=listed)

    async def list_templates(
        _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=wallet.templates())

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        principal = current_principal()
        try:
            text = await anyio.to_thread.run_sync(wallet.read, principal, uri)
        except ResourceNotFound as exc:
            # 2026-07-28 moved "resource not found" from -32002 to -32602 (invalid params)
            code = types.INVALID_PARAMS if ctx.protocol_version >= "2026-07-28" else -32002
            raise MCPError(code, "Resource not found", {"uri": uri[:200]}) from exc
        except WalletError as exc:
            raise MCPError(types.INVALID_REQUEST, exc.message) from exc
        except (ClientError, BotoCoreError) as exc:
            raise MCPError(types.INTERNAL_ERROR, UNAVAILABLE) from exc
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
        )

    return Server(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "arguments"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "Invalid arguments: " + "; ".join(problems)
