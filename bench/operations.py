"""The requests the benchmark sends, as API Gateway events, and what a good answer looks like."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devstack.events import HttpRequest, build_event, parse_result


@dataclass(frozen=True)
class Operation:
    function: str
    route_key: str
    method: str
    path: str
    headers: Callable[[], dict[str, str]]
    body: Callable[[], bytes]
    expect_status: int = 200

    def event(self) -> dict[str, Any]:
        headers = {"host": os.environ.get("BENCH_HOST", "localhost:3000"), **self.headers()}
        return build_event(
            HttpRequest(self.method, self.path, "", list(headers.items()), self.body()),
            route_key=self.route_key,
            path_parameters=None,
            forwarded_proto="http",
        )

    def check(self, result: Any) -> str:
        """The response body, after checking the status is the expected one."""
        response = parse_result(result)
        if response.status != self.expect_status:
            raise SystemExit(f"{self.function} answered {response.status}: {response.body[:300]!r}")
        return response.body.decode("utf-8", "replace")


def _bearer() -> dict[str, str]:
    return {
        "authorization": f"Bearer {os.environ['BENCH_ACCESS_TOKEN']}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
    }


def _rpc(method: str, params: dict[str, Any] | None = None) -> Callable[[], bytes]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        message["params"] = params
    return lambda: json.dumps(message).encode()


OPERATIONS: dict[str, Operation] = {
    "metadata: AS metadata": Operation(
        "MetadataFunction",
        "GET /.well-known/oauth-authorization-server",
        "GET",
        "/.well-known/oauth-authorization-server",
        dict,
        bytes,
    ),
    "metadata: JWKS": Operation(
        "MetadataFunction", "GET /.well-known/jwks.json", "GET", "/.well-known/jwks.json", dict, bytes
    ),
    "token: client_credentials": Operation(
        "TokenFunction",
        "POST /oauth/token",
        "POST",
        "/oauth/token",
        lambda: {"content-type": "application/x-www-form-urlencoded"},
        lambda: os.environ["BENCH_CC_FORM"].encode(),
    ),
    "mcp: tools/list": Operation("McpFunction", "POST /mcp", "POST", "/mcp", _bearer, _rpc("tools/list")),
    "mcp: tools/call ping": Operation(
        "McpFunction",
        "POST /mcp",
        "POST",
        "/mcp",
        _bearer,
        _rpc("tools/call", {"name": "ping", "arguments": {}}),
    ),
}

COLD_START = {
    "MetadataFunction": "metadata: AS metadata",
    "TokenFunction": "token: client_credentials",
    "McpFunction": "mcp: tools/list",
}
"""The first request each function's cold start is measured with."""
