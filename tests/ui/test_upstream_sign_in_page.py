"""'Sign in with …' in real Chromium: our login page, the provider's own pages (oidc-provider on
another origin), back through our callback to our consent page and the client's redirect URI, with
the browser's own cookie rules (SameSite=Lax on a cross-site return) and our pages' CSP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page

from tests.support.upstream_oidc import UPSTREAM_NAME
from tests.ui.test_authorization_pages import CALLBACK, authorize_url, capture_callback, register

pytestmark = pytest.mark.flow


def test_sign_in_with_the_upstream_provider_and_allow(upstream_stack, page: Page, screenshot):
    stack = upstream_stack.stack
    # the provider's development pages link a web font; nothing leaves this machine
    page.route("https://fonts.googleapis.com/**", lambda route: route.abort())
    client_id = register(stack, "Upstream UI app")
    landed = capture_callback(page)
    page.goto(authorize_url(stack, client_id))
    assert page.title() == "Sign in"
    assert page.locator("form").count() == 1
    button = page.get_by_role("link", name=f"Sign in with {UPSTREAM_NAME}")
    assert button.is_visible()
    screenshot("login")

    button.click()
    page.wait_for_url(f"{upstream_stack.oidc.issuer}/**")
    page.fill("input[name=login]", "demo-upstream")
    page.fill("input[name=password]", "anything")
    page.click("button[type=submit]")
    page.click("button[type=submit]")  # the provider's consent: Continue

    page.wait_for_selector("button[value=approve]")
    assert "Signed in as demo" in page.inner_text("main")
    screenshot("consent")
    page.click("button[value=approve]")
    page.wait_for_url(f"{CALLBACK}*")
    params = {k: v[0] for k, v in parse_qs(urlsplit(landed[0]).query).items()}
    assert params["state"] == "ui-state" and params["iss"] == stack.base_url
    assert len(params["code"]) >= 43


def test_cancelling_at_the_provider_comes_back_to_our_login_page(upstream_stack, page: Page):
    stack = upstream_stack.stack
    page.route("https://fonts.googleapis.com/**", lambda route: route.abort())
    page.goto(authorize_url(stack, register(stack, "Cancelled app")))
    page.get_by_role("link", name=f"Sign in with {UPSTREAM_NAME}").click()
    page.wait_for_url(f"{upstream_stack.oidc.issuer}/**")
    page.get_by_role("link", name="[ Cancel ]").click()  # the provider answers error=access_denied
    page.wait_for_selector("[role=alert]")
    assert page.title() == "Sign in"
    assert f"{UPSTREAM_NAME} did not sign you in (access_denied)" in page.get_by_role("alert").inner_text()
    assert page.url.startswith(f"{stack.base_url}/oauth/authorize/upstream/example/callback")
