"""A debit confirmed by the person, end to end: the official MCP SDK 2.x client signed in as the
demo user against the local stack, on both wires. Its elicitation callback is the host: it opens
the URL in the demo user's browser (`FormBrowser`, the session of the sign-in it did for the
authorization) and approves or declines on the real /account/confirm page.

2026-07-28: the SDK drives the multi round-trip itself (InputRequiredResult → callback → retry
with inputResponses and the requestState). 2025-11-25: the SDK raises the -32042 error; like a
host, the test hands its URL elicitation to the same callback and retries the same call."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.flows.test_oauth_flows import Handlers
from tests.flows.test_wallet_flows import READ_SCOPES, provider_for
from tests.support.browser import FormBrowser
from tests.support.confirming import Person, call_as_host

pytestmark = [pytest.mark.flow, pytest.mark.anyio]

SCOPE = READ_SCOPES + " wallet:transactions:write"


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def transactions(client: Client) -> list[dict]:
    return (await client.call_tool("getRecentTransactions", {"limit": 100})).structured_content[
        "transactions"
    ]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("decision", ["approve", "decline"])
async def test_the_person_decides_each_debit(stack, mode, decision):
    browser = FormBrowser(DEMO_USERNAME, DEMO_PASSWORD)
    person = Person(browser, decision)
    handlers = Handlers(browser)
    description = f"Flow {mode} {decision}"
    async with (
        httpx2.AsyncClient(auth=provider_for(stack, handlers, SCOPE), timeout=30) as http,
        Client(
            streamable_http_client(stack.mcp_url, http_client=http),
            mode=mode,
            elicitation_callback=person.elicit,
        ) as client,
    ):
        accounts = (await client.call_tool("getUserAccounts", {})).structured_content["accounts"]
        checking = next(a for a in accounts if a["name"] == "Everyday Checking")
        arguments = {
            "accountId": checking["id"],
            "amount": "-3.20",
            "category": "dining",
            "description": description,
        }
        result = await call_as_host(client, person, mode, arguments)
        recorded = [t for t in await transactions(client) if t["description"] == description]
        if decision == "approve":
            assert not result.is_error, result.content[0].text
            assert len(recorded) == 1 and recorded[0]["amount"] == "-3.20"
            # the same call again: never a second transaction on the first approval
            again = await client.call_tool("createTransaction", arguments) if mode != "legacy" else None
            if again is not None:
                assert again.is_error or again.structured_content["transaction"]["id"] == recorded[0]["id"]
        else:
            assert result.is_error and "declined" in result.content[0].text
            assert recorded == []
    await browser.aclose()
    assert len(person.opened) == 1


async def test_a_client_without_url_elicitation_is_told_which_page_to_open(stack):
    browser = FormBrowser(DEMO_USERNAME, DEMO_PASSWORD)
    handlers = Handlers(browser)
    async with (
        httpx2.AsyncClient(auth=provider_for(stack, handlers, SCOPE), timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http), mode="2026-07-28") as client,
    ):
        accounts = (await client.call_tool("getUserAccounts", {})).structured_content["accounts"]
        arguments = {
            "accountId": accounts[0]["id"],
            "amount": "-1",
            "category": "dining",
            "description": "No UI",
        }
        told = await client.call_tool("createTransaction", arguments)
        assert told.is_error
        text = told.content[0].text
        url = text.split("open ")[1].split(" ")[0]
        assert urlsplit(url).path == "/account/confirm" and "ask again" in text
        # the person follows the instructions, then asks again: recorded once
        await Person(browser, "approve").confirm(url)
        done = await client.call_tool("createTransaction", arguments)
        assert not done.is_error, done.content[0].text
        assert len([t for t in await transactions(client) if t["description"] == "No UI"]) == 1
    await browser.aclose()


async def test_an_app_limited_at_consent_cannot_reach_further_and_the_person_sees_it(stack):
    """The person allows the SDK client one account and a cap of 5 per payment on the real consent
    page; the client cannot read or debit another account, nor go over the cap; each refusal is
    on the person's /account page with its decision."""
    browser = FormBrowser(
        DEMO_USERNAME,
        DEMO_PASSWORD,
        choices={"cap_per_transaction": "5"},
        keep_accounts=("Everyday Checking",),
    )
    handlers = Handlers(browser)
    async with (
        httpx2.AsyncClient(auth=provider_for(stack, handlers, SCOPE), timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http), mode="2026-07-28") as client,
    ):
        accounts = (await client.call_tool("getUserAccounts", {})).structured_content["accounts"]
        assert [a["name"] for a in accounts] == ["Everyday Checking"]
        savings = browser.accounts_seen["Emergency Savings"]
        hidden = await client.call_tool("getRecentTransactions", {"accountId": savings})
        assert hidden.is_error and "no such account" in hidden.content[0].text
        elsewhere = await client.call_tool(
            "createTransaction",
            {"accountId": savings, "amount": "-1", "category": "dining", "description": "Elsewhere"},
        )
        assert elsewhere.is_error and "accounts you chose" in elsewhere.content[0].text
        over = await client.call_tool(
            "createTransaction",
            {"accountId": accounts[0]["id"], "amount": "-5.01", "category": "dining", "description": "Over"},
        )
        assert over.is_error and "5.00 USD per transaction" in over.content[0].text
    page = (await browser.client.get(f"{stack.base_url}/account")).text
    await browser.aclose()
    assert "refused: an account you did not choose" in page
    assert "refused: over your limit per payment" in page
    assert "1 chosen account, at most 5 per payment" in page
