"""End to end against the local stack: discovery, client credentials, and MCP through the official SDK."""

from __future__ import annotations

import base64
import json
import time

import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

pytestmark = [pytest.mark.flow, pytest.mark.anyio]

MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@pytest.fixture
def anyio_backend():
    return "asyncio"


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def client_credentials_token(stack, **extra) -> str:
    response = httpx.post(
        f"{stack.base_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "scope": "mcp:tools:list mcp:tools:call wallet:accounts:read",
            **extra,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_metadata_documents_are_served(stack):
    asm = httpx.get(f"{stack.base_url}/.well-known/oauth-authorization-server").json()
    assert asm["issuer"] == stack.base_url
    oidc = httpx.get(f"{stack.base_url}/.well-known/openid-configuration").json()
    assert oidc == asm
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        prm = httpx.get(stack.base_url + path).json()
        assert prm["resource"] == stack.mcp_url
        assert prm["authorization_servers"] == [stack.base_url]
    jwks = httpx.get(asm["jwks_uri"]).json()
    assert len(jwks["keys"]) == 2  # the active and the standby signing key


def test_the_seed_client_credentials_request_and_raw_mcp_calls(stack):
    token = client_credentials_token(stack)
    headers = {**MCP_HEADERS, "authorization": f"Bearer {token}", "mcp-protocol-version": "2025-06-18"}
    listed = httpx.post(
        stack.mcp_url, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    )
    assert listed.status_code == 200
    assert any(t["name"] == "ping" for t in listed.json()["result"]["tools"])
    ping = httpx.post(
        stack.mcp_url,
        headers=headers,
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "ping", "arguments": {}}},
    )
    assert "pong" in ping.json()["result"]["content"][0]["text"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_the_standalone_stream_and_session_end_are_405_at_once(stack, method):
    """Over HTTP, through the local gateway: no stream is held open (it was, until the function's
    timeout, for every GET the TypeScript 1.x client sends after initialize)."""
    token = client_credentials_token(stack)
    headers = {
        "accept": "text/event-stream",
        "authorization": f"Bearer {token}",
        "mcp-protocol-version": "2025-11-25",
    }
    response = httpx.request(method, stack.mcp_url, headers=headers, timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]"])
def test_the_local_stack_answers_on_every_loopback_name(stack, name):
    port = stack.base_url.rpartition(":")[2]
    token = client_credentials_token(stack)
    headers = {
        **MCP_HEADERS,
        "authorization": f"Bearer {token}",
        "mcp-protocol-version": "2025-06-18",
        "host": f"{name}:{port}",
    }
    listed = httpx.post(
        stack.mcp_url, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    )
    assert listed.status_code == 200, listed.text


@pytest.mark.parametrize("host", ["evil.example.com", "[::1", "[::1]:1", "localhost:x"])
def test_no_host_header_gets_a_5xx(stack, host):
    token = client_credentials_token(stack)
    headers = {
        **MCP_HEADERS,
        "authorization": f"Bearer {token}",
        "mcp-protocol-version": "2025-06-18",
        "host": host,
    }
    listed = httpx.post(
        stack.mcp_url, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    )
    assert listed.status_code == 421


def test_without_a_token_mcp_answers_the_resource_metadata_challenge(stack):
    response = httpx.post(
        stack.mcp_url, headers=MCP_HEADERS, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    )
    assert response.status_code == 401
    assert (
        f'resource_metadata="{stack.base_url}/.well-known/oauth-protected-resource/mcp"'
        in response.headers["www-authenticate"]
    )


def _forge(claims: dict, header: dict, key=None) -> str:
    if key is None:
        b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
        return f"{b64(header)}.{b64(claims)}."
    return jwt.encode(claims, key, algorithm="RS256", headers=header)


@pytest.mark.parametrize("forgery", ["another_key", "alg_none", "another_audience"])
def test_forged_and_foreign_tokens_are_refused(stack, forgery):
    genuine = client_credentials_token(stack)
    header = jwt.get_unverified_header(genuine)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    if forgery == "another_key":
        token = _forge(claims, header, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    elif forgery == "alg_none":
        token = _forge(claims, {**header, "alg": "none"})
    else:
        token = client_credentials_token(stack, resource=f"{stack.base_url}/api")
    response = httpx.post(
        stack.mcp_url,
        headers={**MCP_HEADERS, "authorization": f"Bearer {token}"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_official_sdk_client_with_client_credentials(stack, mode):
    provider = ClientCredentialsOAuthProvider(
        server_url=stack.mcp_url,
        storage=MemoryStorage(),
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",
        scope="mcp:tools:list mcp:tools:call",
        issuer=stack.base_url,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http), mode=mode) as client,
    ):
        tools = await client.list_tools()
        assert "ping" in [t.name for t in tools.tools]
        result = await client.call_tool("ping", {})
        assert not result.is_error
        assert "pong" in result.content[0].text
        assert result.structured_content["client_id"] == DEMO_CLIENT_ID


def test_protocol_2025_06_18_initialize(stack):
    token = client_credentials_token(stack)
    response = httpx.post(
        stack.mcp_url,
        headers={**MCP_HEADERS, "authorization": f"Bearer {token}"},
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"]["protocolVersion"] == "2025-06-18"


def test_stack_logs_never_contain_secrets_or_tokens(stack):
    token = client_credentials_token(stack)
    time.sleep(0.5)
    logs = stack.log_path.read_text()
    assert token not in logs
    assert DEMO_CLIENT_SECRET not in logs.split("Ctrl-C stops everything.")[-1]
