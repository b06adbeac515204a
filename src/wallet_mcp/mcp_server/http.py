"""The `/mcp` endpoint: bearer authentication and per-call scopes in front of the SDK transport.

Order of checks: Host and Origin (DNS rebinding), then the resource's one bearer pipeline
(`resource/authenticate.py`: a valid access token for this resource whose grant is still alive,
401 otherwise with the RFC 9728 `resource_metadata` challenge), then the scopes the JSON-RPC call
needs (403 `insufficient_scope` naming all of them, so a client can step up), then the SDK's
Streamable HTTP transport in stateless JSON-response mode. Under Mangum every invocation is a fresh event
loop, and `StreamableHTTPSessionManager.run()` runs once per instance, so a manager is built per
request around the server that was built once per cold start.

The connection log (`storage.connection_log`) gets a client's first call with each access token
(once per token per instance: a write an access-token lifetime, not one per call) and every refusal
of a token this server signed (expired, for another resource, its grant ended, a scope missing);
a request with no token, or one we never signed, names no client and is not logged.
"""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.jsonrpc import UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from wallet_mcp.aws import is_transient
from wallet_mcp.mcp_server.principal import bound_principal
from wallet_mcp.mcp_server.prompts import PromptRegistry
from wallet_mcp.mcp_server.tool_audit import ToolAudit
from wallet_mcp.mcp_server.tools import ToolRegistry
from wallet_mcp.mcp_server.wallet_resources import scopes_for_uri
from wallet_mcp.primitives import bearer
from wallet_mcp.primitives.scopes import MCP_METHOD_SCOPES, WALLET_SCOPE_PREFIXES
from wallet_mcp.resource.authenticate import BearerChallenge, Caller, ProofContext, ResourceGuard
from wallet_mcp.resource.grant_limits import GrantLimitsCheck
from wallet_mcp.storage.connection_log import ConnectionLog, ConnectionStep, failed, succeeded
from wallet_mcp.wallet.grant_limits import applying
from wallet_mcp.wallet.service import WalletError
from wallet_mcp.web.errors import challenge_response, error_response, unavailable_response

MAX_BODY_BYTES: Final = 1024 * 1024
REMEMBERED_TOKENS: Final = 4096
"""Access tokens (by `jti`) whose first call this instance has logged."""


def required_scopes(message: Any, tools: ToolRegistry, prompts: PromptRegistry | None = None) -> set[str]:
    """The scopes a JSON-RPC message (or batch) needs: the method's (`MCP_METHOD_SCOPES`), plus the
    tool's for a tool call, the resource's for a read, the prompt's for getting a prompt, and for a
    completion those of the prompt or template whose argument it completes (its suggestions are
    that prompt's data). This is the one scope check of an MCP call; unknown shapes need none (the
    SDK rejects them)."""
    if isinstance(message, list):
        needed: set[str] = set()
        for item in message:
            needed |= required_scopes(item, tools, prompts)
        return needed
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        return set()
    method = message["method"]
    needed = set(MCP_METHOD_SCOPES.get(method, ()))
    params = message.get("params")
    if method == "tools/call" and isinstance(params, dict) and isinstance(params.get("name"), str):
        spec = tools.get(params["name"])
        needed |= set(spec.required_scopes) if spec else set()
    if method == "resources/read" and isinstance(params, dict) and isinstance(params.get("uri"), str):
        needed |= set(scopes_for_uri(params["uri"]))
    if method == "prompts/get" and isinstance(params, dict) and isinstance(params.get("name"), str):
        needed |= _prompt_scopes(prompts, params["name"])
    if method == "completion/complete" and isinstance(params, dict) and isinstance(params.get("ref"), dict):
        ref = params["ref"]
        if ref.get("type") == "ref/prompt" and isinstance(ref.get("name"), str):
            needed |= _prompt_scopes(prompts, ref["name"])
        elif ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str):
            needed |= set(scopes_for_uri(ref["uri"]))
    return needed


def _prompt_scopes(prompts: PromptRegistry | None, name: str) -> set[str]:
    spec = prompts.get(name) if prompts is not None else None
    return set(spec.scopes) if spec else set()  # an unknown prompt is the handler's -32602


class McpEndpoint:
    """ASGI app for `/mcp`."""

    def __init__(
        self,
        server: Server[Any],
        tools: ToolRegistry,
        guard: ResourceGuard,
        *,
        initial_scopes: Iterable[str],
        allowed_hosts: list[str],
        allowed_origins: list[str],
        prompts: PromptRegistry | None = None,
        connections: ConnectionLog | None = None,
        as_addressed: Callable[[str, str | None], str] | None = None,
        grant_limits: GrantLimitsCheck | None = None,
        tool_audit: ToolAudit | None = None,
    ) -> None:
        self._as_addressed = as_addressed
        self._grant_limits = grant_limits
        self._tool_audit = tool_audit
        self._server = server
        self._connections = connections
        self._first_calls: OrderedDict[str, None] = OrderedDict()
        self._tools = tools
        self._prompts = prompts
        self._guard = guard
        self._initial_scopes = tuple(initial_scopes)
        self._security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        # MCP transports §Security: validate Origin (and Host) before anything else, against DNS
        # rebinding; a browser page of another origin gets no further, not even a challenge
        if headers.get("host") not in self._security.allowed_hosts:
            response = error_response(421, "invalid_request", "this host is not served here")
            return await response(scope, receive, send)
        origin = headers.get("origin")
        if origin is not None and origin not in self._security.allowed_origins:
            response = error_response(403, "invalid_request", "this origin may not call the MCP endpoint")
            return await response(scope, receive, send)
        version = headers.get("mcp-protocol-version")
        if scope["method"] in ("GET", "DELETE"):
            return await _method_refusal(scope["method"])(scope, receive, send)
        if version is not None and version not in SUPPORTED_PROTOCOL_VERSIONS:
            # the request's id, when its body says it, goes back in the error (JSON-RPC 2.0 §5)
            body = await _read_body(receive, MAX_BODY_BYTES)
            request_id = _request_id(_json_or_none(body) if body is not None else None)
            return await _version_refusal(version, request_id)(scope, receive, send)
        try:
            proof = ProofContext(
                tuple(headers.getlist("dpop")), scope["method"], scope["path"], headers.get("host")
            )
            caller = self._guard.authenticate(headers.get("authorization"), self._initial_scopes, proof)
        except BearerChallenge as exc:
            self._refused(exc)
            return await self._challenge(exc.challenge, headers.get("host"), send)
        except (ClientError, BotoCoreError) as exc:
            # the keys, the revocation list or the client's owner could not be read: say so, and
            # that a retry may work
            if not is_transient(exc):
                raise
            return await unavailable_response()(scope, receive, send)

        body = await _read_body(receive, MAX_BODY_BYTES)
        if body is None:
            response = JSONResponse(_jsonrpc_error(-32600, "Request body too large"), status_code=413)
            return await response(scope, receive, send)
        message = _json_or_none(body)
        needed = required_scopes(message, self._tools, self._prompts)
        view = None
        try:
            self._guard.require_scopes(caller, needed, keep_granted=True)
            if any(s.startswith(WALLET_SCOPE_PREFIXES) for s in needed):
                # a client-credentials token reaches a wallet only through its client's owner
                caller.wallet_owner()
                if self._grant_limits is not None:
                    # the person's limits for this app (one read; never on the catalog calls)
                    view = self._grant_limits.view(caller, self._initial_scopes)
        except BearerChallenge as exc:
            self._refused(exc)
            self._audit_refused_call(caller, message, exc.challenge)
            return await self._challenge(exc.challenge, headers.get("host"), send)
        except WalletError as exc:
            self._log(failed(caller.principal.client_id, "mcp_call", exc.code, exc.message, exc.status))
            return await error_response(exc.status, exc.code, exc.message)(scope, receive, send)

        manager = StreamableHTTPSessionManager(
            app=self._server, json_response=True, stateless=True, security_settings=self._security
        )
        first = self._first_call(caller)
        answered: list[int] = []
        if caller.dpop_nonce is not None:
            send = _with_header(send, b"dpop-nonce", caller.dpop_nonce.encode())  # RFC 9449 §8.2

        async def observed(event: Message) -> None:
            if event["type"] == "http.response.start":
                answered.append(int(event["status"]))
            await send(event)

        with bound_principal(caller.principal), applying(view):
            async with manager.run():
                await manager.handle_request(scope, _replay(body, receive), observed if first else send)
        if first:
            status = answered[0] if answered else 0
            what = f"first call with this access token: {_method_of(message)}, answered HTTP {status}"
            self._log(succeeded(caller.principal.client_id, "mcp_call", what, status))

    def _audit_refused_call(self, caller: Caller, message: Any, challenge: bearer.Challenge) -> None:
        """A tools/call refused before the SDK sees it: by scope, or its grant's duration over."""
        if self._tool_audit is None or _method_of(message) != "tools/call":
            return
        params = message.get("params") if isinstance(message, dict) else None
        params = params if isinstance(params, dict) else {}
        arguments = params.get("arguments")
        decision = "refused_scope" if challenge.error == "insufficient_scope" else "refused_grant"
        self._tool_audit.record(
            caller.principal,
            str(params.get("name", ""))[:100],
            arguments if isinstance(arguments, dict) else None,
            decision,
            challenge.description or "",
        )

    def _first_call(self, caller: Caller) -> bool:
        """Whether this is the first call this instance sees with the caller's access token."""
        if self._connections is None:
            return False
        jti = caller.principal.jti
        if jti in self._first_calls:
            return False
        self._first_calls[jti] = None
        while len(self._first_calls) > REMEMBERED_TOKENS:
            self._first_calls.popitem(last=False)
        return True

    def _refused(self, exc: BearerChallenge) -> None:
        """A refusal, logged under the client a token we signed names (none: nothing to file)."""
        if exc.client_id is None:
            return
        challenge = exc.challenge
        error = challenge.error or "unauthorized"
        self._log(failed(exc.client_id, "mcp_call", error, challenge.description or error, challenge.status))

    def _log(self, step: ConnectionStep) -> None:
        if self._connections is not None:
            self._connections.record(step)

    async def _challenge(self, challenge: bearer.Challenge, host: str | None, send: Send) -> None:
        if self._as_addressed is not None:
            # locally, the metadata URL on the loopback name the client used: the resource it
            # names must be the URL the client knows (RFC 9728 §3.3)
            url = self._as_addressed(challenge.resource_metadata, host)
            challenge = dataclasses.replace(challenge, resource_metadata=url)
        await challenge_response(challenge)({"type": "http"}, _no_body, send)


def _method_refusal(method: str) -> JSONResponse:
    """GET (the standalone stream of 2025-xx clients) and DELETE (session end), refused before any
    work (no token check, no AWS call): this server is stateless with JSON responses, so it offers
    neither, and says so at once with 405 (MCP transports §Listening for Messages; 2026-07-28
    §Earlier Streamable HTTP Revisions) instead of holding a stream, and a Lambda, open until its
    timeout."""
    return JSONResponse(
        _jsonrpc_error(-32000, f"Method Not Allowed: {method} is not served; send JSON-RPC with POST"),
        status_code=405,
        headers={"Allow": "POST", "Cache-Control": "no-store"},
    )


def _version_refusal(version: str, request_id: str | int | None) -> JSONResponse:
    """An `MCP-Protocol-Version` the server does not speak: 400 with the versions it does, before
    the token is checked (2025-11-25 transports §Protocol Version Header; 2026-07-28's
    UnsupportedProtocolVersionError)."""
    requested = version[:64]
    message = (
        f"Unsupported protocol version {requested!r}; supported: {', '.join(SUPPORTED_PROTOCOL_VERSIONS)}"
    )
    error = _jsonrpc_error(UNSUPPORTED_PROTOCOL_VERSION, message, request_id)
    error["error"]["data"] = {"supported": list(SUPPORTED_PROTOCOL_VERSIONS), "requested": requested}
    return JSONResponse(error, status_code=400, headers={"Cache-Control": "no-store"})


def _request_id(message: Any) -> str | int | None:
    """A JSON-RPC request's id, if the message is one and its id is a string or an integer."""
    if isinstance(message, dict):
        found = message.get("id")
        if isinstance(found, str | int) and not isinstance(found, bool):
            return found
    return None


def _method_of(message: Any) -> str:
    """What a JSON-RPC message asked for, as the connection log names it."""
    if isinstance(message, list):
        return f"a batch of {len(message)}"
    if isinstance(message, dict) and isinstance(message.get("method"), str):
        return str(message["method"])[:64]
    return "no JSON-RPC method"


def _jsonrpc_error(code: int, message: str, request_id: str | int | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _with_header(send: Send, name: bytes, value: bytes) -> Send:
    """`send`, adding one header to the response's start."""

    async def sending(event: Message) -> None:
        if event["type"] == "http.response.start":
            event = {**event, "headers": [*event.get("headers", []), (name, value)]}
        await send(event)

    return sending


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body once, then the server's own receive (which reports the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):  # deeply nested arrays fit in a small body
        return None
