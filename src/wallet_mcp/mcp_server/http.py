"""The `/mcp` endpoint: bearer authentication and per-call scopes in front of the SDK transport.

Order of checks: Host and Origin (DNS rebinding), then the resource's one bearer pipeline
(`resource/authenticate.py`: a valid access token for this resource whose grant is still alive,
401 otherwise with the RFC 9728 `resource_metadata` challenge), then the scopes the JSON-RPC call
needs (403 `insufficient_scope` naming all of them, so a client can step up), then the SDK's
Streamable HTTP transport in stateless JSON-response mode. Under Mangum every invocation is a fresh event
loop, and `StreamableHTTPSessionManager.run()` runs once per instance, so a manager is built per
request around the server that was built once per cold start.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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
from wallet_mcp.mcp_server.tools import ToolRegistry
from wallet_mcp.mcp_server.wallet_resources import scopes_for_uri
from wallet_mcp.primitives import bearer
from wallet_mcp.primitives.scopes import MCP_METHOD_SCOPES, WALLET_SCOPE_PREFIXES
from wallet_mcp.resource.authenticate import BearerChallenge, ResourceGuard
from wallet_mcp.wallet.service import WalletError
from wallet_mcp.web.errors import challenge_response, error_response, unavailable_response

MAX_BODY_BYTES: Final = 1024 * 1024


def required_scopes(message: Any, tools: ToolRegistry) -> set[str]:
    """The scopes a JSON-RPC message (or batch) needs: the method's (`MCP_METHOD_SCOPES`), plus the
    tool's for a tool call and the resource's for a read. This is the one scope check of an MCP
    call; unknown shapes need none (the SDK rejects them)."""
    if isinstance(message, list):
        needed: set[str] = set()
        for item in message:
            needed |= required_scopes(item, tools)
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
    return needed


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
    ) -> None:
        self._server = server
        self._tools = tools
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
        refusal = _transport_refusal(scope["method"], headers.get("mcp-protocol-version"))
        if refusal is not None:
            return await refusal(scope, receive, send)
        try:
            caller = self._guard.authenticate(headers.get("authorization"), self._initial_scopes)
        except BearerChallenge as exc:
            return await self._challenge(exc.challenge, send)
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
        needed = required_scopes(_json_or_none(body), self._tools)
        try:
            self._guard.require_scopes(caller, needed)
            if any(s.startswith(WALLET_SCOPE_PREFIXES) for s in needed):
                # a client-credentials token reaches a wallet only through its client's owner
                caller.wallet_owner()
        except BearerChallenge as exc:
            return await self._challenge(exc.challenge, send)
        except WalletError as exc:
            return await error_response(exc.status, exc.code, exc.message)(scope, receive, send)

        manager = StreamableHTTPSessionManager(
            app=self._server, json_response=True, stateless=True, security_settings=self._security
        )
        with bound_principal(caller.principal):
            async with manager.run():
                await manager.handle_request(scope, _replay(body, receive), send)

    async def _challenge(self, challenge: bearer.Challenge, send: Send) -> None:
        await challenge_response(challenge)({"type": "http"}, _no_body, send)


def _transport_refusal(method: str, version: str | None) -> JSONResponse | None:
    """What the transport refuses before any work (no token check, no AWS call), or None.

    - GET (the standalone stream of 2025-xx clients) and DELETE (session end): this server is
      stateless with JSON responses, so it offers neither, and says so at once with 405 (MCP
      transports §Listening for Messages; 2026-07-28 §Earlier Streamable HTTP Revisions) instead of
      holding a stream, and a Lambda, open until its timeout.
    - An `MCP-Protocol-Version` the server does not speak: 400 with the versions it does
      (2025-11-25 transports §Protocol Version Header; 2026-07-28's UnsupportedProtocolVersionError).
    """
    if method in ("GET", "DELETE"):
        return JSONResponse(
            _jsonrpc_error(-32000, f"Method Not Allowed: {method} is not served; send JSON-RPC with POST"),
            status_code=405,
            headers={"Allow": "POST", "Cache-Control": "no-store"},
        )
    if version is not None and version not in SUPPORTED_PROTOCOL_VERSIONS:
        requested = version[:64]
        message = (
            f"Unsupported protocol version {requested!r}; supported: {', '.join(SUPPORTED_PROTOCOL_VERSIONS)}"
        )
        error = _jsonrpc_error(UNSUPPORTED_PROTOCOL_VERSION, message)
        error["error"]["data"] = {"supported": list(SUPPORTED_PROTOCOL_VERSIONS), "requested": requested}
        return JSONResponse(error, status_code=400, headers={"Cache-Control": "no-store"})
    return None


def _jsonrpc_error(code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}


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
