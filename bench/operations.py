"""The requests the benchmark sends, as API Gateway events, and what a good answer looks like."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlencode

from devstack.events import HttpRequest, build_event, parse_result


@dataclass(frozen=True)
class Operation:
    function: str
    route_key: str
    method: str
    path: str
    headers: Callable[[], dict[str, str]]
    body: Callable[[str | None], bytes]
    """The request body, given the previous response's body (None for the first request)."""
    expect_status: int = 200
    query: Callable[[], str] = str

    def event(self, previous: str | None = None) -> dict[str, Any]:
        headers = {"host": os.environ.get("BENCH_HOST", "localhost:3000"), **self.headers()}
        return build_event(
            HttpRequest(self.method, self.path, self.query(), list(headers.items()), self.body(previous)),
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


@cache
def _dpop_key() -> tuple[Any, dict[str, Any]]:
    """The benchmark's DPoP key (BENCH_DPOP_KEY, PEM) and its public JWK."""
    import jwt
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(os.environ["BENCH_DPOP_KEY"].encode(), None)
    return key, json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))  # type: ignore[arg-type]


def _dpop_proof(method: str, path: str, access_token: str | None = None) -> str:
    """A fresh proof (RFC 9449 §4.2) with the server nonce BENCH_DPOP_NONCE; signed while the event
    is built, before the clock starts: the figures are the server's checking only."""
    import jwt

    from wallet_mcp.primitives.dpop import access_token_hash

    key, jwk = _dpop_key()
    claims: dict[str, Any] = {
        "jti": uuid.uuid4().hex,
        "htm": method,
        "htu": f"http://{os.environ.get('BENCH_HOST', 'localhost:3000')}{path}",
        "iat": int(time.time()),
        "nonce": os.environ["BENCH_DPOP_NONCE"],
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": jwk})


def _dpop_token_request() -> dict[str, str]:
    return {"content-type": "application/x-www-form-urlencoded", "dpop": _dpop_proof("POST", "/oauth/token")}


def _dpop_bound() -> dict[str, str]:
    token = os.environ["BENCH_DPOP_ACCESS_TOKEN"]
    return {
        **_bearer(),
        "authorization": f"DPoP {token}",
        "dpop": _dpop_proof("POST", "/mcp", token),
    }


def _rpc(method: str, params: dict[str, Any] | None = None) -> Callable[[str | None], bytes]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        message["params"] = params
    return lambda _previous: json.dumps(message).encode()


def _nothing(_previous: str | None) -> bytes:
    return b""


_codes: list[str] = []


def _code_exchange(_previous: str | None) -> bytes:
    """Each exchange spends one of the codes the benchmark stored beforehand."""
    if not _codes:
        _codes.extend(reversed(os.environ["BENCH_CODES"].split(",")))
    return urlencode(
        {
            "grant_type": "authorization_code",
            "code": _codes.pop(),
            "redirect_uri": os.environ["BENCH_REDIRECT_URI"],
            "code_verifier": os.environ["BENCH_VERIFIER"],
            "client_id": os.environ["BENCH_PUBLIC_CLIENT"],
        }
    ).encode()


def _refresh(previous: str | None) -> bytes:
    """Each refresh presents the token the previous one returned (rotation)."""
    token = json.loads(previous)["refresh_token"] if previous else os.environ["BENCH_REFRESH_TOKEN"]
    return urlencode(
        {
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": os.environ["BENCH_PUBLIC_CLIENT"],
        }
    ).encode()


_FORM = {"content-type": "application/x-www-form-urlencoded"}


def _key_client_credentials(_previous: str | None) -> bytes:
    """client_credentials with `private_key_jwt` (RFC 7523 §2.2): a fresh assertion each request
    (its jti is single-use), signed before the handler's clock starts."""
    import time
    import uuid

    import jwt

    client_id, now = os.environ["BENCH_KEY_CLIENT"], int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": os.environ["BENCH_ISSUER"],
        "iat": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    assertion = jwt.encode(claims, os.environ["BENCH_KEY_PEM"], algorithm="ES256")
    return urlencode(
        {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
    ).encode()


OPERATIONS: dict[str, Operation] = {
    "metadata: AS metadata": Operation(
        "MetadataFunction",
        "GET /.well-known/oauth-authorization-server",
        "GET",
        "/.well-known/oauth-authorization-server",
        dict,
        _nothing,
    ),
    "metadata: protected resource": Operation(
        "MetadataFunction",
        "GET /.well-known/oauth-protected-resource/{resource}",
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        dict,
        _nothing,
    ),
    "metadata: JWKS": Operation(
        "MetadataFunction", "GET /.well-known/jwks.json", "GET", "/.well-known/jwks.json", dict, _nothing
    ),
    "token: client_credentials": Operation(
        "TokenFunction",
        "POST /oauth/token",
        "POST",
        "/oauth/token",
        lambda: _FORM,
        lambda _previous: os.environ["BENCH_CC_FORM"].encode(),
    ),
    "token: client_credentials + DPoP": Operation(
        "TokenFunction",
        "POST /oauth/token",
        "POST",
        "/oauth/token",
        _dpop_token_request,
        lambda _previous: (
            os.environ["BENCH_CC_FORM"] + "&resource=" + os.environ["BENCH_MCP_RESOURCE"]
        ).encode(),
    ),
    "token: private_key_jwt (cc grant)": Operation(
        "TokenFunction", "POST /oauth/token", "POST", "/oauth/token", lambda: _FORM, _key_client_credentials
    ),
    "token: authorization_code": Operation(
        "TokenFunction", "POST /oauth/token", "POST", "/oauth/token", lambda: _FORM, _code_exchange
    ),
    "token: refresh_token": Operation(
        "TokenFunction", "POST /oauth/token", "POST", "/oauth/token", lambda: _FORM, _refresh
    ),
    "authorize: GET (login page)": Operation(
        "AuthorizeFunction",
        "GET /oauth/authorize",
        "GET",
        "/oauth/authorize",
        dict,
        _nothing,
        query=lambda: os.environ["BENCH_AUTHORIZE_QUERY"],
    ),
    "account: GET (sign-in page)": Operation(
        "AccountFunction", "GET /account", "GET", "/account", dict, _nothing
    ),
    "register: POST": Operation(
        "RegisterFunction",
        "POST /oauth/register",
        "POST",
        "/oauth/register",
        lambda: {"content-type": "application/json"},
        lambda _previous: json.dumps(
            {
                "client_name": "bench",
                "redirect_uris": ["http://localhost:9/cb"],
                "token_endpoint_auth_method": "none",
            }
        ).encode(),
        expect_status=201,
    ),
    "mcp: initialize": Operation(
        "McpFunction",
        "POST /mcp",
        "POST",
        "/mcp",
        _bearer,
        _rpc(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        ),
    ),
    "mcp: tools/list": Operation("McpFunction", "POST /mcp", "POST", "/mcp", _bearer, _rpc("tools/list")),
    # the same call with a DPoP-bound token and a fresh proof (RFC 9449): the difference is the
    # proof's check (signature, nonce HMAC, in-memory replay cache)
    "mcp: tools/list (DPoP)": Operation(
        "McpFunction", "POST /mcp", "POST", "/mcp", _dpop_bound, _rpc("tools/list")
    ),
    "mcp: tools/call ping": Operation(
        "McpFunction",
        "POST /mcp",
        "POST",
        "/mcp",
        _bearer,
        _rpc("tools/call", {"name": "ping", "arguments": {}}),
    ),
    # a read tool: access-token checks, the owner's wallet read from DynamoDB, structured output
    "mcp: tools/call getRecentTransactions": Operation(
        "McpFunction",
        "POST /mcp",
        "POST",
        "/mcp",
        _bearer,
        _rpc("tools/call", {"name": "getRecentTransactions", "arguments": {"limit": 5}}),
    ),
    # a read tool that reaches the wallet (the demo client's owner's): its own Query, and its
    # audit event's PutItem issued beside it (docs/security.md § Every tool call audited)
    "mcp: tools/call getTotalBalance": Operation(
        "McpFunction",
        "POST /mcp",
        "POST",
        "/mcp",
        _bearer,
        _rpc("tools/call", {"name": "getTotalBalance", "arguments": {}}),
    ),
}


def _wallet_bearer() -> dict[str, str]:
    """The scale runs act as a user with a wallet of a given size (its token in BENCH_WALLET_TOKEN)."""
    return {**_bearer(), "authorization": f"Bearer {os.environ['BENCH_WALLET_TOKEN']}"}


SCALE_OPERATIONS: dict[str, Operation] = {
    "getRecentTransactions (20)": Operation(
        "McpFunction",
        "POST /mcp",
        "POST",
        "/mcp",
        _wallet_bearer,
        _rpc("tools/call", {"name": "getRecentTransactions", "arguments": {"limit": 20}}),
    ),
    "getTotalBalance": Operation(
        "McpFunction",
        "POST /mcp",
        "POST",
        "/mcp",
        _wallet_bearer,
        _rpc("tools/call", {"name": "getTotalBalance", "arguments": {}}),
    ),
}
OPERATIONS.update(SCALE_OPERATIONS)

COLD_START = {
    "MetadataFunction": "metadata: AS metadata",
    "TokenFunction": "token: client_credentials",
    "AuthorizeFunction": "authorize: GET (login page)",
    "RegisterFunction": "register: POST",
    "AccountFunction": "account: GET (sign-in page)",
    "McpFunction": "mcp: tools/list",
}
"""The first request each function's cold start is measured with."""

COLD_PATHS = {
    "McpFunction": ("mcp: initialize", "mcp: tools/list", "mcp: tools/call getRecentTransactions"),
    "TokenFunction": ("token: client_credentials",),
}
"""What a client sends first, in order, to the functions bench/cold.py compares with the SDK's
example: their import and these requests are timed in one fresh process (bench/path_probe.py), so
an import deferred until a first request needs it shows up in the path's figure."""

HOST_STEPS = (
    "metadata: protected resource",
    "metadata: AS metadata",
    "register: POST",
    "token: authorization_code",
    "token: refresh_token",
    "mcp: initialize",
)
"""What an MCP host waits for while it connects, each of which it gives up on after ~10 s."""
