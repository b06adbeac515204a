"""/account/confirm in real Chromium on a phone (390 px) and a desktop (1280 px): what the person
is asked to approve is all there and fits, both buttons and (for this large payment) the password
field are within reach, approving works by tapping, and the confirmation then shows on /account.

The pending operation is written as the MCP function writes it (the flow tests create them through
the MCP client); a long account name, description and client name test the wrapping."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page

from tests.support.site import Browser, create_person, register
from tests.ui.test_narrow_screens import assert_no_horizontal_overflow, assert_within_reach
from wallet_mcp.credentials import opaque
from wallet_mcp.wallet.confirmations import CONFIRMATION_TTL, Confirmation, ConfirmationStore, Operation

pytestmark = pytest.mark.flow

WALLET = "wallet-mcp-local-WalletTable"
LONG_ACCOUNT = "Joint household everyday checking account for groceries and utilities"
LONG_DESCRIPTION = "Weekly groceries at the farmers' market, bread, cheese, vegetables " * 3
CLIENT_NAME = "Household Budget Planner and Monthly Spending Review Assistant"


def pending(stack, user_id: str, client_id: str) -> str:
    """A pending confirmation of the person's; its op id (what the URL carries)."""
    op_id = opaque.new_secret("op_")
    now = int(time.time())
    ConfirmationStore(stack.client("dynamodb"), WALLET).create(
        Confirmation(
            op_digest=opaque.digest(op_id),
            user_id=user_id,
            client_id=client_id,
            token_id="ui-test",
            args_digest="0" * 64,
            operation=Operation(
                tool="createTransaction",
                account_id="acct-ui",
                account_name=LONG_ACCOUNT,
                amount_minor=-123456,
                currency="USD",
                category="groceries",
                description=LONG_DESCRIPTION.strip()[:200],
                occurred_at=None,
            ),
            status="pending",
            created_at=now,
            expires_at=now + CONFIRMATION_TTL,
            nonce="ui-test",
        )
    )
    return op_id


def signed_in(page: Page, stack, person) -> None:
    browser = Browser(stack.base_url)
    try:
        browser.sign_in(person)
        (cookie,) = (c for c in browser.http.cookies.jar if c.name.endswith("wallet_session"))
        page.context.add_cookies([{"name": cookie.name, "value": cookie.value, "url": stack.base_url}])
    finally:
        browser.close()


@pytest.mark.parametrize("width", [390, 1280])
def test_the_confirmation_page_fits_and_approving_works(stack, page, screenshot, width):
    person = create_person(stack)
    client = register(stack, name=CLIENT_NAME)
    op_id = pending(stack, person.user_id, client.client_id)
    signed_in(page, stack, person)
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{stack.base_url}/account/confirm?{urlencode({'op': op_id})}")

    assert page.locator("main h1").inner_text() == "Confirm a payment"
    text = page.inner_text("main")
    for shown in ("-$1,234.56", LONG_ACCOUNT, CLIENT_NAME, "groceries", "not verified"):
        assert shown in text, shown
    assert_no_horizontal_overflow(page, width)
    assert_within_reach(page, "button:has-text('Approve payment')", width)
    assert_within_reach(page, "button:has-text('Decline')", width)
    assert_within_reach(page, "input#password", width)  # over $500: the password again
    page.evaluate("() => window.scrollTo(0, 0)")
    screenshot("confirm")

    page.fill("input#password", person.password)
    page.click("button:has-text('Approve payment')")
    assert "Approved. Go back to the application" in page.inner_text("main")
    assert page.locator("button:has-text('Approve payment')").count() == 0
    assert_no_horizontal_overflow(page, width)

    page.goto(f"{stack.base_url}/account")
    row = page.locator("tr", has_text=LONG_ACCOUNT)
    assert "Approved, not yet used" in row.inner_text()
    assert_no_horizontal_overflow(page, width)
    screenshot("account")
