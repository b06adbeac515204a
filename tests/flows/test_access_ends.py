"""Access ends when someone with the right ends it (docs/security.md § When access ends).

Black-box: a stack of its own (`make dev` as a subprocess, a one-second revocation poll so the
tests wait little, registration limits lifted), people at real pages, clients over plain HTTP.
Each test is one row of the table in docs/security.md: who ends what, and everything that must stop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from devstack.seed import DEMO_PASSWORD, DEMO_USER_ID, DEMO_USERNAME
from tests.support.local_stack import LocalStack, free_port, running_stack
from tests.support.metadata_document import serving_document
from tests.support.site import (
    Browser,
    Client,
    Landing,
    Page,
    Person,
    api_get,
    create_person,
    error_code,
    eventually,
    mcp_call,
    next_second,
    refused,
    register,
)
from wallet_mcp.storage.personal_tokens import PersonalTokenStore

pytestmark = pytest.mark.flow

POLL = 1
READ = "mcp:tools:call wallet:accounts:read"
DEMO = Person(DEMO_USERNAME, DEMO_PASSWORD, DEMO_USER_ID)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, pki) -> Iterator[LocalStack]:
    parameters = {
        "RevocationPollSeconds": str(POLL),
        "RegistrationsPerAddressPerHour": "10000",
        "TokenFailuresPerAddressPerMinute": "10000",
        "ClientMetadataFetchesPerHostPerMinute": "3",
    }
    with running_stack(
        tmp_path_factory.mktemp("access"), parameters=parameters, env={"SSL_CERT_FILE": str(pki.bundle_file)}
    ) as local:
        yield local


@pytest.fixture
def admin(site: LocalStack) -> Iterator[Browser]:
    browser = Browser(site.base_url)
    browser.sign_in(DEMO)
    yield browser
    browser.close()


@pytest.fixture
def person(site: LocalStack) -> Person:
    return create_person(site)


@pytest.fixture
def browser(site: LocalStack) -> Iterator[Browser]:
    browser = Browser(site.base_url)
    yield browser
    browser.close()


def works_then_stops(check: httpx.Response) -> None:
    raise AssertionError(f"still works: {check.status_code} {check.text[:300]}")


def stops(site: LocalStack, token: str, *, api: bool = False) -> bool:
    return eventually(
        lambda: refused(api_get(site, token) if api else mcp_call(site, token)), timeout=POLL + 4
    )


def client_page(client_id: str) -> str:
    return "/admin/client?" + urlencode({"client_id": client_id})


def user_page(username: str) -> str:
    return "/admin/users?" + urlencode({"username": username})


# --- a client ID metadata document served on this machine -------------------------------------------


@pytest.fixture
def metadata_document(pki, site: LocalStack) -> Iterator[Client]:
    port = free_port()
    url = f"https://localhost:{port}/client.json"
    redirect = "https://app.example.com/cimd-cb"
    document = json.dumps(
        {
            "client_id": url,
            "client_name": "Metadata document app",
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
    ).encode()
    with serving_document(pki, port, document, cache_control="max-age=60"):
        yield Client(site, url, redirect)


def is_error_page(page: Landing | Page) -> bool:
    """Our own page, never a redirect to the client."""
    return isinstance(page, Page) and page.status >= 400 and page.location is None


# --- 1. a client an administrator disables or deletes stays disabled or deleted ---------------------


def test_a_disabled_metadata_document_client_stays_disabled_when_fetched_again(
    site, metadata_document, admin, browser, person
):
    client = metadata_document
    tokens = client.tokens(browser, person, READ)
    assert mcp_call(site, tokens["access_token"]).status_code == 200

    disabled = admin.press(client_page(client.client_id), "/admin/client", action="disable")
    assert disabled.status == 200 and "Client disabled." in disabled.text

    # anyone starting an authorization with the document's URL again: the admin's state holds
    again = browser.authorize(client.authorization_url(READ), person)
    assert is_error_page(again), again
    refresh = client.refresh(tokens["refresh_token"])
    assert (refresh.status_code, error_code(refresh)) == (401, "invalid_client")
    assert stops(site, tokens["access_token"])
    assert "Status disabled" in admin.get(client_page(client.client_id)).text


def test_a_deleted_client_cannot_come_back_by_fetching_its_document_again(
    site, metadata_document, admin, browser, person
):
    client = metadata_document
    tokens = client.tokens(browser, person, READ)

    deleted = admin.press(client_page(client.client_id), "/admin/client", action="delete")
    assert deleted.status == 200 and "Client deleted." in deleted.text

    again = browser.authorize(client.authorization_url(READ), person)
    assert is_error_page(again), again
    refresh = client.refresh(tokens["refresh_token"])
    assert (refresh.status_code, error_code(refresh)) == (401, "invalid_client")
    assert stops(site, tokens["access_token"])


def test_a_disabled_client_is_refused_everywhere_and_enabling_it_brings_nothing_back(
    site, admin, browser, person
):
    client = register(site, confidential=True)
    tokens = client.tokens(browser, person, READ)
    api_tokens = client.tokens(browser, person, READ, resource=f"{site.base_url}/api")

    admin.press(client_page(client.client_id), "/admin/client", action="disable")

    for response in (
        client.refresh(tokens["refresh_token"]),
        client.revoke(tokens["access_token"]),
        client.introspect(tokens["access_token"]),
    ):
        assert (response.status_code, error_code(response)) == (401, "invalid_client"), response.text
    assert is_error_page(browser.authorize(client.authorization_url(READ), person))
    assert stops(site, tokens["access_token"])
    assert stops(site, api_tokens["access_token"], api=True)

    admin.press(client_page(client.client_id), "/admin/client", action="enable")
    next_second()
    assert refused(mcp_call(site, tokens["access_token"]))
    assert client.introspect(tokens["access_token"]).json() == {"active": False}
    refresh = client.refresh(tokens["refresh_token"])
    assert (refresh.status_code, error_code(refresh)) == (400, "invalid_grant")
    # the client itself works again: a new grant, with the person's consent
    assert mcp_call(site, client.tokens(browser, person, READ)["access_token"]).status_code == 200


def test_a_deleted_or_expired_registration_gets_401_invalid_client(site, admin, browser, person):
    deleted = register(site)
    tokens = deleted.tokens(browser, person, READ)
    admin.press(client_page(deleted.client_id), "/admin/client", action="delete")
    response = deleted.refresh(tokens["refresh_token"])
    assert (response.status_code, error_code(response)) == (401, "invalid_client")

    expired = register(site, confidential=True, grant_types=["client_credentials"], redirect_uris=[])
    site.client("dynamodb").update_item(
        TableName="wallet-mcp-local-ClientsTable",
        Key={"client_id": {"S": expired.client_id}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )  # what a week without use does (DynamoDB's TTL deletes the item lazily)
    response = expired.client_credentials("mcp:tools:call")
    assert (response.status_code, error_code(response)) == (401, "invalid_client")


# --- 2. an administrator disables a user ---------------------------------------------------------


def test_an_admin_disables_a_user_and_every_kind_of_access_ends(site, admin, browser, person):
    client = register(site, confidential=True)
    tokens = client.tokens(browser, person, READ)
    pat, _ = PersonalTokenStore(site.client("dynamodb"), "wallet-mcp-local-PersonalTokensTable").create(
        user_id=person.user_id,
        name="script",
        scope=("wallet:accounts:read",),
        now=int(time.time()),
        expires_at=int(time.time()) + 3600,
    )
    own = Browser(site.base_url)
    own.sign_in(person)
    assert api_get(site, pat).status_code == 200

    done = admin.press(user_page(person.username), "/admin/users/disable", username=person.username)
    assert done.status == 200, done.text[:500]
    assert "disabled" in admin.get(user_page(person.username)).text

    # sessions end: the account page asks to sign in, and authorization asks again too
    assert "password" in own.get("/account").forms[0].fields
    page = own.get(client.authorization_url(READ))
    assert page.status == 200 and "password" in page.forms[0].fields
    # and signing in is refused with a clear message
    refused_sign_in = own.authorize(client.authorization_url(READ), person)
    assert isinstance(refused_sign_in, Page) and "disabled" in refused_sign_in.text.lower()
    response = client.refresh(tokens["refresh_token"])
    assert (response.status_code, error_code(response)) == (400, "invalid_grant")
    assert refused(api_get(site, pat))
    assert stops(site, tokens["access_token"])
    own.close()

    history = admin.get(user_page(person.username)).text
    assert "user_disabled" in history and DEMO_USER_ID in history


# --- 3. a person withdraws an app's access ---------------------------------------------------------


def test_withdrawing_an_app_ends_tokens_that_came_without_a_refresh_token(site, browser, person):
    client = register(site, refresh=False)
    tokens = client.tokens(browser, person, READ)
    assert "refresh_token" not in tokens
    browser.sign_in(person)

    done = browser.press("/account", "/account/revoke", client_id=client.client_id)
    assert "Access revoked" in done.text
    assert stops(site, tokens["access_token"])


def test_a_persons_own_client_credentials_client_is_listed_and_can_be_withdrawn(site, admin, browser, person):
    new = admin.get("/admin/clients/new")
    made = admin.submit_pairs(
        new,
        new.form("/admin/clients"),
        [
            ("client_name", "Nightly export"),
            ("grant_types", "client_credentials"),
            ("scope", "mcp:tools:call"),
            ("scope", "wallet:accounts:read"),
            ("owner", person.username),
            ("redirect_uris", ""),
        ],
    )
    assert made.status == 200, made.text[:500]
    client_id = made.html.split("<dt>client_id</dt><dd><code>", 1)[1].split("<", 1)[0]
    secret = made.html.split('id="client-secret">', 1)[1].split("<", 1)[0]
    machine = Client(site, client_id, "", secret)
    token = machine.client_credentials("mcp:tools:call wallet:accounts:read").json()["access_token"]
    assert mcp_call(site, token).status_code == 200

    browser.sign_in(person)
    assert client_id in browser.get("/account").html
    browser.press("/account", "/account/revoke", client_id=client_id)

    assert stops(site, token)
    # the client still exists, but no longer reaches this person's wallet (each worker's cached
    # owner lasts at most one poll interval)
    next_second()
    later = machine.client_credentials("mcp:tools:call wallet:accounts:read").json()["access_token"]
    assert eventually(lambda: mcp_call(site, later).status_code == 403)


def test_revoking_a_refresh_token_ends_the_access_tokens_of_its_grant(site, browser, person):
    client = register(site)
    tokens = client.tokens(browser, person, READ)
    rotated = client.refresh(tokens["refresh_token"]).json()

    assert client.revoke(rotated["refresh_token"]).status_code == 200
    assert stops(site, rotated["access_token"])
    assert stops(site, tokens["access_token"])


# --- 4. an administrator narrows a client's scopes -------------------------------------------------


def test_narrowing_a_clients_scopes_applies_to_refresh_and_to_outstanding_tokens(
    site, admin, browser, person
):
    client = register(site, confidential=True)
    tokens = client.tokens(browser, person, "mcp:tools:call wallet:accounts:read wallet:transactions:read")
    page = admin.get(client_page(client.client_id))
    narrowed = admin.submit_pairs(
        page,
        page.form("/admin/client", action="update"),
        [
            ("scope", "mcp:tools:call"),
            ("scope", "wallet:accounts:read"),
            ("grant_types", "authorization_code"),
            ("grant_types", "refresh_token"),
            ("redirect_uris", client.redirect_uri),
        ],
    )
    assert narrowed.status == 200 and "Changes saved." in narrowed.text, narrowed.text[:500]

    refreshed = client.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200
    assert refreshed.json()["scope"] == "mcp:tools:call wallet:accounts:read"
    assert stops(site, tokens["access_token"])
    assert mcp_call(site, refreshed.json()["access_token"]).status_code == 200


# --- 5. remembered consent --------------------------------------------------------------------------


def test_remembered_consent_is_not_replayed_for_a_public_native_client(site, browser, person):
    client = register(site, redirect_uris=["http://127.0.0.1:1234/callback"])
    client.tokens(browser, person, READ)
    browser.pages_seen.clear()

    # the same client id, another loopback port: anyone could claim this public client
    client.redirect_uri = "http://127.0.0.1:5678/callback"
    landing = browser.authorize(client.authorization_url(READ), person)
    assert isinstance(landing, Landing) and "code" in landing.params
    assert browser.pages_seen == ["consent"]


def test_a_confidential_client_is_approved_silently_but_money_moving_scopes_are_asked_again(
    site, browser, person
):
    client = register(site, confidential=True)
    client.tokens(browser, person, READ)
    browser.pages_seen.clear()

    client.tokens(browser, person, READ)
    assert browser.pages_seen == []  # remembered: exact redirect URI, confidential client

    client.tokens(browser, person, f"{READ} wallet:transactions:write")
    client.tokens(browser, person, f"{READ} wallet:transactions:write")
    assert browser.pages_seen == ["consent", "consent"]


def test_consent_is_remembered_per_resource(site, browser, person):
    client = register(site, confidential=True)
    client.tokens(browser, person, READ)
    browser.pages_seen.clear()

    client.tokens(browser, person, READ, resource=f"{site.base_url}/api")
    assert browser.pages_seen == ["consent"]


def test_the_consent_page_says_who_is_asking_and_an_admin_can_vouch_for_a_client(
    site, admin, browser, person
):
    client = register(site, name="Claude", confidential=True)
    shown = browser.get(client.authorization_url(READ))
    consent = browser.submit(
        shown, shown.forms[0], {"username": person.username, "password": person.password}
    )
    assert consent.status == 200 and "decision" in consent.forms[0].buttons[0]
    assert "Unverified: self-registered" in consent.text
    assert "app.example.com" in consent.text  # where the browser returns to
    assert site.mcp_url in consent.text  # what it asks access to

    admin.press(client_page(client.client_id), "/admin/client", action="verify")
    again = browser.get(client.authorization_url(READ, extra={"prompt": "consent"}))
    assert again.status == 200 and "Unverified:" not in again.text
    assert "Verified by this server's administrator" in again.text


# --- 6. no open redirector ---------------------------------------------------------------------------

ATTACKER_SCOPE = 'Wallet_locked_call_"+1-555-0100"'
"""A malformed scope (RFC 6749 §3.3 allows no `"`) carrying text for the user: refused, never echoed.
(An unknown but well-formed scope is ignored since hosts send `openid` and the like.)"""


@pytest.mark.parametrize(
    "change",
    [
        {"response_type": "token"},
        {"scope": ATTACKER_SCOPE},
        {"code_challenge_method": "plain"},
    ],
)
def test_errors_before_sign_in_are_shown_here_and_never_redirected(site, browser, change):
    client = register(site, redirect_uris=["https://evil.example/cb"])
    url = client.authorization_url(READ, extra=change)
    page = browser.get(url)
    assert page.status == 400 and page.location is None
    assert "Wallet_locked" not in page.html


def test_a_duplicated_parameter_before_sign_in_is_shown_here(site, browser):
    client = register(site, redirect_uris=["https://evil.example/cb"])
    page = browser.get(client.authorization_url(READ) + "&scope=mcp:tools:call")
    assert page.status == 400 and page.location is None


def test_errors_after_sign_in_redirect_with_a_fixed_description(site, browser, person):
    client = register(site, redirect_uris=["https://evil.example/cb"])
    client.tokens(browser, person, READ)  # signed in now
    page = browser.get(client.authorization_url(ATTACKER_SCOPE))
    assert page.status == 302, page.text[:300]
    location = page.location or ""
    assert location.startswith("https://evil.example/cb?") and "error=invalid_scope" in location
    assert "Wallet_locked" not in location


# --- 8. abuse resistance ------------------------------------------------------------------------------


def test_metadata_document_fetch_failures_all_look_the_same(site, browser):
    port = free_port()  # nothing listens there
    answers = set()
    for url in (
        f"https://localhost:{port}/client.json",
        "https://127.0.0.1:1/client.json",
        "https://10.0.0.1/client.json",
    ):
        client = Client(site, url, "https://app.example.com/cb")
        page = browser.get(client.authorization_url(READ))
        assert page.status == 400
        answers.add(page.text)
    assert len(answers) == 1, answers


def test_metadata_document_fetches_are_throttled_per_host(site, metadata_document, browser):
    handler_hits = []
    base = metadata_document.client_id.rsplit("/", 1)[0]
    for i in range(6):
        client = Client(site, f"{base}/client-{i}.json", "https://app.example.com/cimd-cb")
        page = browser.get(client.authorization_url(READ))
        assert page.status in (400, 429) and page.location is None
        handler_hits.append(page.status)
    assert handler_hits.count(429) >= 3, handler_hits


def test_the_admin_client_list_pages_through_the_table(site, admin):
    for _ in range(3):
        register(site)
    seen: list[str] = []
    path = "/admin?" + urlencode({"limit": "2"})
    for _ in range(100):
        page = admin.get(path)
        assert page.status == 200
        ids = [part.split("<", 1)[0] for part in page.html.split("<code>")[1:]]
        assert len(ids) <= 2
        seen.extend(ids)
        if 'rel="next"' not in page.html:
            break
        path = page.html.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert len(seen) == len(set(seen))
    table = site.client("dynamodb").scan(TableName="wallet-mcp-local-ClientsTable", Select="COUNT")
    assert len(seen) >= 3 and len(seen) <= table["Count"]


# --- 9. personal access tokens have a lifecycle ------------------------------------------------------


def test_a_person_sees_and_revokes_their_personal_access_tokens(site, browser, person):
    store = PersonalTokenStore(site.client("dynamodb"), "wallet-mcp-local-PersonalTokensTable")
    now = int(time.time())
    pat, _ = store.create(
        user_id=person.user_id,
        name="budget script",
        scope=("wallet:accounts:read",),
        now=now,
        expires_at=now + 90 * 86400,
    )
    assert api_get(site, pat).status_code == 200

    browser.sign_in(person)
    page = browser.get("/account")
    assert "budget script" in page.text and "wallet:accounts:read" in page.text
    (record,) = store.of_user(person.user_id)
    assert record.last_used_at is not None

    browser.press("/account", "/account/tokens/revoke", token_id=record.token_id)
    assert refused(api_get(site, pat))
    assert "revoked" in browser.get("/account").text.lower()
