"""The wallet prompts through the official MCP SDK client, signed in as the demo user, against the
local stack, on both wires: listing, completing an argument, rendering from the user's wallet.

(The 403 step-up challenge of a prompt whose scope the token lacks is in
tests/handlers/test_mcp_prompts.py: here the first challenge already asks for every read scope, so
the SDK's sign-in grants what the prompts read.)"""

from __future__ import annotations

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import PromptReference

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.flows.test_oauth_flows import Handlers
from tests.flows.test_wallet_flows import provider_for
from tests.support.browser import FormBrowser

pytestmark = [pytest.mark.flow, pytest.mark.anyio]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_prompts_and_completion_as_the_demo_user(stack, mode):
    handlers = Handlers(FormBrowser(DEMO_USERNAME, DEMO_PASSWORD))
    async with (
        httpx2.AsyncClient(auth=provider_for(stack, handlers), timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http), mode=mode) as client,
    ):
        listed = await client.list_prompts()
        assert [p.name for p in listed.prompts] == [
            "monthly_spending_review",
            "budget_check",
            "explain_transaction",
            "account_activity",
        ]
        suggested = await client.complete(
            PromptReference(type="ref/prompt", name="account_activity"), {"name": "account", "value": "cash"}
        )
        assert suggested.completion.values == ["Cash Wallet"]
        activity = await client.get_prompt("account_activity", {"account": suggested.completion.values[0]})
        assert activity.messages[0].role == "user"
        assert 'my account "Cash Wallet" (cash, USD)' in activity.messages[0].content.text

        suggested = await client.complete(
            PromptReference(type="ref/prompt", name="monthly_spending_review"), {"name": "month", "value": ""}
        )
        assert suggested.completion.values  # the months the demo wallet has spending in, newest first
        review = await client.get_prompt("monthly_spending_review", {"month": suggested.completion.values[0]})
        assert review.messages[0].content.text.startswith("Please review my spending for ")
        assert "Total: $" in review.messages[0].content.text
    await handlers.browser.aclose()
