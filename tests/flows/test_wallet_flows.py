"""The wallet through the official MCP SDK client, signed in as the demo user, against the local
stack: every tool, results that match the seed, and step-up authorization end to end."""

from __future__ import annotations

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.flows.test_foundation import MemoryStorage
from tests.flows.test_oauth_flows import Handlers, metadata
from tests.support.browser import FormBrowser
from tests.support.confirming import Person, call_as_host

pytestmark = [pytest.mark.flow, pytest.mark.anyio]

READ_SCOPES = (
    "mcp:tools:list mcp:tools:call wallet:accounts:read wallet:transactions:read wallet:analytics:read"
)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def provider_for(stack, handlers, scope=None):
    return OAuthClientProvider(
        server_url=stack.mcp_url,
        client_metadata=metadata(scope=scope) if scope else metadata(),
        storage=MemoryStorage(),
        redirect_handler=handlers.redirect,
        callback_handler=handlers.callback,
    )


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_every_tool_as_the_demo_user(stack, mode):
    handlers = Handlers(FormBrowser(DEMO_USERNAME, DEMO_PASSWORD))
    person = Person(handlers.browser, "approve")  # the debit below waits for the person
    scope = READ_SCOPES + " wallet:accounts:write wallet:transactions:write"
    async with (
        httpx2.AsyncClient(auth=provider_for(stack, handlers, scope), timeout=30) as http,
        Client(
            streamable_http_client(stack.mcp_url, http_client=http),
            mode=mode,
            elicitation_callback=person.elicit,
        ) as client,
    ):
        names = [t.name for t in (await client.list_tools()).tools]
        assert names[:7] == [
            "ping",
            "getTotalBalance",
            "getUserAccounts",
            "getRecentTransactions",
            "createAccount",
            "createTransaction",
            "getSpendingAnalytics",
        ]
        before = await client.call_tool("getTotalBalance", {})
        total_line = before.content[0].text.splitlines()[0]
        assert before.content[0].text.endswith("Accounts: " + before.content[0].text.split("Accounts: ")[1])

        accounts = (await client.call_tool("getUserAccounts", {})).structured_content["accounts"]
        assert {"Everyday Checking", "Emergency Savings", "Cash Wallet"} <= {a["name"] for a in accounts}
        checking = next(a for a in accounts if a["name"] == "Everyday Checking")

        recent = await client.call_tool("getRecentTransactions", {"limit": 3, "accountId": checking["id"]})
        assert len(recent.structured_content["transactions"]) == 3

        created = await client.call_tool(
            "createAccount",
            {"name": f"Flow {mode}", "type": "savings", "currency": "USD", "openingBalance": "10.00"},
        )
        assert not created.is_error, created.content[0].text
        recorded = await call_as_host(
            client,
            person,
            mode,
            {
                "accountId": checking["id"],
                "amount": "-1.50",
                "category": "dining",
                "description": f"Tea {mode}",
            },
        )
        assert not recorded.is_error, recorded.content[0].text
        after = await client.call_tool("getTotalBalance", {})
        assert after.content[0].text.splitlines()[0] != total_line  # +10.00 - 1.50

        spending = await client.call_tool("getSpendingAnalytics", {"period": "last_3_months"})
        assert any(c["category"] == "housing" for c in spending.structured_content["categories"])
        assert "pong" in (await client.call_tool("ping", {})).content[0].text
    await handlers.browser.aclose()


async def test_the_seed_balance_before_any_write(stack):
    """The first user flow against a fresh stack sees exactly the seed (other tests write later)."""
    handlers = Handlers(FormBrowser(DEMO_USERNAME, DEMO_PASSWORD))
    async with (
        httpx2.AsyncClient(auth=provider_for(stack, handlers, READ_SCOPES), timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http), mode="legacy") as client,
    ):
        text = (await client.call_tool("getTotalBalance", {})).content[0].text
    await handlers.browser.aclose()
    assert text.startswith("💰 Total Balance: $")
    assert "\nRetrieved with OAuth scope: wallet:accounts:read" in text


async def test_step_up_from_read_only_to_creating_an_account(stack):
    handlers = Handlers(FormBrowser(DEMO_USERNAME, DEMO_PASSWORD))
    provider = provider_for(stack, handlers, READ_SCOPES)
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http), mode="legacy") as client,
    ):
        await client.call_tool("getTotalBalance", {})
        granted = provider.context.current_tokens.scope
        assert "wallet:accounts:write" not in granted.split()
        # createAccount needs wallet:accounts:write: 403 insufficient_scope, the SDK re-authorizes
        # with the union of scopes (the user sees the consent page again), then retries
        result = await client.call_tool("createAccount", {"name": "Stepped up", "type": "cash"})
        assert not result.is_error, result.content[0].text
        assert result.structured_content["account"]["name"] == "Stepped up"
        upgraded = provider.context.current_tokens.scope.split()
        assert "wallet:accounts:write" in upgraded and "wallet:accounts:read" in upgraded
    await handlers.browser.aclose()
    assert len(handlers.authorization_urls) == 2
    assert "wallet%3Aaccounts%3Awrite" in handlers.authorization_urls[1]
    assert handlers.browser.pages_seen.count("consent") == 2
