"""Connection diagnostics in real Chromium, on a phone (390 px) and a desktop (1280 px): an
administrator finds a client's failed connection attempt on its page, with the reason, and the
recent failures of every client on their own page, linked from the client list; nothing wider than
the screen, text never markup.

The attempts are made from the outside, against the local stack, as a client would make them: a
redirect URI the client never registered, a token request with the wrong PKCE verifier, and a
registration refused."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Page

from tests.support.site import Browser, Client, Person, create_person, register
from tests.ui.test_narrow_screens import assert_no_horizontal_overflow, assert_within_reach

pytestmark = pytest.mark.flow

PHONE, DESKTOP = 390, 1280
SCOPE = "mcp:tools:list mcp:tools:call"
LONG_URI = "http://localhost:8765/callback/" + "a-rather-long-path-segment/" * 6 + "end"
UNREGISTERED_URI = "http://localhost:8765/callback/" + "an-unbroken-path-segment-" * 5 + "elsewhere"
"""Not registered, and one long word (the log keeps 200 characters of it)."""
REFUSED_NAME = "<b>Refused</b> registration of a desktop assistant"


@dataclass(frozen=True)
class Diagnosed:
    admin: Person
    client: Client
    session_cookie: tuple[str, str]


@pytest.fixture(scope="module")
def diagnosed(stack) -> Diagnosed:
    admin = create_person(stack, admin=True)
    person = create_person(stack)
    client = register(stack, name="Diagnosed desktop assistant", redirect_uris=(LONG_URI,))
    browser = Browser(stack.base_url)
    try:
        wrong_redirect = Client(stack, client.client_id, UNREGISTERED_URI, verifier=client.verifier)
        refused_page = browser.get(wrong_redirect.authorization_url(SCOPE))
        assert refused_page.status == 400
        landing = browser.authorize(client.authorization_url(SCOPE), person)
        wrong_verifier = Client(stack, client.client_id, client.redirect_uri, verifier="w" * 64)
        refused = wrong_verifier.exchange(landing)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        refused_registration = httpx.post(
            f"{stack.base_url}/oauth/register",
            json={"client_name": REFUSED_NAME, "redirect_uris": ["http://app.example.com/cb"]},
            timeout=30,
        )
        assert refused_registration.status_code == 400
    finally:
        browser.close()
    administrator = Browser(stack.base_url)  # a browser of their own: the one above is the person's
    try:
        administrator.sign_in(admin)
        (cookie,) = (c for c in administrator.http.cookies.jar if c.name.endswith("wallet_session"))
        return Diagnosed(admin, client, (cookie.name, cookie.value))
    finally:
        administrator.close()


def open_signed_in(page: Page, stack, diagnosed: Diagnosed, width: int, path: str) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    name, value = diagnosed.session_cookie
    page.context.add_cookies([{"name": name, "value": value, "url": stack.base_url}])
    page.goto(f"{stack.base_url}{path}")


def client_path(client_id: str) -> str:
    return "/admin/client?" + urlencode({"client_id": client_id})


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_an_admin_sees_a_clients_failed_attempt_on_its_page(stack, diagnosed, page, screenshot, width):
    open_signed_in(page, stack, diagnosed, width, client_path(diagnosed.client.client_id))
    assert page.locator("h2", has_text="Connection attempts").is_visible()
    token_row = page.locator("tr", has_text="invalid_grant")
    assert token_row.count() == 1
    text = token_row.inner_text()
    assert "token" in text and "code_verifier does not match the code_challenge" in text and "400" in text
    redirect_row = page.locator("tr", has_text="is not registered for this client")
    assert UNREGISTERED_URI in redirect_row.inner_text().replace("\n", "")
    # newest first: registration, the refused redirect URI, the attempt that worked up to the
    # token request, and the token request that failed
    rows = page.locator("h2:has-text('Connection attempts') + p + table tbody tr")
    steps = [
        (row.locator("td[data-label=Step]").inner_text(), row.locator("td[data-label=Outcome]").inner_text())
        for row in rows.all()
    ]
    assert steps == [
        ("token", "invalid_grant"),
        ("authorize", "ok"),  # redirected back with a code
        ("consent", "ok"),
        ("login", "ok"),
        ("authorize", "ok"),  # the login page shown
        ("authorize", "invalid_request"),
        ("registration", "ok"),
    ]
    assert_no_horizontal_overflow(page, width)
    redirect_row.scroll_into_view_if_needed()
    screenshot("client-attempts")


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_an_admin_finds_the_recent_failures_from_the_client_list(stack, diagnosed, page, screenshot, width):
    open_signed_in(page, stack, diagnosed, width, "/admin")
    assert_within_reach(page, "a:has-text('Recent connection failures')", width)
    page.click("a:has-text('Recent connection failures')")
    page.wait_for_url(f"{stack.base_url}/admin/connections")
    assert page.title() == "Recent connection failures"
    ours = page.locator("tr", has_text=diagnosed.client.client_id)
    assert ours.count() >= 2  # the redirect URI and the token request
    assert "invalid_grant" in ours.first.inner_text()  # newest first
    refused = page.locator("tr", has_text=REFUSED_NAME)  # the name as text, never markup
    assert refused.count() >= 1 and "invalid_redirect_uri" in refused.first.inner_text()
    assert page.locator("main b").count() == 0
    assert_no_horizontal_overflow(page, width)
    assert_within_reach(page, f"a[href='{client_path(diagnosed.client.client_id)}']", width)
    screenshot("recent-failures")
    page.locator(f"a[href='{client_path(diagnosed.client.client_id)}']").first.click()
    page.wait_for_url(f"{stack.base_url}{client_path(diagnosed.client.client_id)}")
    assert page.locator("h2", has_text="Connection attempts").is_visible()
