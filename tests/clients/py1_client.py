"""The official MCP Python SDK, 1.x line, as a host runs it against wallet-mcp: its own OAuth client
(`mcp.client.auth.OAuthClientProvider`) over `streamable_http_client`, with a `ClientSession`.

Run by tests/flows/test_client_generations.py with the Python of the SDK's own venv
(dev/devstack/clients.py installs it: mcp 2.x in the project venv cannot share it), so this file
imports nothing but the standard library and that SDK. One JSON argument says what to do (the MCP
URL, the redirect URI, the tool calls, the refresh probe, a file to keep the tokens in across runs);
one JSON object a line goes each way:

    stdout  {"event": "authorize", "url": "..."}   the SDK sends the user to this URL
    stdin   {"callback": "http://localhost/...?code=...&state=...&iss=..."}   where the user came back
    stdout  {"event": "report", ...}               what happened, then the process exits

The report has the same shape for every driver (tests/clients/ts_client.mjs too); tokens appear
only as digests (unless a TypeScript run is told `reveal_tokens`, for the DPoP test's stack).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import traceback
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.to_thread
import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.types import CallToolResult, TextContent


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def digest(secret: str | None) -> str | None:
    return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else None


class Storage:
    """The SDK's `TokenStorage`: in memory, and in `path` when given (a host that restarts starts
    from what it saved); every token set the SDK saves goes into the report."""

    def __init__(self, report: dict[str, Any], path: Path | None) -> None:
        self.report = report
        self.path = path
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.expires_at = float("inf")
        """When the SDK takes the access token for expired: it counts `expires_in` from receipt."""
        if path is not None and path.exists():
            saved = json.loads(path.read_text())
            self.tokens = OAuthToken.model_validate(saved["tokens"])
            self.client_info = OAuthClientInformationFull.model_validate(saved["client_info"])

    def _save(self) -> None:
        if self.path is not None and self.tokens is not None and self.client_info is not None:
            self.path.write_text(
                json.dumps(
                    {
                        "tokens": self.tokens.model_dump(mode="json"),
                        "client_info": self.client_info.model_dump(mode="json"),
                    }
                )
            )

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        if tokens.expires_in is not None:
            self.expires_at = time.time() + tokens.expires_in
        self._save()
        self.report["tokens"].append(
            {
                "access": digest(tokens.access_token),
                "refresh": digest(tokens.refresh_token),
                "scope": tokens.scope,
                "expires_in": tokens.expires_in,
            }
        )

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info
        self.report["client_id"] = client_info.client_id
        self._save()


class WireLog:
    """Every HTTP exchange the SDK makes (httpx event hooks see the OAuth flow's requests too)."""

    def __init__(self, entries: list[dict[str, Any]], origin: float) -> None:
        self.entries = entries
        self.origin = origin
        self._started: dict[int, float] = {}

    async def on_request(self, request: httpx.Request) -> None:
        self._started[id(request)] = time.monotonic()

    async def on_response(self, response: httpx.Response) -> None:
        request = response.request
        started = self._started.pop(id(request), time.monotonic())
        ended = time.monotonic()
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.url.path,
            "status": response.status_code,
            "ms": round((ended - started) * 1000),
            "start_ms": round((started - self.origin) * 1000),
            "end_ms": round((ended - self.origin) * 1000),
        }
        if request.method == "POST" and request.url.path.endswith("/token"):
            entry["grant_type"] = parse_qs(request.content.decode()).get("grant_type", [None])[0]
        elif request.method == "POST" and request.url.path.endswith("/mcp"):
            body = json.loads(request.content or b"null")
            entry["rpc"] = body.get("method") if isinstance(body, dict) else None
        self.entries.append(entry)


class User:
    """The SDK's redirect and callback handlers: the test plays the user at the real pages."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report

    async def redirect(self, url: str) -> None:
        self.report["authorizations"] += 1
        emit("authorize", url=url)

    async def callback(self) -> tuple[str, str | None]:
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        if not line:
            raise RuntimeError("stdin closed before the authorization callback arrived")
        query = parse_qs(urlsplit(json.loads(line)["callback"]).query)
        if "error" in query:
            raise RuntimeError(f"the authorization server answered error={query['error'][0]}")
        return query["code"][0], query.get("state", [None])[0]


def outcome(tool: str, arguments: dict[str, Any], result: CallToolResult) -> dict[str, Any]:
    text = "\n".join(c.text for c in result.content if isinstance(c, TextContent))
    return {
        "tool": tool,
        "arguments": arguments,
        "is_error": result.isError,
        "structured": result.structuredContent,
        "text": text,
    }


def describe(exc: BaseException) -> list[str]:
    if isinstance(exc, BaseExceptionGroup):
        return [line for inner in exc.exceptions for line in describe(inner)]
    return [f"{type(exc).__name__}: {exc}"]


async def session_flow(config: dict[str, Any], report: dict[str, Any], origin: float) -> None:
    user = User(report)
    log = WireLog(report["http"], origin)
    storage = Storage(report, Path(config["token_file"]) if config.get("token_file") else None)
    provider = OAuthClientProvider(
        server_url=config["mcp_url"],
        client_metadata=OAuthClientMetadata(
            client_name=config["client_name"],
            redirect_uris=[config["redirect_uri"]],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=user.redirect,
        callback_handler=user.callback,
    )
    hooks = {"request": [log.on_request], "response": [log.on_response]}
    async with (
        httpx.AsyncClient(auth=provider, timeout=30, event_hooks=hooks) as http,
        streamable_http_client(config["mcp_url"], http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        initialized = await session.initialize()
        report["protocol_version"] = initialized.protocolVersion
        report["server_info"] = {
            "name": initialized.serverInfo.name,
            "version": initialized.serverInfo.version,
        }
        session_started = time.monotonic()
        listed = await session.list_tools()
        report["tools"] = [
            {"name": t.name, "read_only": bool(t.annotations and t.annotations.readOnlyHint)}
            for t in listed.tools
        ]
        for call in config["calls"]:
            result = await session.call_tool(call["tool"], call["arguments"])
            report["results"].append(outcome(call["tool"], call["arguments"], result))
        report["session_s"] = round(time.monotonic() - session_started, 3)

        # this SDK refreshes ahead of the expiry it computed from `expires_in`: call once that has
        # passed (a call sent just before it could reach the server after the token's end, and be
        # answered 401, on which this SDK starts a new authorization instead of refreshing)
        probe = config.get("refresh")
        if probe is None:
            return
        saved = len(report["tokens"])
        deadline = time.monotonic() + probe["timeout_s"]
        while len(report["tokens"]) == saved and time.monotonic() < deadline:
            await anyio.sleep(max(storage.expires_at - time.time(), 0) + probe["interval_s"])
            result = await session.call_tool(probe["tool"], probe["arguments"])
            report["refresh_results"].append(outcome(probe["tool"], probe["arguments"], result))


def main() -> int:
    config = json.loads(sys.argv[1])
    report: dict[str, Any] = {
        "sdk": {"package": "mcp", "version": version("mcp")},
        "authorizations": 0,
        "client_id": None,
        "protocol_version": None,
        "server_info": None,
        "tools": [],
        "results": [],
        "refresh_results": [],
        "tokens": [],
        "http": [],
        "errors": [],
    }
    started = time.monotonic()
    try:
        anyio.run(session_flow, config, report, started)
    except BaseException as exc:  # every failure goes into the report the test asserts on
        traceback.print_exc(file=sys.stderr)
        report["errors"].extend(describe(exc))
    report["elapsed_s"] = round(time.monotonic() - started, 3)
    emit("report", **report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
