"""The MCP server: the SDK's low-level `Server` with handlers over a `ToolRegistry`, the wallet
resources and a `PromptRegistry`.

Built once per cold start. Arguments are validated against each tool's pydantic model; a bad
argument or a domain failure is a tool result with `isError` (the model can read and correct
it), an unknown tool is a JSON-RPC error (MCP tools §Error Handling). An unknown prompt, a missing
or unusable prompt argument, and a completion for something this server does not have are
`-32602` (MCP server/prompts and server/utilities/completion, §Error Handling).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import mcp_types as types
from botocore.exceptions import BotoCoreError, ClientError
from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from wallet_mcp.aws import is_transient
from wallet_mcp.mcp_server.completions import NOTHING, CompletionRefused
from wallet_mcp.mcp_server.principal import current_principal
from wallet_mcp.mcp_server.prompts import MAX_ARGUMENT_LENGTH, PromptError, PromptRegistry
from wallet_mcp.mcp_server.tools import ToolError, ToolOutcome, ToolRegistry
from wallet_mcp.mcp_server.wallet_resources import ResourceNotFound, WalletResources
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.service import WalletError

UNAVAILABLE = "The wallet is temporarily unavailable; nothing was changed. Try again in a moment."
SERVER_NAME = "wallet-mcp"
SERVER_VERSION = "0.1.0"
INSTRUCTIONS = (
    "Tools for the user's personal-finance wallet: balances, accounts, transactions and spending "
    "analytics. Amounts are exact decimal strings in the account's currency."
)
CATALOG_CACHE_HINTS: dict[CacheableMethod, CacheHint] = {
    method: CacheHint(ttl_ms=600_000, scope="private")
    for method in ("tools/list", "prompts/list", "resources/templates/list")
}
"""The catalog is the same for every caller and changes only with a deployment: a client may keep it
ten minutes (MCP 2026-07-28 server/utilities/caching). Private all the same: listing needs a token.
What reads the wallet (`resources/list`, `resources/read`) keeps the SDK's default, immediately
stale."""


def build_server(
    tools: ToolRegistry, resources: WalletResources | None = None, prompts: PromptRegistry | None = None
) -> Server[Any]:
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

    handlers: dict[str, Any] = {"on_list_tools": list_tools, "on_call_tool": call_tool}
    if resources is not None:
        handlers.update(_resource_handlers(resources))
    if prompts is not None:
        handlers.update(_prompt_handlers(prompts))
    if resources is not None or prompts is not None:
        handlers["on_completion"] = _completion_handler(prompts, resources)
    return Server(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=INSTRUCTIONS,
        cache_hints=CATALOG_CACHE_HINTS,
        **handlers,
    )


def _resource_handlers(wallet: WalletResources) -> dict[str, Any]:

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

    return {
        "on_list_resources": list_resources,
        "on_list_resource_templates": list_templates,
        "on_read_resource": read_resource,
    }


def _prompt_handlers(prompts: PromptRegistry) -> dict[str, Any]:
    async def list_prompts(
        _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=prompts.definitions())

    async def get_prompt(
        _ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        spec = prompts.get(params.name)
        if spec is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {params.name[:100]}")
        # the scopes were checked once, before the transport (mcp_server/http.required_scopes)
        try:
            return await anyio.to_thread.run_sync(spec.get, current_principal(), params.arguments)
        except PromptError as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from exc
        except (ClientError, BotoCoreError) as exc:
            raise MCPError(types.INTERNAL_ERROR, UNAVAILABLE) from exc

    return {"on_list_prompts": list_prompts, "on_get_prompt": get_prompt}


def _completion_handler(prompts: PromptRegistry | None, resources: WalletResources | None) -> Any:
    def suggest(params: types.CompleteRequestParams, principal: AccessToken) -> types.Completion:
        ref, argument = params.ref, params.argument
        if len(argument.value) > MAX_ARGUMENT_LENGTH:
            return NOTHING  # no argument takes a value this long: nothing can match
        if isinstance(ref, types.PromptReference):
            spec = prompts.get(ref.name) if prompts is not None else None
            if spec is None:
                raise CompletionRefused(f"Unknown prompt: {ref.name[:100]}")
            wanted = spec.argument(argument.name)
            if wanted is None:
                raise CompletionRefused(f"the prompt {spec.name} has no argument {argument.name[:64]!r}")
            if wanted.complete is None:
                return NOTHING
            context = (params.context.arguments if params.context else None) or {}
            return wanted.complete(principal, argument.value, context)
        if resources is None:
            raise CompletionRefused(f"no resource template {ref.uri[:200]!r}")
        return resources.complete(principal, ref.uri, argument.name, argument.value)

    async def complete(
        _ctx: ServerRequestContext[Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        # the scopes of the prompt or template were checked before the transport (http.required_scopes)
        try:
            completion = await anyio.to_thread.run_sync(suggest, params, current_principal())
        except CompletionRefused as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from exc
        except WalletError as exc:
            raise MCPError(types.INVALID_REQUEST, exc.message) from exc
        except (ClientError, BotoCoreError) as exc:
            raise MCPError(types.INTERNAL_ERROR, UNAVAILABLE) from exc
        return types.CompleteResult(completion=completion)

    return complete


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "arguments"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "Invalid arguments: " + "; ".join(problems)
