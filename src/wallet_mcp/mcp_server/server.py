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
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp.shared.exceptions import MCPError, UrlElicitationRequiredError
from pydantic import BaseModel, ValidationError

from wallet_mcp.aws import is_transient
from wallet_mcp.mcp_server import apps
from wallet_mcp.mcp_server.completions import NOTHING, CompletionRefused
from wallet_mcp.mcp_server.confirmation import Ask, ConfirmationGate, Proceed, Refuse
from wallet_mcp.mcp_server.principal import current_principal
from wallet_mcp.mcp_server.prompts import MAX_ARGUMENT_LENGTH, PromptError, PromptRegistry
from wallet_mcp.mcp_server.tool_audit import EXPECTED_READ, STARTED, ToolAudit
from wallet_mcp.mcp_server.tools import Proposal, ToolError, ToolOutcome, ToolRegistry, ToolSpec
from wallet_mcp.mcp_server.wallet_resources import ResourceNotFound, WalletResources
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.confirmations import arguments_digest
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
    tools: ToolRegistry,
    resources: WalletResources | None = None,
    prompts: PromptRegistry | None = None,
    *,
    confirmations: ConfirmationGate | None = None,
    request_state: RequestStateSecurity | None = None,
    tool_audit: ToolAudit | None = None,
) -> Server[Any]:
    """`confirmations`: the gate of the tools that move money (`ToolSpec.propose`); with it,
    `request_state` seals the 2026-07-28 `requestState` that names a pending operation. Without
    a gate (the stdio bridge, whose Backend API answers for itself) those tools run directly."""
    if confirmations is not None and request_state is None:
        raise ValueError("a confirmation gate needs request-state protection")
    # `tool_audit`: every tools/call, its decision and result (mcp_server/tool_audit.py)

    async def list_tools(
        _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools.definitions())

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        spec = tools.get(params.name)
        if spec is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name[:100]}")
        if tool_audit is None:
            return await run_tool(ctx, params, spec, _Decision())
        decision = _Decision("failed", "the call did not complete")
        # in the table before the answer leaves (mcp_server/tool_audit.py): a read's event beside
        # the read, as what nearly every read comes to; a write's before it runs, as `started`
        call = tool_audit.begin(
            current_principal(),
            spec.name,
            params.arguments,
            expect=EXPECTED_READ if spec.read_only else STARTED,
        )
        if not spec.read_only and not await anyio.to_thread.run_sync(call.written):
            # nothing that changes the wallet runs unless the trail has it
            return _error(UNAVAILABLE)
        try:
            result = await run_tool(ctx, params, spec, decision)
        except UrlElicitationRequiredError:
            decision.set("asked", "the person's confirmation was asked for (-32042)")
            raise
        finally:
            recorded = await anyio.to_thread.run_sync(call.finish, decision.decision, decision.result)
        if spec.read_only and not recorded:
            # no wallet data leaves without its audit event; a read changed nothing, so a retry is
            # safe. A write's answer stands: what it did is done (the trail says `started`), and
            # an error would invite a second movement
            return _error(UNAVAILABLE)
        return result

    async def run_tool(
        ctx: ServerRequestContext[Any],
        params: types.CallToolRequestParams,
        spec: ToolSpec[Any],
        decision: _Decision,
    ) -> types.CallToolResult | types.InputRequiredResult:
        # the scopes were checked once, before the transport (mcp_server/http.required_scopes)
        principal = current_principal()
        try:
            arguments = spec.arguments.model_validate(params.arguments or {})
        except ValidationError as exc:
            decision.set("refused", "invalid arguments")
            return _error(_describe(exc))
        try:
            if spec.propose is not None and confirmations is not None:
                proposal = await anyio.to_thread.run_sync(spec.propose, principal, arguments)
                if proposal is not None:
                    return await _confirm_then_run(
                        confirmations, ctx, params, spec.name, arguments, proposal, decision
                    )
            outcome: ToolOutcome = await anyio.to_thread.run_sync(spec.run, principal, arguments)
        except ToolError as exc:
            decision.set(exc.reason, str(exc))
            return _error(str(exc))
        except (ClientError, BotoCoreError) as exc:
            if not is_transient(exc):
                raise
            # every write is one DynamoDB transaction: a failure changed nothing
            decision.set("failed", UNAVAILABLE)
            return _error(UNAVAILABLE)
        decision.set("allowed", "ok" if spec.read_only else outcome.text)
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
    server: Server[Any] = Server(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=INSTRUCTIONS,
        cache_hints=CATALOG_CACHE_HINTS,
        **handlers,
    )
    if resources is not None:
        # MCP Apps (SEP-2133 extensions): the tools name their views, which resources/read serves
        server.extensions[apps.EXTENSION_ID] = {}
    if confirmations is not None:
        # outside the boundary (the first in the list wraps the rest): its refusals are audited
        server.middleware.append(_audit_refused_state(confirmations))
    if request_state is not None:
        # seals every outgoing requestState and verifies every echo before a handler sees it
        # (2026-07-28 basic/patterns/mrtr §Security: requestState is attacker-controlled)
        server.middleware.append(RequestStateBoundary(request_state, default_audience=SERVER_NAME))
    return server


def _audit_refused_state(gate: ConfirmationGate) -> Any:
    """Middleware: a tools/call whose requestState the boundary refused goes to the audit trail,
    then the refusal (-32602) goes back unchanged."""

    async def audit(ctx: ServerRequestContext[Any], call_next: Any) -> Any:
        try:
            return await call_next(ctx)
        except MCPError as exc:
            data = exc.error.data
            if (
                ctx.method == "tools/call"
                and isinstance(data, dict)
                and data.get("reason") == "invalid_request_state"
            ):
                tool = str((ctx.params or {}).get("name", ""))
                await anyio.to_thread.run_sync(gate.record_refused_state, current_principal(), tool)
            raise

    return audit


CONFIRM_KEY = "confirm"
"""The key of the URL elicitation in `InputRequiredResult.inputRequests` (server-assigned)."""
MRTR_VERSION = "2026-07-28"


async def _confirm_then_run(
    gate: ConfirmationGate,
    ctx: ServerRequestContext[Any],
    params: types.CallToolRequestParams,
    tool: str,
    arguments: BaseModel,
    proposal: Proposal,
    decision: _Decision,
) -> types.CallToolResult | types.InputRequiredResult:
    """Ask the person, or run what they approved (mcp_server/confirmation.py)."""
    principal = current_principal()
    modern = ctx.protocol_version >= MRTR_VERSION
    answer = (params.input_responses or {}).get(CONFIRM_KEY) if modern else None
    action = getattr(answer, "action", None)
    verdict = await anyio.to_thread.run_sync(
        lambda: gate.check(
            principal,
            proposal.owner,
            proposal.operation,
            arguments_digest(tool, arguments.model_dump(mode="json")),
            # the boundary has verified and unsealed it: the op id this server put there
            state=params.request_state if modern else None,
            declined_in_client=action == "decline",
        )
    )
    match verdict:
        case Proceed(confirmation=found):
            actions = gate.authorising_actions(found, transaction_id=proposal.transaction_id, tool=tool)
            outcome = await anyio.to_thread.run_sync(proposal.execute, actions)
            decision.set("confirmed", outcome.text)
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=outcome.text)],
                structured_content=outcome.structured,
            )
        case Refuse(message=message, reason=reason):
            decision.set("declined" if reason == "declined" else "refused_confirmation", message)
            return _error(message)
        case Ask() if action == "cancel":
            decision.set("asked", "the person has not decided yet")
            return _error(f"Not confirmed yet; nothing was recorded. {verdict.message}")
        case Ask():
            decision.set("asked", "the person's confirmation was asked for")
            capabilities = ctx.session.client_capabilities
            url_mode = bool(capabilities and capabilities.elicitation and capabilities.elicitation.url)
            if modern and url_mode:
                elicit = types.ElicitRequest(
                    params=types.ElicitRequestURLParams(message=verdict.message, url=verdict.url)
                )
                return types.InputRequiredResult(
                    input_requests={CONFIRM_KEY: elicit}, request_state=verdict.op_id
                )
            if not modern and capabilities is None:
                # a stateless 2025-11-25 request carries no capabilities: the -32042 error is the
                # answer every client can show (its message names the URL too)
                raise UrlElicitationRequiredError(
                    [
                        types.ElicitRequestURLParams(
                            message=verdict.message, url=verdict.url, elicitation_id=verdict.elicitation_id
                        )
                    ],
                    "This payment needs the person's confirmation: " + verdict.message,
                )
            # the client declared no URL-mode elicitation: tell the person what to do
            return _error("This payment needs your confirmation. " + verdict.message)


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
        if apps.is_view(uri):
            return _read_view(ctx, uri)
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


def _read_view(ctx: ServerRequestContext[Any], uri: str) -> types.ReadResourceResult:
    """A `ui://` view: its HTML (no wallet data in it: the host hands it the tool result)."""
    view = apps.find(uri)
    if view is None:
        code = types.INVALID_PARAMS if ctx.protocol_version >= "2026-07-28" else -32002
        raise MCPError(code, "Resource not found", {"uri": uri[:200]})
    return types.ReadResourceResult(
        contents=[
            types.TextResourceContents(
                uri=uri, mime_type=apps.APP_MIME_TYPE, text=apps.html(view), _meta=apps.resource_meta()
            )
        ]
    )


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


class _Decision:
    """What became of a tools/call, for the audit trail (`mcp_server/tool_audit.py`)."""

    def __init__(self, decision: str = "allowed", result: str = "") -> None:
        self.decision = decision
        self.result = result

    def set(self, decision: str, result: str) -> None:
        self.decision, self.result = decision, result


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "arguments"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "Invalid arguments: " + "; ".join(problems)
