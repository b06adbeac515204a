"""A client's token lifetimes (oauth/rules/lifetimes.py) through the real handlers: every grant
issues with the client's lifetimes, clamped into the deployment's; a refresh-token family ends at
its absolute lifetime (invalid_grant, nothing issued); an administrator's shorter value reaches the
families already issued at their next refresh, a longer one only new families; and the admin client
page's "Token lifetimes" form, which refuses out-of-bounds values and forged submissions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import pytest

from devstack.seed import DEMO_USER_ID
from tests.conftest import Function, with_parameters
from tests.handlers.oauth_helpers import (
    FORM,
    REDIRECT,
    VERIFIER,
    body,
    claims,
    exchange,
    introspect,
    obtain_code,
    token_request,
)
from tests.handlers.test_account import ORIGIN, admin_post, audit_events, forms_of, post_form, sign_in
from wallet_mcp import aws
from wallet_mcp.credentials import opaque
from wallet_mcp.credentials.passwords import hash_password
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.database import Database
from wallet_mcp.storage.refresh_tokens import RefreshToken, RefreshTokenStore
from wallet_mcp.storage.users import UserRecord, UserStore

PUBLIC = "lifetimes-public"
CONFIDENTIAL = "lifetimes-confidential"
SECRET = "lifetimes-secret-value"
SCOPE = ("mcp:tools:list", "mcp:tools:call", "wallet:accounts:read")
KINDS = ("access_token_ttl", "refresh_token_ttl", "refresh_family_ttl")


@pytest.fixture
def stores(aws_stack) -> tuple[ClientStore, RefreshTokenStore]:
    """The public and the confidential client of these tests, and the refresh tokens' store."""
    clients = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    common: dict[str, Any] = {"redirect_uris": (REDIRECT,), "scope": SCOPE, "created_at": 0}
    clients.put(
        ClientRecord(
            client_id=PUBLIC,
            client_name="Lifetimes public",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code", "refresh_token"),
            **common,
        )
    )
    clients.put(
        ClientRecord(
            client_id=CONFIDENTIAL,
            client_name="Lifetimes confidential",
            token_endpoint_auth_method="client_secret_basic",
            client_secret_hash=opaque.digest(SECRET),
            grant_types=("authorization_code", "refresh_token", "client_credentials"),
            owner_user_id=DEMO_USER_ID,
            **common,
        )
    )
    return clients, RefreshTokenStore(aws.dynamodb(), aws_stack.physical_ids["RefreshTokensTable"])


@pytest.fixture
def fns(load_function: Callable[..., Function], stores) -> tuple[Function, Function]:
    return load_function("AuthorizeFunction"), load_function("TokenFunction")


def set_lifetimes(clients: ClientStore, client_id: str, **values: int | None) -> None:
    """Store lifetimes as they are (no form, no bounds: what the token endpoint must clamp)."""
    changes = {k: ({"N": str(v)} if v is not None else None) for k, v in values.items()}
    assert clients.update(client_id, changes) is not None


def code_grant(authorize: Function, token: Function, client_id: str = PUBLIC):
    code = obtain_code(authorize, client_id=client_id)
    if client_id == CONFIDENTIAL:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
        }
        return token_request(token, data, basic=(CONFIDENTIAL, SECRET))
    return exchange(token, code, client_id)


def refresh(token: Function, refresh_token: str, client_id: str = PUBLIC):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if client_id == CONFIDENTIAL:
        return token_request(token, data, basic=(CONFIDENTIAL, SECRET))
    return token_request(token, {**data, "client_id": client_id})


def client_credentials(token: Function):
    form = {"grant_type": "client_credentials", "scope": "wallet:accounts:read"}
    return token_request(token, form, basic=(CONFIDENTIAL, SECRET))


def issued(grant: str, authorize: Function, token: Function):
    """A successful token response of `grant`, for the confidential client."""
    match grant:
        case "client_credentials":
            response = client_credentials(token)
        case "authorization_code":
            response = code_grant(authorize, token, CONFIDENTIAL)
        case "refresh_token":
            first = code_grant(authorize, token, CONFIDENTIAL)
            response = refresh(token, body(first)["refresh_token"], CONFIDENTIAL)
    assert response.status == 200, response.body
    return response


def stored(refresh_tokens: RefreshTokenStore, refresh_token: str) -> RefreshToken:
    record = refresh_tokens.get(opaque.digest(refresh_token))
    assert record is not None
    return record


def backdate(refresh_tokens: RefreshTokenStore, refresh_token: str, **times: int) -> None:
    """Move times of a stored refresh token (as if it were issued that long ago)."""
    names = {f"#a{i}": name for i, name in enumerate(times)}
    aws.dynamodb().update_item(
        TableName=refresh_tokens.table,
        Key=RefreshTokenStore.key(opaque.digest(refresh_token)),
        UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(times))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":v{i}": {"N": str(v)} for i, v in enumerate(times.values())},
    )


def lifetime_of(response) -> tuple[int, int]:
    """(`expires_in`, the JWT's `exp - iat`)."""
    jwt = claims(response)
    return body(response)["expires_in"], jwt["exp"] - jwt["iat"]


# --- issuing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("grant", ["authorization_code", "refresh_token", "client_credentials"])
def test_every_grant_issues_access_tokens_with_the_clients_lifetime(fns, stores, grant):
    authorize, token = fns
    set_lifetimes(stores[0], CONFIDENTIAL, access_token_ttl=120)
    assert lifetime_of(issued(grant, authorize, token)) == (120, 120)


@pytest.mark.parametrize("grant", ["authorization_code", "refresh_token", "client_credentials"])
def test_a_client_without_lifetimes_of_its_own_gets_the_deployments(fns, grant):
    authorize, token = fns
    deployment = token.module.SETTINGS.access_token_ttl
    assert lifetime_of(issued(grant, authorize, token)) == (deployment, deployment)


@pytest.mark.parametrize(
    ("stored_value", "expected"),
    [(10**7, "deployment"), (5, 60)],
    ids=["above-the-deployment", "below-the-floor"],
)
def test_a_stored_access_lifetime_out_of_bounds_is_clamped_when_issuing(fns, stores, stored_value, expected):
    """The deployment's bound may have been lowered after the value was saved: the token never
    outlives the revocation list's entries (kept one deployment access-token lifetime)."""
    authorize, token = fns
    set_lifetimes(stores[0], CONFIDENTIAL, access_token_ttl=stored_value)
    ttl = token.module.SETTINGS.access_token_ttl if expected == "deployment" else expected
    for grant in ("authorization_code", "refresh_token", "client_credentials"):
        assert lifetime_of(issued(grant, authorize, token)) == (ttl, ttl), grant


def test_a_lowered_deployment_bound_wins_over_a_clients_longer_value(load_function, stores):
    clients, _ = stores
    set_lifetimes(clients, CONFIDENTIAL, access_token_ttl=3000)
    token = load_function("TokenFunction")
    lowered = load_function("TokenFunction", with_parameters(token.stack, AccessTokenTtlSeconds="900"))
    assert lifetime_of(client_credentials(token)) == (3000, 3000)
    assert lifetime_of(client_credentials(lowered)) == (900, 900)


def test_refresh_tokens_get_the_clients_idle_and_family_lifetimes(fns, stores):
    authorize, token = fns
    clients, refresh_tokens = stores
    set_lifetimes(clients, PUBLIC, refresh_token_ttl=600, refresh_family_ttl=900)
    first = body(code_grant(authorize, token))
    record = stored(refresh_tokens, first["refresh_token"])
    assert record.granted_at is not None
    assert record.expires_at == record.issued_at + 600
    assert record.family_expires_at == record.granted_at + 900
    # rotation carries the family's deadline; the idle expiry never passes it
    backdate(refresh_tokens, first["refresh_token"], issued_at=record.issued_at - 500)
    set_lifetimes(clients, PUBLIC, refresh_token_ttl=None, refresh_family_ttl=None)  # longer: not for it
    second = body(refresh(token, first["refresh_token"]))
    successor = stored(refresh_tokens, second["refresh_token"])
    assert successor.granted_at == record.granted_at
    assert successor.family_expires_at == record.family_expires_at
    assert successor.expires_at == record.family_expires_at


def test_a_stored_refresh_lifetime_above_the_deployments_is_clamped(fns, stores):
    authorize, token = fns
    clients, refresh_tokens = stores
    set_lifetimes(clients, PUBLIC, refresh_token_ttl=10**9, refresh_family_ttl=10**10)
    record = stored(refresh_tokens, body(code_grant(authorize, token))["refresh_token"])
    settings = token.module.SETTINGS
    assert record.expires_at == record.issued_at + settings.refresh_token_idle_ttl
    assert record.family_expires_at == record.granted_at + settings.refresh_token_family_ttl


# --- the family's absolute lifetime ---------------------------------------------------------------


def family_size(refresh_tokens: RefreshTokenStore, refresh_token: str) -> int:
    return len(refresh_tokens.family(stored(refresh_tokens, refresh_token).family_id))


def test_a_refresh_after_the_family_lifetime_is_invalid_grant_and_issues_nothing(fns, stores, aws_stack):
    authorize, token = fns
    _, refresh_tokens = stores
    first = body(code_grant(authorize, token))
    backdate(refresh_tokens, first["refresh_token"], family_expires_at=int(time.time()) - 1)
    issued_before = len(audit_events(aws_stack, DEMO_USER_ID, "token_issued"))

    response = refresh(token, first["refresh_token"])
    assert response.status == 400, response.body
    assert body(response)["error"] == "invalid_grant"
    assert "maximum lifetime" in body(response)["error_description"]
    assert "access_token" not in body(response)
    assert family_size(refresh_tokens, first["refresh_token"]) == 1
    assert stored(refresh_tokens, first["refresh_token"]).status == "active"  # not rotated
    assert len(audit_events(aws_stack, DEMO_USER_ID, "token_issued")) == issued_before


def test_the_table_refuses_a_rotation_once_the_family_has_ended(fns, stores):
    """The deadline is a condition of the rotation itself, not only a check before it."""
    authorize, token = fns
    _, refresh_tokens = stores
    first = body(code_grant(authorize, token))
    now = int(time.time())
    backdate(refresh_tokens, first["refresh_token"], family_expires_at=now)
    record = stored(refresh_tokens, first["refresh_token"])
    successor = record.successor(token_hash=opaque.digest("rt_successor"), issued_at=now)
    database = Database(aws.dynamodb())
    rotation = [refresh_tokens.rotate_action(record, now=now, sealed_successor="x")]
    assert database.commit([*rotation, refresh_tokens.put_action(successor)]) == 0
    assert stored(refresh_tokens, first["refresh_token"]).status == "active"


def test_shortening_the_family_lifetime_ends_families_already_issued_at_their_next_refresh(fns, stores):
    authorize, token = fns
    clients, refresh_tokens = stores
    first = body(code_grant(authorize, token))
    record = stored(refresh_tokens, first["refresh_token"])
    assert record.granted_at is not None
    began = record.granted_at - 400  # the person signed in 400 s ago
    backdate(refresh_tokens, first["refresh_token"], granted_at=began)
    second = refresh(token, first["refresh_token"])
    assert second.status == 200  # the deployment's lifetime: a year

    set_lifetimes(clients, PUBLIC, refresh_family_ttl=300)
    third = refresh(token, body(second)["refresh_token"])
    assert third.status == 400 and body(third)["error"] == "invalid_grant"
    # a new sign-in starts a new family, which the shorter lifetime governs from its start
    again = body(code_grant(authorize, token))
    fresh = stored(refresh_tokens, again["refresh_token"])
    assert fresh.granted_at is not None and fresh.family_expires_at == fresh.granted_at + 300
    assert refresh(token, again["refresh_token"]).status == 200


def test_shortening_the_idle_lifetime_applies_to_refresh_tokens_already_issued(fns, stores):
    authorize, token = fns
    clients, refresh_tokens = stores
    first = body(code_grant(authorize, token))
    record = stored(refresh_tokens, first["refresh_token"])
    backdate(refresh_tokens, first["refresh_token"], issued_at=record.issued_at - 400)
    set_lifetimes(clients, PUBLIC, refresh_token_ttl=300)
    response = refresh(token, first["refresh_token"])
    assert response.status == 400 and body(response)["error"] == "invalid_grant"


def test_introspection_reports_a_refresh_token_dead_past_its_family_lifetime(fns, stores):
    authorize, token = fns
    clients, refresh_tokens = stores
    set_lifetimes(clients, CONFIDENTIAL, refresh_family_ttl=900)
    first = body(code_grant(authorize, token, CONFIDENTIAL))
    record = stored(refresh_tokens, first["refresh_token"])
    active = body(introspect(token, first["refresh_token"], (CONFIDENTIAL, SECRET)))
    assert active["active"] is True
    assert active["exp"] == min(record.expires_at, record.granted_at + 900)
    set_lifetimes(clients, CONFIDENTIAL, refresh_family_ttl=300)
    backdate(refresh_tokens, first["refresh_token"], granted_at=int(time.time()) - 301)
    assert body(introspect(token, first["refresh_token"], (CONFIDENTIAL, SECRET))) == {"active": False}
    refused = refresh(token, first["refresh_token"], CONFIDENTIAL)
    assert refused.status == 400 and body(refused)["error"] == "invalid_grant"


# --- the admin client page -----------------------------------------------------------------------


@pytest.fixture
def admin(load_function: Callable[..., Function], stores) -> tuple[Function, dict[str, str]]:
    """The account function and an administrator's cookies (the demo user is an admin)."""
    account = load_function("AccountFunction")
    _, cookies = sign_in(account)
    return account, cookies


def client_page(account: Function, cookies: dict[str, str], client_id: str = PUBLIC):
    page = account.request("GET", "/admin/client", query=urlencode({"client_id": client_id}), cookies=cookies)
    assert page.status == 200, page.body
    return page


def lifetimes_form(page):
    (form,) = (f for f in forms_of(page)[0] if f.fields.get("action") == "set_lifetimes")
    return form


def save_lifetimes(
    account: Function, cookies: dict[str, str], values: dict[str, str], client_id: str = PUBLIC
):
    return post_form(account, lifetimes_form(client_page(account, cookies, client_id)), cookies, values)


def own_lifetimes(clients: ClientStore, client_id: str = PUBLIC) -> tuple[int | None, ...]:
    record = clients.get_any(client_id)
    assert record is not None
    return tuple(getattr(record, kind) for kind in KINDS)


def test_the_page_shows_the_deployments_lifetimes_as_defaults(admin):
    account, cookies = admin
    settings = account.module.SETTINGS
    page = client_page(account, cookies)
    text = forms_of(page)[1]
    assert "Token lifetimes" in text
    assert f"Access token lifetime default ({settings.access_token_ttl} s / 1 h)" in text
    assert f"Refresh token idle lifetime default ({settings.refresh_token_idle_ttl} s / 30 days)" in text
    assert (
        f"Refresh family absolute lifetime default ({settings.refresh_token_family_ttl} s / 365 days)" in text
    )
    form = lifetimes_form(page)
    assert form.action == "/admin/client" and form.fields["client_id"] == PUBLIC and form.fields["csrf_token"]
    assert all(form.fields[kind] == "" for kind in KINDS)


def test_admin_sets_lifetimes_the_page_shows_them_and_tokens_follow(admin, fns, stores, aws_stack):
    account, cookies = admin
    authorize, token = fns
    clients, refresh_tokens = stores
    saved = save_lifetimes(
        account, cookies, {"access_token_ttl": "120", "refresh_token_ttl": "10m", "refresh_family_ttl": "1d"}
    )
    assert saved.status == 200, saved.body
    text = forms_of(saved)[1]
    assert "Token lifetimes saved." in text
    assert "Access token lifetime 120 s (2 min)" in text
    assert "Refresh token idle lifetime 600 s (10 min)" in text
    assert "Refresh family absolute lifetime 86400 s (1 day)" in text
    assert {k: lifetimes_form(saved).fields[k] for k in KINDS} == {
        "access_token_ttl": "120",
        "refresh_token_ttl": "600",
        "refresh_family_ttl": "86400",
    }
    assert own_lifetimes(clients) == (120, 600, 86400)
    (event,) = audit_events(aws_stack, PUBLIC, "client_lifetimes_updated")
    assert event["details"]["by"] == DEMO_USER_ID
    assert event["details"]["access_token_ttl"] == 120
    assert event["details"]["previous"] == dict.fromkeys(KINDS)

    granted = code_grant(authorize, token)
    assert lifetime_of(granted) == (120, 120)
    record = stored(refresh_tokens, body(granted)["refresh_token"])
    assert record.expires_at == record.issued_at + 600
    assert record.family_expires_at == record.granted_at + 86400


def test_clearing_a_lifetime_returns_it_to_the_default(admin, fns, stores):
    account, cookies = admin
    authorize, token = fns
    clients, _ = stores
    set_lifetimes(clients, PUBLIC, access_token_ttl=120, refresh_token_ttl=600)
    assert lifetime_of(code_grant(authorize, token)) == (120, 120)
    saved = save_lifetimes(account, cookies, {"access_token_ttl": ""})
    assert saved.status == 200, saved.body
    assert own_lifetimes(clients) == (None, 600, None)
    raw = aws.dynamodb().get_item(TableName=clients.table, Key=ClientStore.key(PUBLIC))["Item"]
    assert "access_token_ttl" not in raw  # removed, not stored empty
    default = account.module.SETTINGS.access_token_ttl
    assert f"Access token lifetime default ({default} s / 1 h)" in forms_of(saved)[1]
    assert lifetime_of(code_grant(authorize, token)) == (default, default)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("access_token_ttl", "59", "Access token lifetime must be at least 60 s."),
        ("access_token_ttl", "3601", "Access token lifetime may be at most this deployment's, 3600 s."),
        ("access_token_ttl", "2h", "Access token lifetime may be at most this deployment's, 3600 s."),
        ("refresh_token_ttl", "299", "Refresh token idle lifetime must be at least 300 s."),
        ("refresh_token_ttl", "31d", "Refresh token idle lifetime may be at most this deployment's"),
        ("refresh_family_ttl", "4m", "Refresh family absolute lifetime must be at least 300 s."),
        ("refresh_family_ttl", "366d", "Refresh family absolute lifetime may be at most this deployment's"),
        ("access_token_ttl", "abc", "Access token lifetime: give a number of seconds"),
        ("access_token_ttl", "-120", "Access token lifetime: give a number of seconds"),
        ("refresh_token_ttl", "1.5h", "Refresh token idle lifetime: give a number of seconds"),
        ("refresh_family_ttl", "9" * 40, "Refresh family absolute lifetime: give a number of seconds"),
    ],
)
def test_out_of_bounds_lifetimes_are_refused_and_nothing_is_saved(
    admin, stores, aws_stack, field, value, message
):
    account, cookies = admin
    clients, _ = stores
    set_lifetimes(clients, PUBLIC, access_token_ttl=300)
    valid = {"access_token_ttl": "600", "refresh_token_ttl": "3600", "refresh_family_ttl": "86400"}
    response = save_lifetimes(account, cookies, {**valid, field: value})
    assert response.status == 400, response.body
    assert message in forms_of(response)[1]
    assert lifetimes_form(response).fields[field] == value[:16]  # shown again, to correct
    assert own_lifetimes(clients) == (300, None, None)  # not even the valid fields
    assert audit_events(aws_stack, PUBLIC, "client_lifetimes_updated") == []


@pytest.mark.parametrize(
    ("headers", "drop_csrf", "status"),
    [
        ({}, True, 403),
        ({"origin": "https://evil.example"}, False, 403),
        ({"sec-fetch-site": "cross-site"}, False, 403),
    ],
    ids=["no-csrf-token", "foreign-origin", "cross-site"],
)
def test_the_lifetimes_form_is_refused_without_its_csrf_token_or_from_another_site(
    admin, stores, headers, drop_csrf, status
):
    account, cookies = admin
    clients, _ = stores
    fields = lifetimes_form(client_page(account, cookies)).submission({"access_token_ttl": "120"})
    if drop_csrf:
        fields["csrf_token"] = "forged"
    response = account.request(
        "POST",
        "/admin/client",
        headers={**FORM, **ORIGIN, **headers},
        body=urlencode(fields),
        cookies=cookies,
    )
    assert response.status == status
    assert own_lifetimes(clients) == (None, None, None)


def test_only_an_admin_may_set_lifetimes(admin, stores, aws_stack):
    account, _ = admin
    clients, _ = stores
    UserStore(aws.dynamodb(), aws_stack.physical_ids["UsersTable"]).create(
        UserRecord(
            username="carol", user_id="user-carol", password_hash=hash_password("carol-pw"), created_at=0
        )
    )
    _, cookies = sign_in(account, "carol", "carol-pw")
    pairs = [("client_id", PUBLIC), ("action", "set_lifetimes"), ("access_token_ttl", "120")]
    response = admin_post(account, cookies, "/admin/client", pairs)  # her own session's CSRF token
    assert response.status == 403
    assert own_lifetimes(clients) == (None, None, None)


def test_a_deleted_client_has_no_lifetimes_form_and_refuses_one(admin, stores):
    account, cookies = admin
    clients, _ = stores
    form = lifetimes_form(client_page(account, cookies))
    assert clients.delete(PUBLIC, now=int(time.time()), keep_tombstone=60) is not None
    assert not [
        f for f in forms_of(client_page(account, cookies))[0] if f.fields.get("action") == "set_lifetimes"
    ]
    response = post_form(account, form, cookies, {"access_token_ttl": "120"})
    assert response.status == 400 and "This client was deleted." in forms_of(response)[1]
    assert own_lifetimes(clients) == (None, None, None)


def test_a_metadata_document_fetched_again_keeps_the_administrators_lifetimes(admin, stores):
    account, cookies = admin
    clients, _ = stores
    url, now = "https://app.example.com/client.json", int(time.time())
    document = ClientRecord(
        client_id=url,
        client_name="Described",
        token_endpoint_auth_method="none",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=(REDIRECT,),
        scope=SCOPE,
        created_at=now,
        metadata_document=True,
        expires_at=now + 3600,
        metadata_fresh_until=now + 60,
    )
    assert clients.save_metadata_document(document) is not None
    saved = save_lifetimes(account, cookies, {"access_token_ttl": "120"}, client_id=url)
    assert saved.status == 200, saved.body
    record = clients.get_any(url)
    assert record is not None and record.access_token_ttl == 120
    assert record.expires_at is None  # the administrator's decision outlives the document's cache
    assert clients.save_metadata_document(replace(document, client_name="Described again")) is not None
    again = clients.get_any(url)
    assert again is not None and again.client_name == "Described again" and again.access_token_ttl == 120
