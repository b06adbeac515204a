"""DPoP (RFC 9449) end to end against the local stack: a client that registered
`dpop_bound_access_tokens` and its keys gets a DPoP-bound token (client_credentials with a
`private_key_jwt` assertion and a proof, after the server's nonce), then calls an MCP tool through
the official MCP Python SDK's Streamable HTTP client, whose HTTP client signs a fresh proof for
every request (`ath`, the nonce the server last gave, retried once on `use_dpop_nonce`).

The Python SDK has no DPoP provider (the TypeScript client 2.x has one: test_typescript_client_dpop.py).
The proofs here are `tests/support/dpop_client.py` (pyjwt) plugged in as the SDK's `httpx2.Auth`."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator

import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.flows.test_private_key_jwt_flows import public_jwks
from tests.support.dpop_client import DpopKey

pytestmark = [pytest.mark.flow, pytest.mark.anyio]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def anyio_backend():
    return "asyncio"


class DpopAuth(httpx2.Auth):
    """`Authorization: DPoP <token>` and a fresh proof on every request; on `use_dpop_nonce`, the
    request once more with the nonce the answer carried (RFC 9449 §9)."""

    def __init__(self, key: DpopKey, access_token: str) -> None:
        self.key = key
        self.access_token = access_token
        self.retried = 0

    def _sign(self, request: httpx2.Request) -> None:
        url = str(request.url.copy_with(query=None, fragment=None))
        request.headers["Authorization"] = f"DPoP {self.access_token}"
        request.headers["DPoP"] = self.key.proof(request.method, url, access_token=self.access_token)

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        self._sign(request)
        response = yield request
        self.key.remember(list(response.headers.items()))
        if response.status_code == 401 and 'error="use_dpop_nonce"' in response.headers.get(
            "www-authenticate", ""
        ):
            self.retried += 1
            self._sign(request)
            response = yield request
            self.key.remember(list(response.headers.items()))


def assertion(key: ec.EllipticCurvePrivateKey, client_id: str, audience: str) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + 60, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm="ES256")


async def test_a_dpop_bound_token_calls_a_tool_through_the_sdk(stack):
    client_key = ec.generate_private_key(ec.SECP256R1())
    dpop_key = DpopKey()
    async with httpx.AsyncClient(timeout=30) as http:
        registered = await http.post(
            f"{stack.base_url}/oauth/register",
            json={
                "client_name": "DPoP flow test",
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": public_jwks(client_key),
                "dpop_bound_access_tokens": True,
                "scope": "mcp:tools:list mcp:tools:call",
            },
        )
        assert registered.status_code == 201, registered.text
        assert registered.json()["dpop_bound_access_tokens"] is True
        client_id = registered.json()["client_id"]
        metadata = (await http.get(f"{stack.base_url}/.well-known/oauth-authorization-server")).json()
        assert "ES256" in metadata["dpop_signing_alg_values_supported"]
        token_url = metadata["token_endpoint"]

        async def token_request(with_proof: bool) -> httpx.Response:
            headers = {"DPoP": dpop_key.proof("POST", token_url)} if with_proof else {}
            return await http.post(
                token_url,
                headers=headers,
                data={
                    "grant_type": "client_credentials",
                    "scope": "mcp:tools:list mcp:tools:call",
                    "resource": stack.mcp_url,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": assertion(client_key, client_id, metadata["issuer"]),
                },
            )

        # the client requires DPoP: no proof, no token
        without = await token_request(False)
        assert without.status_code == 400 and without.json()["error"] == "invalid_dpop_proof"
        first = await token_request(True)
        assert first.status_code == 400 and first.json()["error"] == "use_dpop_nonce"
        dpop_key.remember(list(first.headers.items()))
        issued = await token_request(True)
        assert issued.status_code == 200, issued.text
        assert issued.json()["token_type"] == "DPoP"
        access_token = issued.json()["access_token"]

        # the bound token is no bearer token
        plain = await http.post(
            stack.mcp_url,
            headers={
                "Authorization": f"Bearer {access_token}",
                "Accept": "application/json, text/event-stream",
            },
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
        assert plain.status_code == 401 and plain.headers["www-authenticate"].startswith("DPoP ")

    auth = DpopAuth(dpop_key, access_token)
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as sdk_http,
        Client(streamable_http_client(stack.mcp_url, http_client=sdk_http)) as client,
    ):
        tools = await client.list_tools()
        assert "ping" in [t.name for t in tools.tools]
        result = await client.call_tool("ping", {})
        assert not result.is_error
        assert result.structured_content["client_id"] == client_id
