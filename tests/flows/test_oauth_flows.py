"""The whole OAuth flow as real MCP clients run it, against the local stack, through the official
MCP Python SDK: discovery from nothing but the MCP URL, registration (dynamic, or a Client ID
Metadata Document), login and consent through the real HTML forms, token, refresh, MCP calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.flows.test_foundation import MemoryStorage
from tests.support.browser import FormBrowser, Landing
from tests.support.local_stack import free_port
from tests.support.metadata_document import DocumentHandler, serving_document

pytestmark = [pytest.mark.flow, pytest.mark.anyio]

CALLBACK = "http://localhost:8765/callback"


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Handlers:
    """The SDK's redirect and callback hooks, answered by a user at the real pages."""

    def __init__(self, browser: FormBrowser) -> None:
        self.browser = browser
        self.landing: Landing | None = None
        self.authorization_urls: list[str] = []

    async def redirect(self, url: str) -> None:
        self.authorization_urls.append(url)
        self.landing = await self.browser.authorize(url)

    async def callback(self) -> AuthorizationCodeResult:
        assert self.landing is not None
        params = self.landing.params
        assert "error" not in params, params
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))


def metadata(**extra) -> OAuthClientMetadata:
    return OAuthClientMetadata(
        client_name="SDK flow test",
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
        **extra,
    )


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sdk_client_discovers_registers_logs_in_and_calls_tools(stack, mode):
    storage = MemoryStorage()
    handlers = Handlers(FormBrowser(DEMO_USERNAME, DEMO_PASSWORD))
    provider = OAuthClientProvider(
        server_url=stack.mcp_url,
        client_metadata=metadata(),
        storage=storage,
        redirect_handler=handlers.redirect,
        callback_handler=handlers.callback,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http), mode=mode) as client,
    ):
        result = await client.call_tool("ping", {})
        assert not result.is_error
        assert "pong" in result.content[0].text
        tools = await client.list_tools()
        assert "ping" in [t.name for t in tools.tools]
    await handlers.browser.aclose()

    assert storage.client_info is not None and storage.client_info.client_id.startswith("mcp_")
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert handlers.browser.pages_seen == ["login", "consent"]
    (url,) = handlers.authorization_urls
    assert "code_challenge_method=S256" in url
    assert f"resource={httpx.URL(stack.mcp_url)}".replace(":", "%3A").replace("/", "%2F") in url


async def test_a_client_configured_with_another_loopback_name_connects(stack):
    """`make dev` prints http://localhost:<port>/mcp, but a client may be given 127.0.0.1 or [::1]:
    the resource it discovers must be the URL it used (RFC 9728 §3.3, which the SDK checks), and a
    token asked for it is a token for the MCP server."""
    mcp_url = stack.mcp_url.replace("localhost", "127.0.0.1")  # the gateway listens on IPv4
    storage = MemoryStorage()
    handlers = Handlers(FormBrowser(DEMO_USERNAME, DEMO_PASSWORD))
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=metadata(),
        storage=storage,
        redirect_handler=handlers.redirect,
        callback_handler=handlers.callback,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(mcp_url, http_client=http), mode="legacy") as client,
    ):
        result = await client.call_tool("getTotalBalance", {})
        assert not result.is_error, result.content[0].text
    await handlers.browser.aclose()
    (url,) = handlers.authorization_urls
    assert httpx.URL(url).params["resource"] == mcp_url
    assert url.startswith(f"{stack.base_url}/oauth/authorize?")  # one issuer, whatever the name used


@pytest.fixture
def metadata_document_url(pki) -> Iterator[tuple[str, type[DocumentHandler]]]:
    port = free_port()
    url = f"https://localhost:{port}/oauth/client-metadata.json"
    document = json.dumps(
        {
            "client_id": url,
            "client_name": "CIMD flow test",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
    ).encode()
    with serving_document(pki, port, document) as handler:
        yield url, handler


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sdk_client_with_a_client_id_metadata_document(stack, metadata_document_url, mode):
    url, handler = metadata_document_url
    storage = MemoryStorage()
    handlers = Handlers(FormBrowser(DEMO_USERNAME, DEMO_PASSWORD))
    provider = OAuthClientProvider(
        server_url=stack.mcp_url,
        client_metadata=metadata(),
        storage=storage,
        redirect_handler=handlers.redirect,
        callback_handler=handlers.callback,
        client_metadata_url=url,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http), mode=mode) as client,
    ):
        result = await client.call_tool("ping", {})
        assert result.structured_content["client_id"] == url
    await handlers.browser.aclose()
    assert storage.client_info.client_id == url  # no dynamic registration happened
    assert handler.hits >= 1
    record = stack.client("dynamodb").scan(TableName="wallet-mcp-local-ClientsTable")["Items"]
    assert any(i["client_id"]["S"] == url and i.get("metadata_document", {}).get("BOOL") for i in record)


# --- concurrency -------------------------------------------------------------------------------


async def _registered_public_client(stack) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{stack.base_url}/oauth/register",
            json={
                "client_name": "concurrency",
                "redirect_uris": [CALLBACK],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            },
        )
    assert response.status_code == 201
    return str(response.json()["client_id"])


async def _code(stack, client_id: str, verifier: str) -> str:
    from wallet_mcp.primitives import pkce

    browser = FormBrowser(DEMO_USERNAME, DEMO_PASSWORD)
    query = httpx.QueryParams(
        response_type="code",
        client_id=client_id,
        redirect_uri=CALLBACK,
        scope="mcp:tools:call",
        state="s",
        code_challenge=pkce.s256(verifier),
        code_challenge_method="S256",
    )
    landing = await browser.authorize(f"{stack.base_url}/oauth/authorize?{query}")
    await browser.aclose()
    return landing.params["code"]


async def test_parallel_redemptions_of_one_code_succeed_exactly_once(stack):
    client_id = await _registered_public_client(stack)
    verifier = "c" * 64
    code = await _code(stack, client_id, verifier)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        "client_id": client_id,
    }
    async with httpx.AsyncClient(timeout=60) as http:
        responses = await asyncio.gather(
            *(http.post(f"{stack.base_url}/oauth/token", data=form) for _ in range(16))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code != 200)


async def test_parallel_refreshes_leave_one_family_and_never_two_different_pairs(stack):
    client_id = await _registered_public_client(stack)
    verifier = "d" * 64
    code = await _code(stack, client_id, verifier)
    async with httpx.AsyncClient(timeout=60) as http:
        issued = (
            await http.post(
                f"{stack.base_url}/oauth/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": CALLBACK,
                    "code_verifier": verifier,
                    "client_id": client_id,
                },
            )
        ).json()
        form = {
            "grant_type": "refresh_token",
            "refresh_token": issued["refresh_token"],
            "client_id": client_id,
        }
        responses = await asyncio.gather(
            *(http.post(f"{stack.base_url}/oauth/token", data=form) for _ in range(8))
        )
        pairs = {
            (r.json()["access_token"], r.json()["refresh_token"]) for r in responses if r.status_code == 200
        }
        assert len(pairs) == 1, [r.status_code for r in responses]
        ((_, survivor),) = pairs
        # the surviving family is usable
        again = await http.post(
            f"{stack.base_url}/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": survivor, "client_id": client_id},
        )
        assert again.status_code == 200
