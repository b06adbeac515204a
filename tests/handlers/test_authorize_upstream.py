"""Signing in with an upstream OpenID provider, through the authorization function's real handler,
against a real OpenID provider (oidc-provider on Node.js, tests/support/upstream_oidc.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import httpx
import pytest

from devstack.seed import DEMO_USER_ID
from devstack.template import Stack
from tests.conftest import BASE_URL, header, set_cookies
from tests.forms import parse
from tests.handlers.test_authorize import FORM, REDIRECT, params
from tests.support.local_stack import free_port
from tests.support.upstream_oidc import UpstreamOidc, running_provider, sign_in_upstream
from wallet_mcp import aws
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.identity_links import IdentityLinkStore, link_key
from wallet_mcp.storage.users import UserStore

SECRET = "upstream-client-secret-for-tests"
ACCOUNTS = {
    # a verified address that is the demo user's: links to the demo user
    "alice": {"email": "demo@example.com", "email_verified": True, "name": "Alice Upstream"},
    # nobody here: a new user
    "bob": {"email": "bob@example.net", "email_verified": True, "name": "Bob"},
    # the demo user's address, but not verified (as Microsoft sends every address): must not link
    "mallory": {"email": "demo@example.com", "name": "Mallory"},
}


PROVIDER_NAMES = {"test": "Test IdP", "strict": "Strict IdP", "post": "Post IdP", "down": "Down IdP"}


def callback(provider_id: str) -> str:
    return f"{BASE_URL}/oauth/authorize/upstream/{provider_id}/callback"


@pytest.fixture(scope="module")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamOidc]:
    clients = [
        {
            "client_id": "wallet-test",
            "client_secret": SECRET,
            "redirect_uris": [callback("test"), callback("strict")],
            "token_endpoint_auth_method": "client_secret_basic",
        },
        {
            "client_id": "wallet-post",
            "client_secret": SECRET,
            "redirect_uris": [callback("post")],
            "token_endpoint_auth_method": "client_secret_post",
        },
    ]
    # claims in the ID token, as Google and Microsoft send them (the flow tests use userinfo)
    with running_provider(
        tmp_path_factory.mktemp("oidc"), clients=clients, accounts=ACCOUNTS, conform=False
    ) as provider:
        yield provider


@pytest.fixture
def accounts(oidc: UpstreamOidc) -> Iterator[UpstreamOidc]:
    yield oidc
    oidc.accounts_file.write_text(json.dumps(ACCOUNTS))


def providers(issuer: str) -> list[dict[str, object]]:
    return [
        {
            "id": "test",
            "name": "Test IdP",
            "issuer": issuer,
            "client_id": "wallet-test",
            "client_secret": "ssm:/wallet-mcp/test-idp-secret",
        },
        {
            "id": "strict",
            "name": "Strict IdP",
            "issuer": issuer,
            "client_id": "wallet-test",
            "client_secret": "ssm:/wallet-mcp/test-idp-secret",
            "link_by_email": False,
            "create_users": False,
        },
        {
            "id": "post",
            "name": "Post IdP",
            "issuer": issuer,
            "client_id": "wallet-post",
            "client_secret": "secretsmanager:wallet-mcp/post-idp",
            "token_endpoint_auth_method": "client_secret_post",
        },
        {
            "id": "down",
            "name": "Down IdP",
            "issuer": f"http://127.0.0.1:{free_port()}",
            "client_id": "nobody",
        },
    ]


@pytest.fixture
def fn(load_function, aws_stack: Stack, oidc: UpstreamOidc):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id="web-app",
            client_name="Budget app",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(REDIRECT,),
            scope=("mcp:tools:list", "mcp:tools:call", "wallet:accounts:read"),
            created_at=0,
            application_type="web",
        )
    )
    boto3.client("ssm").put_parameter(Name="/wallet-mcp/test-idp-secret", Value=SECRET, Type="SecureString")
    boto3.client("secretsmanager").create_secret(
        Name="wallet-mcp/post-idp", SecretString=json.dumps({"client_secret": SECRET})
    )
    variant = Stack(
        aws_stack.template,
        parameters={**aws_stack.parameters, "UpstreamIdentityProviders": json.dumps(providers(oidc.issuer))},
    )
    variant.physical_ids = dict(aws_stack.physical_ids)
    return load_function("AuthorizeFunction", variant)


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        yield client


def login_page(fn):
    response = fn.request("GET", "/oauth/authorize", query=urlencode(params()))
    assert response.status == 200
    return response, set_cookies(response)


def links(html: str) -> dict[str, str]:
    """Upstream buttons on the login page: text -> href."""
    found = {}
    for chunk in html.split('<a class="button" href="')[1:]:
        href, _, rest = chunk.partition('">')
        found[rest.split("</a>", 1)[0]] = href.replace("&amp;", "&")
    return found


def come_back(fn, cookies, location: str):
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == BASE_URL, location
    return fn.request("GET", parts.path, query=parts.query, cookies=cookies)


def sign_in(fn, browser, account: str, provider_id: str = "test"):
    """Our login page → the provider → back: our answer to the callback, and the cookies."""
    first, cookies = login_page(fn)
    page = first.body.decode()
    href = links(page)[f"Sign in with {PROVIDER_NAMES[provider_id]}"]
    path, _, query = href.partition("?")
    started = fn.request("GET", path, query=query, cookies=cookies)
    assert started.status == 303, started.body
    back = sign_in_upstream(browser, header(started, "location"), account)
    answer = come_back(fn, cookies, back)
    return answer, cookies | set_cookies(answer), back


def approve(fn, cookies, consent):
    (form,), _ = parse(consent.body.decode())
    body = urlencode(form.submission(button=("decision", "approve")))
    return fn.request("POST", "/oauth/authorize", headers=FORM, body=body, cookies=cookies)


def audit_events(subject: str) -> list[str]:
    return [e["event"] for e in AuditLog(aws.dynamodb(), "wallet-mcp-local-AuditTable").of(subject)]


# --- the login page -------------------------------------------------------------------------------


def test_login_page_offers_each_provider_as_a_link_and_keeps_one_form(fn):
    response, _ = login_page(fn)
    html = response.body.decode()
    forms, _ = parse(html)
    assert len(forms) == 1 and forms[0].method == "post"
    assert {"username", "password"} <= set(forms[0].fields)
    buttons = links(html)
    assert list(buttons) == [
        "Sign in with Test IdP",
        "Sign in with Strict IdP",
        "Sign in with Post IdP",
        "Sign in with Down IdP",
    ]
    assert all(
        href.startswith("/oauth/authorize/upstream/") and "request_id=" in href for href in buttons.values()
    )
    assert "form-action 'self' https://app.example.com" in header(response, "content-security-policy")


def test_no_provider_configured_no_link(load_function, aws_stack):
    authorize = load_function("AuthorizeFunction")
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id="web-app",
            client_name="Budget app",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code",),
            redirect_uris=(REDIRECT,),
            scope=("mcp:tools:list", "mcp:tools:call"),
            created_at=0,
        )
    )
    response = authorize.request("GET", "/oauth/authorize", query=urlencode(params()))
    assert response.status == 200
    assert links(response.body.decode()) == {}
    assert authorize.request("GET", "/oauth/authorize/upstream/test", query="request_id=x").status == 404


# --- signing in -----------------------------------------------------------------------------------


def test_a_verified_email_links_the_existing_user_and_continues_to_consent(fn, browser, oidc):
    answer, cookies, back = sign_in(fn, browser, "alice")
    returned = parse_qs(urlsplit(back).query)
    assert set(returned) >= {"code", "state"}
    assert answer.status == 200, answer.body
    (form,), text = parse(answer.body.decode())
    assert "Signed in as demo" in text
    assert ("decision", "approve") in form.buttons
    assert "wallet_session" in cookies
    approved = approve(fn, cookies, answer)
    assert approved.status == 303
    location = header(approved, "location")
    assert location.startswith(REDIRECT + "?") and "code=" in location and "state=xyz-state" in location

    link = IdentityLinkStore(aws.dynamodb(), "wallet-mcp-local-UsersTable").get(oidc.issuer, "alice")
    assert link is not None and link.user_id == DEMO_USER_ID
    events = audit_events(DEMO_USER_ID)
    assert "upstream_identity_linked" in events and "upstream_login_succeeded" in events


def test_a_new_identity_creates_a_user_and_is_found_again_by_its_subject_after_an_email_change(
    fn, browser, accounts
):
    answer, _, _ = sign_in(fn, browser, "bob")
    assert answer.status == 200
    assert "Signed in as bob@example.net" in parse(answer.body.decode())[1]
    users = UserStore(aws.dynamodb(), "wallet-mcp-local-UsersTable")
    bob = users.get("bob@example.net")
    assert bob is not None and bob.password_hash is None and bob.email == "bob@example.net"
    assert bob.display_name == "Bob"
    assert "user_created" in audit_events(bob.user_id)

    accounts.set_account("bob", email="robert@example.org", email_verified=True, name="Robert")
    again, _, _ = sign_in(fn, browser, "bob")
    assert "Signed in as bob@example.net" in parse(again.body.decode())[1]
    assert users.get("robert@example.org") is None


def test_an_unverified_email_never_links_an_existing_user(fn, browser):
    answer, _, _ = sign_in(fn, browser, "mallory")
    assert answer.status == 200
    text = parse(answer.body.decode())[1]
    assert "Signed in as demo" not in text
    assert "Signed in as test-" in text  # a user of its own, named after the identity
    created = [
        u
        for u in IdentityLinkStore(aws.dynamodb(), "wallet-mcp-local-UsersTable").users_with_email(
            "demo@example.com"
        )
    ]
    assert [u.user_id for u in created] == [DEMO_USER_ID]  # the address was not given to the new user


def test_a_provider_that_may_neither_link_nor_create_refuses_on_the_login_page(fn, browser):
    answer, _, _ = sign_in(fn, browser, "alice", provider_id="strict")
    assert answer.status == 400
    forms, text = parse(answer.body.decode())
    assert len(forms) == 1 and "password" in forms[0].fields  # the login page again, usable
    assert "No account here matches this Strict IdP sign-in" in text
    assert "upstream_login_failed" in audit_events("upstream:strict")


def test_client_secret_post_with_the_secret_in_secrets_manager(fn, browser):
    answer, _, _ = sign_in(fn, browser, "alice", provider_id="post")
    assert answer.status == 200
    assert "Signed in as demo" in parse(answer.body.decode())[1]


# --- what must fail, and how ------------------------------------------------------------------------


def authorization_request(fn, provider_id: str = "test"):
    first, cookies = login_page(fn)
    href = links(first.body.decode())[f"Sign in with {PROVIDER_NAMES[provider_id]}"]
    path, _, query = href.partition("?")
    started = fn.request("GET", path, query=query, cookies=cookies)
    location = header(started, "location")
    return cookies, location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_the_request_upstream_carries_state_nonce_and_pkce(fn, oidc):
    _, location, sent = authorization_request(fn)
    assert location.startswith(oidc.issuer + "/")
    assert sent["response_type"] == "code" and sent["client_id"] == "wallet-test"
    assert sent["redirect_uri"] == callback("test")
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert len(sent["state"]) >= 43 and len(sent["nonce"]) >= 43
    assert set(sent["scope"].split()) == {"openid", "email", "profile"}


def test_an_error_from_the_provider_is_shown_on_the_login_page_never_redirected(fn):
    cookies, _, sent = authorization_request(fn)
    query = urlencode({"error": "access_denied", "error_description": "<b>no</b>", "state": sent["state"]})
    answer = fn.request("GET", "/oauth/authorize/upstream/test/callback", query=query, cookies=cookies)
    assert answer.status == 400
    assert header(answer, "location") is None
    _, text = parse(answer.body.decode())
    assert "Test IdP did not sign you in (access_denied)" in text
    assert "<b>" not in answer.body.decode()


def test_a_forged_code_is_refused_by_the_provider_and_shown_as_such(fn):
    cookies, _, sent = authorization_request(fn)
    query = urlencode({"code": "forged", "state": sent["state"]})
    answer = fn.request("GET", "/oauth/authorize/upstream/test/callback", query=query, cookies=cookies)
    assert answer.status == 400
    assert "Test IdP refused the sign-in (invalid_grant)" in parse(answer.body.decode())[1]


def test_a_state_works_once_and_only_in_the_browser_that_started_it(fn, browser):
    cookies, location, _ = authorization_request(fn)
    back = sign_in_upstream(browser, location, "alice")
    stranger = come_back(fn, {"wallet_authz": "another browser"}, back)
    assert stranger.status == 403
    assert header(stranger, "location") is None
    # the attempt consumed the state: the rightful browser must start again
    assert come_back(fn, cookies, back).status == 400

    cookies, location, _ = authorization_request(fn)
    back = sign_in_upstream(browser, location, "alice")
    assert come_back(fn, cookies, back).status == 200
    replay = come_back(fn, cookies, back)
    assert replay.status == 400
    assert "expired or was already used" in parse(replay.body.decode())[1]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 400),
        ("state=unknown&code=x", 400),
        ("error=access_denied", 400),
    ],
)
def test_callbacks_without_a_known_state_get_a_local_error_page(fn, query, status):
    answer = fn.request("GET", "/oauth/authorize/upstream/test/callback", query=query)
    assert answer.status == status
    assert header(answer, "location") is None
    assert "Cannot sign in" in answer.body.decode()


def test_starting_needs_the_pending_request_of_this_browser(fn):
    first, cookies = login_page(fn)
    href = links(first.body.decode())["Sign in with Test IdP"]
    path, _, query = href.partition("?")
    assert fn.request("GET", path, query=query).status == 403
    assert fn.request("GET", path, query="request_id=nope", cookies=cookies).status == 400
    assert fn.request("GET", "/oauth/authorize/upstream/nobody", query=query, cookies=cookies).status == 404


def test_an_unreachable_provider_is_a_clear_page_not_a_crash(fn):
    first, cookies = login_page(fn)
    href = links(first.body.decode())["Sign in with Down IdP"]
    path, _, query = href.partition("?")
    answer = fn.request("GET", path, query=query, cookies=cookies)
    assert answer.status == 502
    forms, text = parse(answer.body.decode())
    assert "Sign-in with Down IdP is unavailable right now" in text
    assert len(forms) == 1  # the login page again: the password still works
    # its CSRF token was renewed and is accepted
    body = urlencode(forms[0].submission({"username": "demo", "password": "demo-password"}))
    assert fn.request("POST", "/oauth/authorize", headers=FORM, body=body, cookies=cookies).status == 200


def test_links_stay_out_of_tables_indexes_and_logins(fn, browser, oidc):
    sign_in(fn, browser, "alice")
    users = UserStore(aws.dynamodb(), "wallet-mcp-local-UsersTable")
    assert users.get_by_id(DEMO_USER_ID).username == "demo"
    # no login name reaches a link item (usernames are lower-cased; link keys are not)
    assert users.get(link_key(oidc.issuer, "alice")) is None
