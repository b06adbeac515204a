"""Sign in with an upstream OpenID provider, end to end on the local stack: our authorization
endpoint → the provider's own login and consent pages (oidc-provider, a real OpenID provider on
loopback) → our callback → our consent page → our code → our token → an MCP tool call on the
wallet of the user the upstream identity is linked to."""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import jwt
import pytest

from devstack.seed import DEMO_PASSWORD, DEMO_USER_ID, DEMO_USERNAME
from tests.flows.test_foundation import MCP_HEADERS
from tests.forms import parse
from tests.support.site import USERS_TABLE, Browser, Person
from tests.support.upstream_oidc import UPSTREAM_NAME, UPSTREAM_SECRET, UpstreamStack, sign_in_upstream
from wallet_mcp.primitives import pkce
from wallet_mcp.storage.users import UserStore

pytestmark = pytest.mark.flow

CALLBACK = "http://localhost:8765/callback"
SCOPE = "mcp:tools:list mcp:tools:call wallet:accounts:read"


def register(base_url: str) -> str:
    response = httpx.post(
        f"{base_url}/oauth/register",
        json={
            "client_name": "Upstream flow test",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"])


def sign_in_through_upstream(upstream: UpstreamStack, account: str) -> dict[str, object]:
    """A person at a browser, from the client's authorization URL to the client's token response."""
    base = upstream.stack.base_url
    client_id = register(base)
    verifier = secrets.token_urlsafe(48)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "scope": SCOPE,
            "state": "client-state",
            "code_challenge": pkce.s256(verifier),
            "code_challenge_method": "S256",
            "resource": upstream.stack.mcp_url,
        }
    )
    with httpx.Client(timeout=30, follow_redirects=False) as browser:
        login = browser.get(f"{base}/oauth/authorize?{query}")
        assert login.status_code == 200
        (form,), text = parse(login.text)  # still exactly one form: username and password
        assert {"username", "password"} <= set(form.fields)
        assert f"Sign in with {UPSTREAM_NAME}" in text
        href = login.text.split('<a class="button" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")

        to_provider = browser.get(urljoin(str(login.url), href))
        assert to_provider.status_code == 303
        assert to_provider.headers["location"].startswith(upstream.oidc.issuer + "/")
        back = sign_in_upstream(browser, to_provider.headers["location"], account)
        assert back.startswith(f"{base}/oauth/authorize/upstream/example/callback?")

        consent = browser.get(back)
        assert consent.status_code == 200, consent.text
        (form,), text = parse(consent.text)
        assert ("decision", "approve") in form.buttons
        approved = browser.post(
            urljoin(str(consent.url), form.action), data=form.submission(button=("decision", "approve"))
        )
        assert approved.status_code == 303
        landing = urlsplit(approved.headers["location"])
        assert f"{landing.scheme}://{landing.netloc}{landing.path}" == CALLBACK
        returned = {k: v[0] for k, v in parse_qs(landing.query).items()}
        assert returned["state"] == "client-state" and returned["iss"] == base

    tokens = httpx.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": returned["code"],
            "redirect_uri": CALLBACK,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


def subject(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def test_an_upstream_sign_in_ends_with_our_token_for_the_linked_user(upstream_stack):
    tokens = sign_in_through_upstream(upstream_stack, "demo-upstream")
    access = str(tokens["access_token"])
    assert subject(access) == DEMO_USER_ID  # linked by the verified address: the demo user
    assert "refresh_token" in tokens

    call = httpx.post(
        upstream_stack.stack.mcp_url,
        headers={**MCP_HEADERS, "authorization": f"Bearer {access}"},
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "getTotalBalance", "arguments": {}},
        },
    )
    assert call.status_code == 200, call.text
    assert "💰 Total Balance: $5,432.10" in call.json()["result"]["content"][0]["text"]


def test_a_new_upstream_identity_gets_a_user_of_its_own_found_again_next_time(upstream_stack):
    first = subject(str(sign_in_through_upstream(upstream_stack, "newcomer")["access_token"]))
    assert first != DEMO_USER_ID
    again = subject(str(sign_in_through_upstream(upstream_stack, "newcomer")["access_token"]))
    assert again == first


def test_the_upstream_client_secret_never_reaches_the_logs(upstream_stack):
    sign_in_through_upstream(upstream_stack, "demo-upstream")
    time.sleep(0.5)
    logs = upstream_stack.stack.log_path.read_text()
    assert UPSTREAM_SECRET not in logs
    assert "id_token" not in logs


def account_sign_in_link(page: httpx.Response) -> str:
    return page.text.split('<a class="button" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")


def test_an_upstream_user_signs_in_to_the_account_pages(upstream_stack):
    """/account offers the providers too: a user who has no password (created by an upstream
    sign-in) can still see and revoke the apps connected to their wallet."""
    base = upstream_stack.stack.base_url
    with httpx.Client(timeout=30, follow_redirects=False) as browser:
        page = browser.get(f"{base}/account", params={"next": "/admin"})
        assert page.status_code == 200
        (form,), text = parse(page.text)  # the password form stays the only form
        assert {"username", "password"} <= set(form.fields)
        assert f"Sign in with {UPSTREAM_NAME}" in text
        to_provider = browser.get(urljoin(str(page.url), account_sign_in_link(page)))
        assert to_provider.status_code == 303, to_provider.text
        assert to_provider.headers["location"].startswith(upstream_stack.oidc.issuer + "/")
        back = sign_in_upstream(browser, to_provider.headers["location"], "demo-upstream")
        landed = browser.get(back)
        assert landed.status_code == 303, landed.text
        assert landed.headers["location"] == "/admin"  # where the sign-in page said to go next
        admin = browser.get(f"{base}/admin")
        assert admin.status_code == 200  # the linked demo user, who is an admin
        assert "Signed in as" in admin.text and "demo" in admin.text


def test_an_account_sign_in_returns_only_to_the_browser_that_started_it(upstream_stack):
    base = upstream_stack.stack.base_url
    with httpx.Client(timeout=30, follow_redirects=False) as browser:
        page = browser.get(f"{base}/account")
        to_provider = browser.get(urljoin(str(page.url), account_sign_in_link(page)))
        back = sign_in_upstream(browser, to_provider.headers["location"], "demo-upstream")
    with httpx.Client(timeout=30, follow_redirects=False) as other:
        refused = other.get(back)
    assert refused.status_code == 403
    assert "wallet_session" not in refused.headers.get("set-cookie", "")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/oauth/token"])
def test_an_account_sign_in_never_leaves_the_account_pages(upstream_stack, target):
    base = upstream_stack.stack.base_url
    with httpx.Client(timeout=30, follow_redirects=False) as browser:
        start = browser.get(f"{base}/oauth/authorize/upstream/example", params={"next": target})
        assert start.status_code == 303
        back = sign_in_upstream(browser, start.headers["location"], "demo-upstream")
        landed = browser.get(back)
    assert landed.status_code == 303 and landed.headers["location"] == "/account"


def test_a_user_an_admin_disabled_is_refused_at_upstream_sign_in_with_a_clear_page(upstream_stack):
    """Issue 13: after an administrator disables a person, the provider's sign-in no longer lets
    them in — a page that says so, never a code."""
    stack = upstream_stack.stack
    upstream_stack.oidc.set_account("leaver", email="leaver@example.org", email_verified=True, name="Leaver")
    user_id = subject(str(sign_in_through_upstream(upstream_stack, "leaver")["access_token"]))
    user = UserStore(stack.client("dynamodb"), USERS_TABLE).get_by_id(user_id)
    assert user is not None

    admin = Browser(stack.base_url)
    admin.sign_in(Person(DEMO_USERNAME, DEMO_PASSWORD, DEMO_USER_ID))
    done = admin.press(
        f"/admin/users?{urlencode({'username': user.username})}",
        "/admin/users/disable",
        username=user.username,
    )
    admin.close()
    assert done.status == 200, done.text[:500]

    base = stack.base_url
    query = urlencode(
        {
            "response_type": "code",
            "client_id": register(base),
            "redirect_uri": CALLBACK,
            "scope": SCOPE,
            "state": "client-state",
            "code_challenge": pkce.s256(secrets.token_urlsafe(48)),
            "code_challenge_method": "S256",
        }
    )
    with httpx.Client(timeout=30, follow_redirects=False) as browser:
        login = browser.get(f"{base}/oauth/authorize?{query}")
        href = login.text.split('<a class="button" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        to_provider = browser.get(urljoin(str(login.url), href))
        back = sign_in_upstream(browser, to_provider.headers["location"], "leaver")
        refused = browser.get(back)
    assert "location" not in refused.headers
    assert refused.status_code in (400, 403)
    assert "This account is disabled." in refused.text
