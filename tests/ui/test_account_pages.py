"""/account and /admin in real Chromium: an administrator manages a client, a user withdraws an
app's access, and the effect is checked from the outside (the token endpoint)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.ui.test_authorization_pages import CALLBACK, authorize_url, capture_callback, register
from wallet_mcp.primitives import pkce

pytestmark = pytest.mark.flow


def sign_in(page: Page) -> None:
    page.fill("#username", DEMO_USERNAME)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")


def client_credentials(stack, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{stack.base_url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "wallet:accounts:read"},
        auth=(client_id, secret),
    )


def test_admin_creates_a_client_and_rotates_its_secret(stack, page, screenshot):
    page.goto(f"{stack.base_url}/admin")
    assert page.title() == "Sign in"  # sent to sign in first, then back to /admin
    sign_in(page)
    page.wait_for_url(f"{stack.base_url}/admin")
    assert page.title() == "Clients"
    assert page.get_by_text("mcp-demo-client").first.is_visible()
    screenshot("clients")

    page.click("text=New confidential client")
    page.fill("#client_name", "Nightly <i>report</i>")
    page.fill("#redirect_uris", "https://reports.example.com/callback")
    page.check("input[name=grant_types][value=client_credentials]")
    page.uncheck("input[name=scope][value='wallet:transactions:write']")
    page.fill("#owner", DEMO_USERNAME)
    screenshot("new-client")
    page.click("button:has-text('Create client')")
    secret = page.inner_text("#client-secret")
    assert secret.startswith("secret_")
    assert page.get_by_text("Nightly <i>report</i>").first.is_visible()  # text, never markup
    client_id = page.input_value("form:has(input[value=rotate_secret]) input[name=client_id]")
    screenshot("created")
    assert client_credentials(stack, client_id, secret).status_code == 200

    page.click("button:has-text('Rotate secret')")
    screenshot("confirm-rotate")
    assert client_credentials(stack, client_id, secret).status_code == 200  # asking changes nothing
    page.click("button:has-text('Yes, rotate the secret')")
    rotated = page.inner_text("#client-secret")
    assert rotated != secret
    screenshot("rotated")
    old = client_credentials(stack, client_id, secret)
    assert old.status_code == 401 and old.json()["error"] == "invalid_client"
    assert client_credentials(stack, client_id, rotated).status_code == 200
    assert "client_secret_rotated" in page.inner_text("main")  # the client's recent events

    page.click("button:has-text('Disable')")
    assert page.get_by_role("status").inner_text() == "Client disabled."
    assert client_credentials(stack, client_id, rotated).status_code == 401
    page.click("button:has-text('Delete')")
    page.click("text=Cancel")  # back to the client's page, nothing deleted
    assert "disabled" in page.inner_text("main")
    page.click("button:has-text('Delete')")
    screenshot("confirm-delete")
    page.click("button:has-text('Yes, delete the client')")
    page.wait_for_url(f"{stack.base_url}/admin?done=deleted")
    # a tombstone stays listed, so that nothing (a registration, a metadata document) brings it back
    assert "deleted" in page.locator("tr", has_text=client_id).inner_text()


def test_user_revokes_a_connected_app(stack, page, screenshot):
    client_id = register(stack, "Budget Buddy")
    landed = capture_callback(page)
    page.goto(authorize_url(stack, client_id))
    sign_in(page)
    page.click("button[value=approve]")
    page.wait_for_url(f"{CALLBACK}*")
    code = parse_qs(urlsplit(landed[0]).query)["code"][0]
    tokens = httpx.post(
        f"{stack.base_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": "u" * 60,
            "client_id": client_id,
        },
    ).json()
    assert pkce.s256("u" * 60)  # the verifier authorize_url's challenge was made from

    # same browser: the session from the authorization endpoint carries over
    page.goto(f"{stack.base_url}/account")
    assert page.title() == "Connected apps"
    row = page.locator("tr", has_text="Budget Buddy")
    assert "wallet:accounts:read" in row.inner_text()
    screenshot("connected")
    row.locator("button:has-text('Revoke')").click()
    assert "Access revoked" in page.get_by_role("status").inner_text()
    assert page.locator("tr", has_text="Budget Buddy").count() == 0
    screenshot("revoked")

    refreshed = httpx.post(
        f"{stack.base_url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client_id,
        },
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
