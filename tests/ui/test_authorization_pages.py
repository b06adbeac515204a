"""The login and consent pages in real Chromium: what a person sees and does."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from wallet_mcp.primitives import pkce

pytestmark = pytest.mark.flow

CALLBACK = "http://localhost:8765/callback"


def register(stack, name: str) -> str:
    response = httpx.post(
        f"{stack.base_url}/oauth/register",
        json={
            "client_name": name,
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        },
    )
    assert response.status_code == 201
    return str(response.json()["client_id"])


def authorize_url(
    stack, client_id: str, scope: str = "mcp:tools:list mcp:tools:call wallet:accounts:read"
) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": scope,
            "state": "ui-state",
            "code_challenge": pkce.s256("u" * 60),
            "code_challenge_method": "S256",
        }
    )
    return f"{stack.base_url}/oauth/authorize?{query}"


def capture_callback(page: Page) -> list[str]:
    landed: list[str] = []

    def handle(route: Route) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Back in the app</h1>")

    page.route(f"{CALLBACK}*", handle)
    return landed


def test_sign_in_and_allow(stack, page, screenshot):
    client_id = register(stack, "Budget <b>Buddy</b>")
    landed = capture_callback(page)
    page.goto(authorize_url(stack, client_id))
    assert page.title() == "Sign in"
    assert page.get_by_text("Budget <b>Buddy</b>").first.is_visible()  # shown as text, not markup
    screenshot("login")

    page.fill("#username", DEMO_USERNAME)
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "Invalid username or password."
    screenshot("login-error")

    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("button[value=approve]")
    text = page.inner_text("main")
    assert "Budget <b>Buddy</b>" in text
    assert "localhost:8765" in text
    assert "See which wallet tools are available" in text
    assert "See your accounts and balances" in text
    screenshot("consent")

    page.click("button[value=approve]")
    page.wait_for_url(f"{CALLBACK}*")
    assert landed
    params = {k: v[0] for k, v in parse_qs(urlsplit(landed[0]).query).items()}
    assert params["state"] == "ui-state"
    assert params["iss"] == stack.base_url
    assert len(params["code"]) >= 43


def test_deny_returns_access_denied(stack, page):
    client_id = register(stack, "Denied app")
    landed = capture_callback(page)
    page.goto(authorize_url(stack, client_id))
    page.fill("#username", DEMO_USERNAME)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.click("button[value=deny]")
    page.wait_for_url(f"{CALLBACK}*")
    params = parse_qs(urlsplit(landed[0]).query)
    assert params["error"] == ["access_denied"]


def test_pages_cannot_be_framed(stack, page):
    client_id = register(stack, "Framed")
    url = authorize_url(stack, client_id)
    page.route(
        "http://attacker.test/",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body=f'<iframe id="f" src="{url}" width="600" height="400"></iframe>',
        ),
    )
    page.goto("http://attacker.test/")
    page.wait_for_timeout(1000)
    frame = page.frame_locator("#f")
    assert frame.locator("#password").count() == 0  # frame-ancestors 'none' / X-Frame-Options: DENY


def test_an_unknown_client_gets_a_local_error_page(stack, page, screenshot):
    page.goto(authorize_url(stack, "no-such-client"))
    assert page.title() == "Cannot authorize"
    assert "This application is unknown here" in page.inner_text("main")
    screenshot("error")
