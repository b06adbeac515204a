"""/account and /admin through the real handler: sign-in, connected apps, withdrawing a grant,
personal access tokens, client administration (paging, verifying, disabling, deleting), disabling
and enabling users, and the protections every form has (CSRF, Origin, roles)."""

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from devstack.seed import DEMO_PASSWORD, DEMO_USER_ID, DEMO_USERNAME
from tests.conftest import BASE_URL, cookie_attributes, header, set_cookies
from tests.forms import parse
from tests.handlers.oauth_helpers import (
    FORM,
    REDIRECT,
    body,
    exchange,
    introspect,
    mcp_call,
    obtain_code,
    token_request,
)
from wallet_mcp import aws
from wallet_mcp.account.pages import when
from wallet_mcp.credentials.passwords import hash_password
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.consents import ConsentStore
from wallet_mcp.storage.personal_tokens import PersonalTokenStore
from wallet_mcp.storage.users import UserRecord, UserStore

APP = "connected-app"
ORIGIN = {"origin": BASE_URL}
MCP_RESOURCE = f"{BASE_URL}/mcp"


@pytest.fixture
def fns(load_function, aws_stack):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id=APP,
            client_name="Budget Buddy",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(REDIRECT,),
            scope=("mcp:tools:list", "mcp:tools:call", "wallet:accounts:read"),
            created_at=0,
        )
    )
    UserStore(aws.dynamodb(), aws_stack.physical_ids["UsersTable"]).create(
        UserRecord(
            username="bob",
            user_id="user-bob",
            password_hash=hash_password("bob-password"),
            created_at=0,
        )
    )
    return (
        load_function("AccountFunction"),
        load_function("AuthorizeFunction"),
        load_function("TokenFunction"),
    )


def attempt_sign_in(account, username=DEMO_USERNAME, password=DEMO_PASSWORD, next_path=None):
    """Fill in and submit the sign-in form; the response and the cookies the browser then holds."""
    page = account.request("GET", "/account", query=urlencode({"next": next_path}) if next_path else "")
    assert page.status == 200
    cookies = set_cookies(page)
    (form,), text = parse(page.body.decode())
    assert "Sign in" in text
    response = account.request(
        "POST",
        "/account",
        headers={**FORM, **ORIGIN},
        body=urlencode(form.submission({"username": username, "password": password})),
        cookies=cookies,
    )
    cookies |= set_cookies(response)
    return response, {k: v for k, v in cookies.items() if v}


def sign_in(account, username=DEMO_USERNAME, password=DEMO_PASSWORD, next_path=None):
    response, cookies = attempt_sign_in(account, username, password, next_path)
    assert response.status == 303, response.body
    return response, cookies


def forms_of(response):
    forms, text = parse(response.body.decode())
    return forms, text


def revoke_from_account_page(account, cookies):
    """Press the app's Revoke button on /account, as the browser would."""
    forms = forms_of(account.request("GET", "/account", cookies=cookies))[0]
    revoke = next(f for f in forms if f.action == "/account/revoke")
    assert revoke.fields["client_id"] == APP
    return account.request(
        "POST", "/account/revoke", headers={**FORM, **ORIGIN}, body=urlencode(revoke.fields), cookies=cookies
    )


def connect(authorize, token):
    """The demo user approves APP; its token response."""
    granted = exchange(token, obtain_code(authorize, client_id=APP), APP)
    assert granted.status == 200, granted.body
    return body(granted)


def refresh(token, refresh_token):
    return token_request(
        token, {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": APP}
    )


def authorization_page(authorize, cookies, client_id=APP):
    """What the signed-in browser is shown when `client_id` sends it to the authorization endpoint."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "scope": "mcp:tools:list",
            "state": "s",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )
    return authorize.request("GET", "/oauth/authorize", query=query, cookies=cookies)


def post_form(account, form, cookies, values=None):
    """Submit a form of a page as the browser would (same origin)."""
    return account.request(
        "POST",
        form.action,
        headers={**FORM, **ORIGIN},
        body=urlencode(form.submission(values)),
        cookies=cookies,
    )


def personal_token_store(aws_stack) -> PersonalTokenStore:
    return PersonalTokenStore(aws.dynamodb(), aws_stack.physical_ids["PersonalTokensTable"])


def wallet_balance(api, bearer):
    return api.request("GET", "/api/balance", headers={"authorization": f"Bearer {bearer}"})


def audit_events(aws_stack, subject, event):
    log = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"])
    return [e for e in log.of(subject) if e["event"] == event]


# --- sign-in ---------------------------------------------------------------------------------------


def test_sign_in_page_sets_a_login_csrf_cookie_and_the_session_follows(fns):
    account, _, _ = fns
    page = account.request("GET", "/account")
    assert page.status == 200
    assert "form-action 'self'" in header(page, "content-security-policy")
    assert header(page, "x-frame-options") == "DENY"
    attributes = cookie_attributes(page, "wallet_login")
    assert attributes and "HttpOnly" in attributes and "SameSite=lax" in attributes
    response, cookies = sign_in(account)
    assert header(response, "location") == "/account"
    assert "wallet_session" in cookies
    home = account.request("GET", "/account", cookies=cookies)
    assert "Connected apps" in forms_of(home)[1]


def test_sign_in_refuses_a_form_without_its_cookie(fns):
    account, _, _ = fns
    page = account.request("GET", "/account")
    (form,), _ = forms_of(page)
    response = account.request(
        "POST",
        "/account",
        headers=FORM,
        body=urlencode(form.submission({"username": DEMO_USERNAME, "password": DEMO_PASSWORD})),
    )
    assert response.status == 400
    assert "wallet_session" not in set_cookies(response)


def test_sign_in_refuses_a_form_with_another_browsers_cookie(fns):
    account, _, _ = fns
    mine, theirs = account.request("GET", "/account"), account.request("GET", "/account")
    (form,), _ = forms_of(mine)
    response = account.request(
        "POST",
        "/account",
        headers=FORM,
        body=urlencode(form.submission({"username": DEMO_USERNAME, "password": DEMO_PASSWORD})),
        cookies=set_cookies(theirs),
    )
    assert response.status == 400
    assert "wallet_session" not in set_cookies(response)


def test_wrong_password_shows_the_form_again(fns):
    account, _, _ = fns
    page = account.request("GET", "/account")
    (form,), _ = forms_of(page)
    response = account.request(
        "POST",
        "/account",
        headers=FORM,
        body=urlencode(form.submission({"username": DEMO_USERNAME, "password": "nope"})),
        cookies=set_cookies(page),
    )
    assert response.status == 200
    assert "Invalid username or password" in forms_of(response)[1]
    assert "wallet_session" not in set_cookies(response)


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/oauth/token", "/\\evil.example"]
)
def test_next_never_leaves_the_account_pages(fns, target):
    account, _, _ = fns
    response, _ = sign_in(account, next_path=target)
    assert header(response, "location") == "/account"


def test_next_returns_to_an_admin_page(fns):
    account, _, _ = fns
    response, _ = sign_in(account, next_path="/admin/users?username=bob")
    assert header(response, "location") == "/admin/users?username=bob"


def test_sign_out_ends_the_session(fns):
    account, _, _ = fns
    _, cookies = sign_in(account)
    (sign_out, *_), _ = forms_of(account.request("GET", "/account", cookies=cookies))
    assert sign_out.action == "/account/sign-out"
    response = account.request(
        "POST",
        "/account/sign-out",
        headers={**FORM, **ORIGIN},
        body=urlencode(sign_out.fields),
        cookies=cookies,
    )
    assert response.status == 303
    again = account.request("GET", "/account", cookies=cookies)
    assert "to manage the apps connected" in forms_of(again)[1]


# --- connected apps ---------------------------------------------------------------------------------


def test_connected_apps_lists_the_grant_and_revoke_ends_it(fns, aws_stack):
    account, authorize, token = fns
    tokens = connect(authorize, token)
    _, cookies = sign_in(account)
    page = account.request("GET", "/account", cookies=cookies)
    forms, text = forms_of(page)
    assert "Budget Buddy" in text and "mcp:tools:call" in text
    revoke = next(f for f in forms if f.action == "/account/revoke")
    assert revoke.fields["client_id"] == APP

    response = account.request(
        "POST", "/account/revoke", headers={**FORM, **ORIGIN}, body=urlencode(revoke.fields), cookies=cookies
    )
    assert response.status == 303
    assert header(response, "location") == "/account?done=revoked"
    after = forms_of(account.request("GET", "/account", query="done=revoked", cookies=cookies))[1]
    assert "Access revoked" in after and "Budget Buddy" not in after

    refused = refresh(token, tokens["refresh_token"])
    assert refused.status == 400 and body(refused)["error"] == "invalid_grant"
    events = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"]).of(DEMO_USER_ID)
    revoked = next(e for e in events if e["event"] == "grant_revoked")
    assert revoked["client_id"] == APP and revoked["details"]["refresh_tokens"] == 1


def test_revoked_access_token_is_inactive(fns):
    account, authorize, token = fns
    tokens = connect(authorize, token)
    _, cookies = sign_in(account)
    revoke_from_account_page(account, cookies)
    response = introspect(token, tokens["access_token"], ("mcp-demo-client", "demo-secret-123"))
    assert response.status == 200
    assert body(response) == {"active": False}


def test_after_revoking_the_app_must_ask_for_consent_again(fns):
    account, authorize, token = fns
    connect(authorize, token)
    _, cookies = sign_in(account)
    revoke_from_account_page(account, cookies)
    # the session is shared with the authorization endpoint: no login, but the consent page again
    page = authorization_page(authorize, cookies)
    assert page.status == 200
    (form,), _ = forms_of(page)
    assert ("decision", "approve") in form.buttons


@pytest.mark.parametrize(
    ("headers", "drop_csrf", "status"),
    [
        ({"origin": "https://evil.example"}, False, 403),
        ({}, True, 403),
        ({"origin": "null", "sec-fetch-site": "cross-site"}, False, 403),
        ({"origin": BASE_URL, "sec-fetch-site": "same-site"}, False, 403),
    ],
)
def test_revoke_is_refused_without_csrf_or_from_another_origin(fns, headers, drop_csrf, status):
    account, authorize, token = fns
    tokens = connect(authorize, token)
    _, cookies = sign_in(account)
    revoke = next(
        f
        for f in forms_of(account.request("GET", "/account", cookies=cookies))[0]
        if f.action == "/account/revoke"
    )
    data = dict(revoke.fields)
    if drop_csrf:
        data["csrf_token"] = "forged"
    response = account.request(
        "POST", "/account/revoke", headers={**FORM, **headers}, body=urlencode(data), cookies=cookies
    )
    assert response.status == status
    assert refresh(token, tokens["refresh_token"]).status == 200


def test_a_same_origin_form_from_a_no_referrer_page_is_accepted(fns):
    """Our pages send no referrer, so browsers post them with `Origin: null`; the CSRF token and
    Fetch Metadata decide."""
    account, authorize, token = fns
    tokens = connect(authorize, token)
    _, cookies = sign_in(account)
    forms = forms_of(account.request("GET", "/account", cookies=cookies))[0]
    revoke = next(f for f in forms if f.action == "/account/revoke")
    response = account.request(
        "POST",
        "/account/revoke",
        headers={**FORM, "origin": "null", "sec-fetch-site": "same-origin"},
        body=urlencode(revoke.fields),
        cookies=cookies,
    )
    assert response.status == 303
    assert refresh(token, tokens["refresh_token"]).status == 400


def test_revoke_without_a_session_is_refused(fns):
    account, authorize, token = fns
    tokens = connect(authorize, token)
    response = account.request(
        "POST", "/account/revoke", headers=FORM, body=urlencode({"client_id": APP, "csrf_token": "x"})
    )
    assert response.status == 401
    assert refresh(token, tokens["refresh_token"]).status == 200


@pytest.mark.parametrize(
    ("content_type", "payload", "status"),
    [
        ("application/json", b'{"client_id": "x"}', 400),
        (FORM["content-type"], b"a=1&a=2", 400),
        (FORM["content-type"], b"%ff%fe=\xff", 400),
        (FORM["content-type"], b"x=" + b"y" * 20_000, 413),
    ],
)
def test_malformed_form_bodies_get_a_clear_error(fns, content_type, payload, status):
    account, _, _ = fns
    response = account.request(
        "POST", "/account/revoke", headers={"content-type": content_type}, body=payload
    )
    assert response.status == status
    assert "text/html" in header(response, "content-type")


# --- personal access tokens -------------------------------------------------------------------------


def test_personal_access_tokens_are_listed_and_revoking_one_stops_it(fns, aws_stack, load_function):
    account, _, _ = fns
    api = load_function("WalletFunction")
    store = personal_token_store(aws_stack)
    created = int(time.time()) - 3 * 86400
    script, record = store.create(
        user_id=DEMO_USER_ID,
        name="Budget script",
        scope=("wallet:accounts:read",),
        now=created,
        expires_at=created + 90 * 86400,
    )
    _, kept = store.create(
        user_id=DEMO_USER_ID,
        name="Nightly export",
        scope=("wallet:transactions:read",),
        now=created,
        expires_at=None,
    )
    assert wallet_balance(api, script).status == 200  # its use is noted
    (used,) = [t.last_used_at for t in store.of_user(DEMO_USER_ID) if t.token_id == record.token_id]
    assert used is not None

    _, cookies = sign_in(account)
    forms, text = forms_of(account.request("GET", "/account", cookies=cookies))
    assert "Personal access tokens" in text
    assert f"Budget script {record.token_id} wallet:accounts:read active {when(created)} {when(used)}" in text
    assert f"Nightly export {kept.token_id} wallet:transactions:read active {when(created)} — never" in text
    revoke = next(
        f for f in forms if f.action == "/account/tokens/revoke" and f.fields["token_id"] == record.token_id
    )
    assert revoke.fields["csrf_token"]
    response = post_form(account, revoke, cookies)
    assert response.status == 303
    assert header(response, "location") == "/account?done=token_revoked"

    forms, text = forms_of(account.request("GET", "/account", query="done=token_revoked", cookies=cookies))
    assert "Personal access token revoked" in text
    assert f"Budget script {record.token_id} wallet:accounts:read revoked" in text
    # a revoked token has no Revoke button; the other one still has
    assert [f.fields["token_id"] for f in forms if f.action == "/account/tokens/revoke"] == [kept.token_id]
    refused = wallet_balance(api, script)
    assert refused.status == 401 and 'error="invalid_token"' in header(refused, "www-authenticate")
    (event,) = audit_events(aws_stack, DEMO_USER_ID, "personal_token_revoked")
    assert event["details"] == {"by": DEMO_USER_ID, "token_id": record.token_id}


@pytest.mark.parametrize(
    ("whose", "headers", "forge_csrf", "status"),
    [
        ("user-bob", ORIGIN, False, 404),  # not theirs: as if it did not exist
        ("nobody", ORIGIN, False, 404),
        (DEMO_USER_ID, ORIGIN, True, 403),
        (DEMO_USER_ID, {"origin": "https://evil.example"}, False, 403),
    ],
    ids=["another-users-token", "no-such-token", "forged-csrf", "another-origin"],
)
def test_a_personal_token_is_revoked_only_by_its_owner_through_their_form(
    fns, aws_stack, load_function, whose, headers, forge_csrf, status
):
    account, _, _ = fns
    api = load_function("WalletFunction")
    store = personal_token_store(aws_stack)
    secret, record = store.create(
        user_id=DEMO_USER_ID if whose == "nobody" else whose,
        name="Script",
        scope=("wallet:accounts:read",),
        now=int(time.time()),
        expires_at=None,
    )
    _, cookies = sign_in(account)
    csrf = next(
        f.fields["csrf_token"]
        for f in forms_of(account.request("GET", "/account", cookies=cookies))[0]
        if "csrf_token" in f.fields
    )
    token_id = "0000deadbeef" if whose == "nobody" else record.token_id
    response = account.request(
        "POST",
        "/account/tokens/revoke",
        headers={**FORM, **headers},
        body=urlencode({"token_id": token_id, "csrf_token": "forged" if forge_csrf else csrf}),
        cookies=cookies,
    )
    assert response.status == status
    assert wallet_balance(api, secret).status == 200  # still works
    assert not store.of_user(record.user_id)[0].revoked


# --- a grant withdrawn while tokens are in flight ---------------------------------------------------


def test_a_code_redeemed_after_the_grant_is_withdrawn_issues_nothing(fns, aws_stack):
    _, authorize, token = fns
    code = obtain_code(authorize, client_id=APP)
    ConsentStore(aws.dynamodb(), aws_stack.physical_ids["ConsentsTable"]).withdraw(DEMO_USER_ID, APP)
    response = exchange(token, code, APP)
    assert response.status == 400
    assert body(response)["error"] == "invalid_grant"
    assert "withdrawn" in body(response)["error_description"]


def test_a_refresh_after_the_grant_is_withdrawn_fails_and_ends_the_family(fns, aws_stack):
    _, authorize, token = fns
    tokens = connect(authorize, token)
    consents = ConsentStore(aws.dynamodb(), aws_stack.physical_ids["ConsentsTable"])
    consents.withdraw(DEMO_USER_ID, APP)
    response = refresh(token, tokens["refresh_token"])
    assert response.status == 400 and body(response)["error"] == "invalid_grant"
    # approving again does not bring the old refresh token back
    consents.grant(
        DEMO_USER_ID, APP, ("mcp:tools:list",), MCP_RESOURCE, order=SUPPORTED_SCOPES, now=int(time.time())
    )
    assert body(refresh(token, tokens["refresh_token"]))["error"] == "invalid_grant"


# --- /admin -------------------------------------------------------------------------------------------

NEW_CLIENT = [
    ("client_name", "Reporting job"),
    ("redirect_uris", "https://reports.example.com/cb"),
    ("grant_types", "authorization_code"),
    ("grant_types", "refresh_token"),
    ("grant_types", "client_credentials"),
    ("scope", "wallet:accounts:read"),
    ("scope", "mcp:tools:call"),
    ("token_endpoint_auth_method", "client_secret_basic"),
    ("owner", DEMO_USERNAME),
]


def admin_post(account, cookies, path, pairs):
    csrf = next(
        f.fields["csrf_token"]
        for f in forms_of(account.request("GET", "/admin", cookies=cookies))[0]
        if "csrf_token" in f.fields
    )
    return account.request(
        "POST",
        path,
        headers={**FORM, **ORIGIN},
        body=urlencode([*pairs, ("csrf_token", csrf)]),
        cookies=cookies,
    )


def client_store(aws_stack) -> ClientStore:
    return ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])


def all_client_ids(aws_stack) -> list[str]:
    store = client_store(aws_stack)
    found, after = store.page(limit=100)
    while after is not None:
        more, after = store.page(limit=100, after=after)
        found += more
    return sorted(c.client_id for c in found)


def wait_past(second: int) -> None:
    """Token times are whole seconds and a cut-off covers its own second: wait for the next."""
    while int(time.time()) <= second:
        time.sleep(0.05)


def client_credentials(token, client_id, secret, scope="wallet:accounts:read"):
    form = {"grant_type": "client_credentials", "scope": scope}
    return token_request(token, form, basic=(client_id, secret))


def test_admin_requires_a_session_then_the_admin_role(fns):
    account, _, _ = fns
    anonymous = account.request("GET", "/admin")
    assert anonymous.status == 303
    assert header(anonymous, "location") == "/account?next=%2Fadmin"
    _, cookies = sign_in(account, "bob", "bob-password")
    assert account.request("GET", "/admin", cookies=cookies).status == 403
    assert account.request("GET", "/admin/users", cookies=cookies).status == 403
    refused = admin_post(account, cookies, "/admin/clients", NEW_CLIENT)
    assert refused.status == 403


def test_admin_creates_rotates_disables_and_deletes_a_client(fns, aws_stack):
    account, _, token = fns
    _, cookies = sign_in(account)
    listing = account.request("GET", "/admin", cookies=cookies)
    assert listing.status == 200 and "mcp-demo-client" in forms_of(listing)[1]

    created = admin_post(account, cookies, "/admin/clients", NEW_CLIENT)
    assert created.status == 200, created.body
    assert header(created, "cache-control") == "no-store"
    secret = created.body.decode().split('id="client-secret">', 1)[1].split("<", 1)[0]
    client_id = next(f for f in forms_of(created)[0] if f.action == "/admin/client").fields["client_id"]
    assert secret.startswith("secret_") and client_id.startswith("mcp_")
    assert client_credentials(token, client_id, secret).status == 200
    # the secret is shown once: the client's page does not show it again
    page = account.request("GET", "/admin/client", query=urlencode({"client_id": client_id}), cookies=cookies)
    assert secret not in page.body.decode() and "Reporting job" in forms_of(page)[1]

    def act(action: str, *, confirm: bool = False):
        pairs = [("client_id", client_id), ("action", action)] + ([("confirm", "yes")] if confirm else [])
        return admin_post(account, cookies, "/admin/client", pairs)

    # rotating and deleting ask first, on a page of their own; asking changes nothing
    asked = act("rotate_secret")
    assert asked.status == 200 and "Yes, rotate the secret" in asked.body.decode()
    confirm = next(f for f in forms_of(asked)[0] if f.fields.get("confirm") == "yes")
    assert confirm.fields["action"] == "rotate_secret" and confirm.fields["client_id"] == client_id
    assert client_credentials(token, client_id, secret).status == 200
    rotated = act("rotate_secret", confirm=True)
    assert rotated.status == 200
    new_secret = rotated.body.decode().split('id="client-secret">', 1)[1].split("<", 1)[0]
    assert new_secret != secret
    old = client_credentials(token, client_id, secret)
    assert old.status == 401 and body(old)["error"] == "invalid_client"
    assert client_credentials(token, client_id, new_secret).status == 200

    disabled = act("disable")
    assert disabled.status == 200 and "Client disabled." in forms_of(disabled)[1]
    assert body(client_credentials(token, client_id, new_secret))["error"] == "invalid_client"
    enabled = act("enable")
    assert enabled.status == 200 and "Client enabled." in forms_of(enabled)[1]
    # the cut-off outlives re-enabling: the client works again, but only for what is issued after
    # the second it was disabled in
    record = client_store(aws_stack).get_any(client_id)
    assert not record.disabled and record.grants_valid_after is not None
    wait_past(record.grants_valid_after)
    assert client_credentials(token, client_id, new_secret).status == 200

    asked = act("delete")
    assert asked.status == 200 and "Yes, delete the client" in asked.body.decode()
    assert client_credentials(token, client_id, new_secret).status == 200
    deleted = act("delete", confirm=True)
    assert deleted.status == 303 and header(deleted, "location") == "/admin?done=deleted"
    assert (
        "Client deleted."
        in forms_of(account.request("GET", "/admin", query="done=deleted", cookies=cookies))[1]
    )
    assert body(client_credentials(token, client_id, new_secret))["error"] == "invalid_client"
    # a deleted client is a tombstone: no secret, still shown (marked deleted), beyond every action
    tombstone = client_store(aws_stack).get_any(client_id)
    assert tombstone.is_deleted and tombstone.disabled and tombstone.client_secret_hash is None
    page = account.request("GET", "/admin/client", query=urlencode({"client_id": client_id}), cookies=cookies)
    forms, text = forms_of(page)
    assert page.status == 200 and "Deleted: nothing can bring it back." in text
    assert not [f for f in forms if f.action == "/admin/client"]
    revived = act("enable")
    assert revived.status == 400 and "This client was deleted." in forms_of(revived)[1]
    assert body(client_credentials(token, client_id, new_secret))["error"] == "invalid_client"

    events = [
        e["event"] for e in AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"]).of(client_id)
    ]
    for expected in (
        "client_created",
        "client_secret_rotated",
        "client_disabled",
        "client_enabled",
        "client_deleted",
    ):
        assert expected in events


def test_disabling_or_deleting_a_client_revokes_every_access_token_it_holds(fns, load_function, aws_stack):
    account, _, token = fns
    mcp = load_function("McpFunction")
    _, cookies = sign_in(account)
    created = admin_post(account, cookies, "/admin/clients", NEW_CLIENT)
    secret = created.body.decode().split('id="client-secret">', 1)[1].split("<", 1)[0]
    client_id = next(f for f in forms_of(created)[0] if f.action == "/admin/client").fields["client_id"]

    def issue() -> str:
        response = client_credentials(token, client_id, secret, scope="mcp:tools:call")
        assert response.status == 200, response.body
        return str(body(response)["access_token"])

    def introspected(access_token: str) -> dict:
        response = introspect(token, access_token, (client_id, secret))
        assert response.status == 200, response.body
        return body(response)

    def ping(access_token: str):
        mcp.module.deployment.revocation_cache._fetched_at = None  # skip the poll interval
        return mcp_call(mcp, access_token, "tools/call", {"name": "ping", "arguments": {}})

    def act(action: str) -> None:
        pairs = [("client_id", client_id), ("action", action), ("confirm", "yes")]
        response = admin_post(account, cookies, "/admin/client", pairs)
        assert response.status in (200, 303), response.body

    held = issue()
    assert ping(held).status == 200
    act("disable")
    refused = ping(held)
    assert refused.status == 401
    assert 'error="invalid_token"' in header(refused, "www-authenticate")
    assert "ended by an administrator" in header(refused, "www-authenticate")

    act("enable")
    assert ping(held).status == 401  # enabling again does not bring the cut-off tokens back
    wait_past(client_store(aws_stack).get_any(client_id).grants_valid_after)
    after = issue()
    assert ping(after).status == 200
    assert introspected(held) == {"active": False}  # the authorization server agrees
    assert introspected(after)["active"] is True
    act("delete")
    assert ping(after).status == 401


def test_admin_edits_redirect_uris_and_scopes(fns, aws_stack):
    account, _, _ = fns
    _, cookies = sign_in(account)
    created = admin_post(account, cookies, "/admin/clients", NEW_CLIENT)
    client_id = next(f for f in forms_of(created)[0] if f.action == "/admin/client").fields["client_id"]
    edit = [
        ("client_id", client_id),
        ("action", "update"),
        ("client_name", "Reporting job v2"),
        ("redirect_uris", "https://reports.example.com/cb\r\nhttps://reports.example.com/cb2"),
        ("grant_types", "authorization_code"),
        ("scope", "wallet:transactions:read"),
        ("token_endpoint_auth_method", "client_secret_post"),
        ("owner", ""),
    ]
    saved = admin_post(account, cookies, "/admin/client", edit)
    assert saved.status == 200 and "Changes saved" in forms_of(saved)[1]
    record = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).get_any(client_id)
    assert record.client_name == "Reporting job v2"
    assert record.redirect_uris == ("https://reports.example.com/cb", "https://reports.example.com/cb2")
    assert record.scope == ("wallet:transactions:read",)
    assert record.grant_types == ("authorization_code",)
    assert record.token_endpoint_auth_method == "client_secret_post"
    assert record.owner_user_id is None


def active_sessions(text: str, app_name: str) -> str:
    """The "Active sessions" cell of an app's row on /account (the last cell before its button)."""
    return text.split(f"{app_name} ", 1)[1].split(" Revoke", 1)[0].split()[-1]


def test_a_disabled_or_deleted_client_shows_no_active_sessions_on_the_account_page(fns, aws_stack):
    account, authorize, token = fns
    tokens = connect(authorize, token)
    _, cookies = sign_in(account)
    assert (
        active_sessions(forms_of(account.request("GET", "/account", cookies=cookies))[1], "Budget Buddy")
        == "1"
    )

    def act(action: str) -> None:
        pairs = [("client_id", APP), ("action", action), ("confirm", "yes")]
        assert admin_post(account, cookies, "/admin/client", pairs).status in (200, 303)

    act("disable")
    act("enable")
    # the cut-off outlives enabling: the refresh token is dead (though nothing has presented it
    # since), and the page does not count it
    text = forms_of(account.request("GET", "/account", cookies=cookies))[1]
    assert (
        "Budget Buddy connected-app mcp:tools:list" in text and active_sessions(text, "Budget Buddy") == "0"
    )
    assert body(refresh(token, tokens["refresh_token"]))["error"] == "invalid_grant"

    wait_past(client_store(aws_stack).get_any(APP).grants_valid_after)
    connect(authorize, token)  # approved again: a new grant, after the cut-off, counts
    text = forms_of(account.request("GET", "/account", cookies=cookies))[1]
    assert active_sessions(text, "Budget Buddy") == "1"

    act("delete")
    text = forms_of(account.request("GET", "/account", cookies=cookies))[1]
    assert "Budget Buddy connected-app deleted" in text  # the consent is still there to withdraw
    assert active_sessions(text, "Budget Buddy") == "0"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("redirect_uris", "http://evil.example/cb"), "loopback"),
        (("redirect_uris", "javascript:alert(1)"), "not allowed"),
        (("scope", "admin:everything"), "Unknown scope"),
        (("owner", "nobody-here"), "No user named"),
        (("client_name", ""), "name"),
    ],
)
def test_admin_form_errors_are_shown_and_nothing_is_created(fns, aws_stack, change, message):
    account, _, _ = fns
    _, cookies = sign_in(account)
    pairs = [p for p in NEW_CLIENT if p[0] != change[0]] + [change]
    before = all_client_ids(aws_stack)
    response = admin_post(account, cookies, "/admin/clients", pairs)
    assert response.status == 400
    assert message in forms_of(response)[1]
    assert all_client_ids(aws_stack) == before


def test_admin_sees_and_revokes_a_users_grant(fns):
    account, authorize, token = fns
    tokens = connect(authorize, token)
    _, cookies = sign_in(account)
    page = account.request("GET", "/admin/users", query="username=demo", cookies=cookies)
    assert "Budget Buddy" in forms_of(page)[1]
    revoke = next(f for f in forms_of(page)[0] if f.action == "/admin/users/revoke")
    response = account.request(
        "POST",
        "/admin/users/revoke",
        headers={**FORM, **ORIGIN},
        body=urlencode(revoke.fields),
        cookies=cookies,
    )
    assert response.status == 303
    assert header(response, "location") == "/admin/users?username=demo&done=revoked"
    assert body(refresh(token, tokens["refresh_token"]))["error"] == "invalid_grant"


def test_unknown_client_and_user_pages(fns):
    account, _, _ = fns
    _, cookies = sign_in(account)
    assert account.request("GET", "/admin/client", query="client_id=nope", cookies=cookies).status == 404
    missing = account.request("GET", "/admin/users", query="username=ghost", cookies=cookies)
    assert missing.status == 200 and "No user named ghost" in forms_of(missing)[1]
    action = admin_post(
        account, cookies, "/admin/client", [("client_id", "nope"), ("action", "rotate_secret")]
    )
    assert action.status == 404


@pytest.mark.parametrize("path", ["/admin/users/revoke", "/admin/users/disable", "/admin/users/enable"])
@pytest.mark.parametrize("username", ["", "   ", "ghost", "é" * 1500])
def test_an_admin_post_naming_no_such_user_is_a_404(fns, path, username):
    account, authorize, token = fns
    tokens = connect(authorize, token)
    _, cookies = sign_in(account)
    response = admin_post(account, cookies, path, [("username", username), ("client_id", APP)])
    assert response.status == 404
    assert "No such user." in forms_of(response)[1]
    assert refresh(token, tokens["refresh_token"]).status == 200  # nothing was ended


# --- admin: the client list, verified clients ----------------------------------------------------------

CLIENT_LINK = re.compile(r'href="/admin/client\?client_id=([^"]+)"')
NEXT_LINK = re.compile(r'<a rel="next" href="([^"]+)"')


def listed(page) -> tuple[list[str], str | None]:
    """The client ids a page of /admin lists, and the query of its next page (None: the last)."""
    html = page.body.decode()
    ids = [parse_qs("client_id=" + unescape(m))["client_id"][0] for m in CLIENT_LINK.findall(html)]
    found = NEXT_LINK.search(html)
    if found is None:
        return ids, None
    target = urlsplit(unescape(found.group(1)))
    assert target.path == "/admin"
    return ids, target.query


def test_the_client_list_is_paged_with_a_next_link(fns, aws_stack):
    account, _, _ = fns
    for n in range(5):
        client_store(aws_stack).put(
            ClientRecord(
                client_id=f"paged-{n}",
                client_name=f"Paged {n}",
                token_endpoint_auth_method="none",
                grant_types=("authorization_code",),
                redirect_uris=(REDIRECT,),
                scope=("mcp:tools:list",),
                created_at=0,
            )
        )
    everyone = all_client_ids(aws_stack)
    _, cookies = sign_in(account)

    seen: list[str] = []
    query: str | None = "limit=2"
    pages_read = 0
    while query is not None:
        page = account.request("GET", "/admin", query=query, cookies=cookies)
        assert page.status == 200
        ids, query = listed(page)
        assert len(ids) <= 2
        if query is not None:
            assert len(ids) == 2
            assert parse_qs(query) == {"after": [ids[-1]], "limit": ["2"]}
        seen += ids
        pages_read += 1
        assert pages_read <= len(everyone), "the next link does not move on"
    assert pages_read >= len(everyone) // 2
    assert sorted(seen) == everyone  # every client once, none twice

    # without a (usable) limit, one page of up to 50: all of them here, and no next link
    for query in ("", "limit=abc", "after=%00&limit="):
        ids, after = listed(account.request("GET", "/admin", query=query, cookies=cookies))
        assert sorted(ids) == everyone and after is None


def test_admin_marks_a_client_verified_and_the_consent_page_says_so(fns, aws_stack):
    account, authorize, _ = fns
    _, cookies = sign_in(account)
    here = urlencode({"client_id": APP})
    forms, text = forms_of(account.request("GET", "/admin/client", query=here, cookies=cookies))
    assert "Identity unverified" in text
    assert (
        "Verified by this server's administrator" not in forms_of(authorization_page(authorize, cookies))[1]
    )

    verify = next(f for f in forms if f.fields.get("action") == "verify")
    response = post_form(account, verify, cookies)
    forms, text = forms_of(response)
    assert response.status == 200 and "Client marked verified." in text
    assert "Identity verified by an administrator" in text
    assert client_store(aws_stack).get_any(APP).verified
    assert "Verified by this server's administrator" in forms_of(authorization_page(authorize, cookies))[1]
    (event,) = audit_events(aws_stack, APP, "client_verified")
    assert event["details"]["by"] == DEMO_USER_ID

    unverify = next(f for f in forms if f.fields.get("action") == "unverify")
    response = post_form(account, unverify, cookies)
    assert response.status == 200 and "Client no longer verified." in forms_of(response)[1]
    assert not client_store(aws_stack).get_any(APP).verified
    assert audit_events(aws_stack, APP, "client_unverified")


def test_only_an_admin_may_mark_a_client_verified(fns, aws_stack):
    account, _, _ = fns
    _, cookies = sign_in(account, "bob", "bob-password")
    refused = admin_post(account, cookies, "/admin/client", [("client_id", APP), ("action", "verify")])
    assert refused.status == 403
    assert not client_store(aws_stack).get_any(APP).verified


# --- admin: disabling and enabling a user ----------------------------------------------------------------


def user_form(account, cookies, username, action):
    page = account.request("GET", "/admin/users", query=urlencode({"username": username}), cookies=cookies)
    assert page.status == 200
    return next(f for f in forms_of(page)[0] if f.action == action)


def test_admin_disables_a_user_ending_everything_then_enables_them(fns, aws_stack, load_function):
    account, _, _ = fns
    api = load_function("WalletFunction")
    script, _ = personal_token_store(aws_stack).create(
        user_id="user-bob",
        name="Bob's script",
        scope=("wallet:accounts:read",),
        now=int(time.time()),
        expires_at=None,
    )
    assert wallet_balance(api, script).status == 200
    _, bob = sign_in(account, "bob", "bob-password")
    _, cookies = sign_in(account)

    disable = user_form(account, cookies, "bob", "/admin/users/disable")
    assert disable.fields["username"] == "bob" and "reason" in disable.fields
    response = post_form(account, disable, cookies, {"reason": "  laptop\nstolen  "})
    assert response.status == 303
    assert header(response, "location") == "/admin/users?username=bob&done=disabled"
    forms, text = forms_of(
        account.request("GET", "/admin/users", query="username=bob&done=disabled", cookies=cookies)
    )
    assert "User disabled." in text and "Status disabled" in text
    assert {f.action for f in forms} >= {"/admin/users/enable"}
    assert "/admin/users/disable" not in {f.action for f in forms}

    # their session is over, they cannot sign in, their personal access token stopped
    assert "to manage the apps connected" in forms_of(account.request("GET", "/account", cookies=bob))[1]
    refused, _ = attempt_sign_in(account, "bob", "bob-password")
    assert refused.status == 403 and "disabled by an administrator" in forms_of(refused)[1]
    assert wallet_balance(api, script).status == 401
    (event,) = audit_events(aws_stack, "user-bob", "user_disabled")
    assert event["details"]["by"] == DEMO_USER_ID and event["details"]["reason"] == "laptop stolen"
    assert event["details"]["sessions"] == 1 and event["details"]["personal_tokens"] == 1

    enable = user_form(account, cookies, "bob", "/admin/users/enable")
    response = post_form(account, enable, cookies, {"reason": "laptop found"})
    assert response.status == 303
    assert header(response, "location") == "/admin/users?username=bob&done=enabled"
    text = forms_of(
        account.request("GET", "/admin/users", query="username=bob&done=enabled", cookies=cookies)
    )[1]
    assert "User enabled." in text and "Status enabled" in text
    (event,) = audit_events(aws_stack, "user-bob", "user_enabled")
    assert event["details"] == {"by": DEMO_USER_ID, "reason": "laptop found"}
    sign_in(account, "bob", "bob-password")  # they may sign in again
    assert wallet_balance(api, script).status == 401  # but nothing they had comes back


def test_an_admin_cannot_disable_themselves_and_others_cannot_disable_anyone(fns, aws_stack):
    account, _, _ = fns
    _, cookies = sign_in(account)
    itself = admin_post(account, cookies, "/admin/users/disable", [("username", DEMO_USERNAME)])
    assert itself.status == 400 and "cannot disable your own account" in forms_of(itself)[1]
    assert account.request("GET", "/admin", cookies=cookies).status == 200  # still signed in

    _, bob = sign_in(account, "bob", "bob-password")
    for path in ("/admin/users/disable", "/admin/users/enable"):
        assert admin_post(account, bob, path, [("username", DEMO_USERNAME)]).status == 403
    assert not audit_events(aws_stack, DEMO_USER_ID, "user_disabled")
    assert not UserStore(aws.dynamodb(), aws_stack.physical_ids["UsersTable"]).get(DEMO_USERNAME).disabled
