"""Authorization-code and refresh-token grants, revocation and introspection, through the handlers."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USER_ID
from tests.conftest import BASE_URL, Function, header
from tests.handlers import oauth_helpers
from tests.handlers.oauth_helpers import (
    REDIRECT,
    VERIFIER,
    body,
    claims,
    exchange,
    mcp_call,
    obtain_code,
    token_request,
)
from wallet_mcp import aws
from wallet_mcp.credentials import opaque
from wallet_mcp.storage.clients import ClientRecord, ClientStore

PUBLIC = "public-app"
CONFIDENTIAL = "confidential-app"
SECRET = "s3cret-value"


@pytest.fixture
def clients(aws_stack):
    """The public and the confidential client these tests use."""
    store = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    common = {
        "grant_types": ("authorization_code", "refresh_token"),
        "redirect_uris": (REDIRECT,),
        "scope": ("mcp:tools:list", "mcp:tools:call", "wallet:accounts:read"),
        "created_at": 0,
    }
    store.put(
        ClientRecord(client_id=PUBLIC, client_name="Public", token_endpoint_auth_method="none", **common)
    )
    store.put(
        ClientRecord(
            client_id=CONFIDENTIAL,
            client_name="Confidential",
            token_endpoint_auth_method="client_secret_basic",
            client_secret_hash=opaque.digest(SECRET),
            **common,
        )
    )


@pytest.fixture
def fns(load_function, clients):
    return load_function("AuthorizeFunction"), load_function("TokenFunction"), load_function("McpFunction")


@pytest.fixture
def code_fns(load_function: Callable[..., Function], clients: None) -> tuple[Function, Function]:
    """The authorize and token functions only, for tests that never reach the MCP function."""
    return load_function("AuthorizeFunction"), load_function("TokenFunction")


def test_code_exchange_issues_user_tokens(fns):
    authorize, token, _ = fns
    response = exchange(token, obtain_code(authorize, client_id=PUBLIC), PUBLIC)
    assert response.status == 200, response.body
    result = body(response)
    assert result["token_type"] == "Bearer"
    assert result["refresh_token"].startswith("rt_")
    assert result["scope"] == "mcp:tools:list mcp:tools:call"
    assert header(response, "cache-control") == "no-store"
    c = claims(response)
    assert c["sub"] == DEMO_USER_ID
    assert c["client_id"] == PUBLIC
    assert c["aud"] == f"{BASE_URL}/mcp"


def test_resource_is_carried_into_the_audience(fns):
    authorize, token, _ = fns
    code = obtain_code(authorize, client_id=PUBLIC, resource=f"{BASE_URL}/api")
    assert claims(exchange(token, code, PUBLIC))["aud"] == f"{BASE_URL}/api"


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"verifier": "wrong-" + "y" * 50}, 400, "invalid_grant"),
        ({"verifier": VERIFIER + "\n"}, 400, "invalid_grant"),
        ({"redirect_uri": "https://app.example.com/other"}, 400, "invalid_grant"),
        ({"client_id": CONFIDENTIAL, "client_secret": SECRET}, 400, "invalid_grant"),
        ({"code": "not-a-code"}, 400, "invalid_grant"),
        ({"code_verifier": None}, 400, "invalid_request"),
        ({"redirect_uri": None}, 400, "invalid_request"),
        ({"resource": "https://elsewhere.example.com/mcp"}, 400, "invalid_target"),
        ({"client_secret": "public clients have none"}, 401, "invalid_client"),
    ],
)
def test_code_exchange_errors(fns, change, status, error):
    authorize, token, _ = fns
    code = obtain_code(authorize, client_id=PUBLIC)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": PUBLIC,
    }
    if "verifier" in change:
        data["code_verifier"] = change.pop("verifier")
    for key, value in change.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    response = token_request(token, data)
    assert response.status == status, response.body
    assert body(response)["error"] == error


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t"])
def test_a_verifier_outside_the_rfc7636_grammar_is_invalid_grant_even_when_its_hash_matches(
    code_fns: tuple[Function, Function], suffix: str
) -> None:
    authorize, token = code_fns
    verifier = VERIFIER + suffix  # the challenge is its true S256, so only the grammar can refuse it
    code = obtain_code(authorize, client_id=PUBLIC, verifier=verifier)
    response = exchange(token, code, PUBLIC, verifier=verifier)
    assert response.status == 400, response.body
    assert body(response)["error"] == "invalid_grant"


def test_an_expired_code_is_invalid_grant(fns, aws_stack):
    authorize, token, _ = fns
    code = obtain_code(authorize, client_id=PUBLIC)
    aws.dynamodb().update_item(
        TableName=aws_stack.physical_ids["AuthCodesTable"],
        Key={"code_hash": {"S": opaque.digest(code)}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert body(exchange(token, code, PUBLIC))["error"] == "invalid_grant"


def test_a_replayed_code_revokes_the_tokens_issued_from_it(fns):
    authorize, token, mcp = fns
    code = obtain_code(authorize, client_id=PUBLIC)
    first = body(exchange(token, code, PUBLIC))
    assert mcp_call(mcp, first["access_token"]).status == 200
    replay = exchange(token, code, PUBLIC)
    assert replay.status == 400
    assert body(replay)["error"] == "invalid_grant"
    refreshed = token_request(
        token, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": PUBLIC}
    )
    assert body(refreshed)["error"] == "invalid_grant"
    mcp.module.deployment.revocation_cache._fetched_at = None  # skip the poll interval
    assert mcp_call(mcp, first["access_token"]).status == 401


def refresh(token_fn, refresh_token, client_id=PUBLIC, **extra):
    return token_request(
        token_fn,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id, **extra},
    )


def test_refresh_rotates_and_reuse_after_the_grace_window_revokes_the_family(fns, aws_stack):
    authorize, token, _ = fns
    first = body(exchange(token, obtain_code(authorize, client_id=PUBLIC), PUBLIC))
    second = refresh(token, first["refresh_token"])
    assert second.status == 200
    rotated = body(second)
    assert rotated["refresh_token"] != first["refresh_token"]
    # within the grace window the old token gets the very same pair (concurrent refreshes)
    assert body(refresh(token, first["refresh_token"])) == rotated
    # after it, reuse means theft: the whole family dies, including the newest token
    aws.dynamodb().update_item(
        TableName=aws_stack.physical_ids["RefreshTokensTable"],
        Key={"token_hash": {"S": opaque.digest(first["refresh_token"])}},
        UpdateExpression="SET rotated_at = :long_ago",
        ExpressionAttributeValues={":long_ago": {"N": str(int(time.time()) - 3600)}},
    )
    reuse = refresh(token, first["refresh_token"])
    assert body(reuse)["error"] == "invalid_grant"
    assert body(refresh(token, rotated["refresh_token"]))["error"] == "invalid_grant"


def test_refresh_may_narrow_but_not_widen_the_scope(fns):
    authorize, token, _ = fns
    first = body(exchange(token, obtain_code(authorize, client_id=PUBLIC), PUBLIC))
    narrowed = refresh(token, first["refresh_token"], scope="mcp:tools:call")
    assert narrowed.status == 200
    assert body(narrowed)["scope"] == "mcp:tools:call"
    wider = refresh(token, body(narrowed)["refresh_token"], scope="mcp:tools:call wallet:accounts:read")
    assert body(wider)["error"] == "invalid_scope"
    # the grant itself kept its scope: a later refresh without scope gets all of it back
    full = refresh(token, body(narrowed)["refresh_token"])
    assert body(full)["scope"] == "mcp:tools:list mcp:tools:call"


def test_refresh_token_is_bound_to_its_client(fns):
    authorize, token, _ = fns
    first = body(exchange(token, obtain_code(authorize, client_id=PUBLIC), PUBLIC))
    stolen = token_request(
        token,
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        basic=(CONFIDENTIAL, SECRET),
    )
    assert body(stolen)["error"] == "invalid_grant"


def test_refresh_keeps_the_resource(fns):
    authorize, token, _ = fns
    code = obtain_code(authorize, client_id=PUBLIC, resource=f"{BASE_URL}/api")
    first = body(exchange(token, code, PUBLIC))
    refreshed = refresh(token, first["refresh_token"])
    assert claims(refreshed)["aud"] == f"{BASE_URL}/api"
    assert body(refresh(token, body(refreshed)["refresh_token"], resource=f"{BASE_URL}/mcp"))["error"] == (
        "invalid_target"
    )


def test_grant_costs(fns):
    authorize, token, _ = fns
    first = body(exchange(token, obtain_code(authorize, client_id=PUBLIC), PUBLIC))  # warm the function
    code = obtain_code(authorize, client_id=PUBLIC)
    calls: list[str] = []
    aws.on_api_call(lambda service, op: calls.append(f"{service}:{op}"))
    exchanged = exchange(token, code, PUBLIC)
    assert exchanged.status == 200
    # the code with its client, then the revocation entries of that user and client (a second
    # read: the user is known only from the code), a signature, one transaction
    expected = ["dynamodb:BatchGetItem", "dynamodb:BatchGetItem", "kms:Sign", "dynamodb:TransactWriteItems"]
    assert calls == expected
    calls.clear()
    assert refresh(token, first["refresh_token"]).status == 200
    assert calls == expected


def test_revoking_a_refresh_token_ends_its_family_and_access_tokens(fns):
    authorize, token, mcp = fns
    first = body(exchange(token, obtain_code(authorize, client_id=PUBLIC), PUBLIC))
    response = token.request(
        "POST",
        "/oauth/revoke",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=f"token={first['refresh_token']}&token_type_hint=refresh_token&client_id={PUBLIC}",
    )
    assert response.status == 200
    assert body(refresh(token, first["refresh_token"]))["error"] == "invalid_grant"
    assert mcp_call(mcp, first["access_token"]).status == 401


def test_revoking_an_access_token(fns):
    authorize, token, mcp = fns
    first = body(exchange(token, obtain_code(authorize, client_id=PUBLIC), PUBLIC))
    assert mcp_call(mcp, first["access_token"]).status == 200
    response = token.request(
        "POST",
        "/oauth/revoke",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=f"token={first['access_token']}&client_id={PUBLIC}",
    )
    assert response.status == 200
    mcp.module.deployment.revocation_cache._fetched_at = None  # skip the poll interval
    response = mcp_call(mcp, first["access_token"])
    assert response.status == 401
    assert "revoked" in header(response, "www-authenticate")


@pytest.mark.parametrize("token_value", ["unknown-token", "a.b.c", ""])
def test_revoking_unknown_tokens_is_200(fns, token_value):
    _, token, _ = fns
    response = token.request(
        "POST",
        "/oauth/revoke",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=f"token={token_value}&client_id={PUBLIC}",
    )
    assert response.status == (400 if token_value == "" else 200)


def test_revocation_needs_client_authentication(fns):
    _, token, _ = fns
    response = token.request(
        "POST", "/oauth/revoke", headers={"content-type": "application/x-www-form-urlencoded"}, body="token=x"
    )
    assert response.status == 401
    assert body(response)["error"] == "invalid_client"


def introspect(token_fn, value, basic=(CONFIDENTIAL, SECRET)):
    return oauth_helpers.introspect(token_fn, value, basic)


def test_introspection(fns):
    authorize, token, _ = fns
    code = obtain_code(authorize, client_id=CONFIDENTIAL)
    issued = body(
        token_request(
            token,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
            },
            basic=(CONFIDENTIAL, SECRET),
        )
    )
    response = introspect(token, issued["access_token"])
    assert response.status == 200
    result = body(response)
    assert result["active"] is True
    assert result["client_id"] == CONFIDENTIAL
    assert result["sub"] == DEMO_USER_ID
    assert result["aud"] == f"{BASE_URL}/mcp"
    assert result["token_type"] == "Bearer"
    assert {"scope", "exp", "iat"} <= set(result)
    assert header(response, "cache-control") == "no-store"

    refresh_info = body(introspect(token, issued["refresh_token"]))
    assert refresh_info["active"] is True and refresh_info["token_type"] == "refresh_token"

    # revoked, unknown and other clients' tokens are all just inactive
    token.request(
        "POST",
        "/oauth/revoke",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=f"token={issued['access_token']}&client_id={CONFIDENTIAL}&client_secret={SECRET}",
    )
    assert body(introspect(token, issued["access_token"])) == {"active": False}
    assert body(introspect(token, "garbage")) == {"active": False}
    demo_token = body(
        token_request(
            token,
            {
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
        )
    )["access_token"]
    assert body(introspect(token, demo_token)) == {"active": False}


def test_introspection_is_for_confidential_clients(fns):
    _, token, _ = fns
    response = token.request(
        "POST",
        "/oauth/introspect",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=f"token=x&client_id={PUBLIC}",
    )
    assert response.status == 401
    assert body(response)["error"] == "invalid_client"
