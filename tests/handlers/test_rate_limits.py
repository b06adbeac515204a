"""Rate limits and lockouts: 429 with Retry-After, counted in DynamoDB across every instance."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from urllib.parse import urlencode

import pytest

from devstack.events import HttpResponse
from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD, DEMO_USERNAME
from devstack.template import Stack
from tests.conftest import Function, header, response_json, set_cookies
from tests.forms import parse
from tests.handlers.oauth_helpers import FORM, REDIRECT
from wallet_mcp import aws
from wallet_mcp.primitives import pkce
from wallet_mcp.storage.clients import ClientRecord, ClientStore

CC = f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"


def limited(stack: Stack, **parameters: str) -> Stack:
    """The same resources, deployed with other limits."""
    variant = Stack(stack.template, parameters={**stack.parameters, **parameters})
    variant.physical_ids = dict(stack.physical_ids)
    return variant


def test_client_credentials_requests_are_limited_per_client(load_function, aws_stack):
    token = load_function("TokenFunction", limited(aws_stack, TokenRequestsPerClientPerMinute="3"))
    statuses = [token.request("POST", "/oauth/token", headers=FORM, body=CC).status for _ in range(4)]
    if statuses[:3] != [200, 200, 200]:  # a minute boundary passed mid-test: the window restarted
        statuses = [token.request("POST", "/oauth/token", headers=FORM, body=CC).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = token.request("POST", "/oauth/token", headers=FORM, body=CC)
    assert response.status == 429
    assert response_json(response)["error"] == "slow_down"
    assert 1 <= int(header(response, "retry-after")) <= 60
    assert header(response, "cache-control") == "no-store"


def test_failed_token_requests_lock_out_the_address(load_function, aws_stack):
    token = load_function("TokenFunction", limited(aws_stack, TokenFailuresPerAddressPerMinute="3"))
    wrong = CC.replace(DEMO_CLIENT_SECRET, "guess")
    statuses = [token.request("POST", "/oauth/token", headers=FORM, body=wrong).status for _ in range(3)]
    assert statuses == [401, 401, 401]
    # now even the right secret waits: guessing cannot continue from this address
    refused = token.request("POST", "/oauth/token", headers=FORM, body=CC)
    assert refused.status == 429
    assert "failed token requests" in response_json(refused)["error_description"]


def test_a_known_clients_refused_grants_do_not_lock_out_its_shared_address(load_function, aws_stack):
    """AI hosts call from a few shared egress addresses: their users' expired or revoked refresh
    tokens and stale codes (invalid_grant) must not lock out every other user behind the same
    address. Only failures of callers that did not authenticate as a client count there."""
    token = load_function("TokenFunction", limited(aws_stack, TokenFailuresPerAddressPerMinute="3"))
    secret = f"client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"
    stale = [f"grant_type=refresh_token&refresh_token=expired-{n}&{secret}" for n in range(3)] + [
        f"grant_type=authorization_code&code=used-{n}&code_verifier={'v' * 50}&{secret}&"
        + urlencode({"redirect_uri": REDIRECT})
        for n in range(3)
    ]
    for body in stale:
        response = token.request("POST", "/oauth/token", headers=FORM, body=body)
        assert (response.status, response_json(response)["error"]) == (400, "invalid_grant")
    assert token.request("POST", "/oauth/token", headers=FORM, body=CC).status == 200
    # an unauthenticated caller at the same address still counts
    wrong = CC.replace(DEMO_CLIENT_SECRET, "guess")
    assert [token.request("POST", "/oauth/token", headers=FORM, body=wrong).status for _ in range(3)] == [
        401
    ] * 3
    assert token.request("POST", "/oauth/token", headers=FORM, body=CC).status == 429


def test_registrations_are_limited_per_address_and_only_stored_ones_count(load_function, aws_stack):
    register = load_function("RegisterFunction", limited(aws_stack, RegistrationsPerAddressPerHour="2"))

    def post(metadata):
        return register.request(
            "POST", "/oauth/register", headers={"content-type": "application/json"}, body=json.dumps(metadata)
        )

    good = {"redirect_uris": ["http://localhost:9/cb"], "token_endpoint_auth_method": "none"}
    assert post({"redirect_uris": ["javascript:x"]}).status == 400  # refused: not counted
    assert [post(good).status, post(good).status] == [201, 201]
    third = post(good)
    assert third.status == 429
    assert int(header(third, "retry-after")) > 0
    count = aws.dynamodb().scan(TableName=aws_stack.physical_ids["ClientsTable"])["Count"]
    assert count == 3  # the seed's client and the two registrations


def test_introspection_is_limited_per_client(load_function, aws_stack):
    token = load_function("TokenFunction", limited(aws_stack, IntrospectionsPerClientPerMinute="2"))
    body = f"token=x&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"
    statuses = [token.request("POST", "/oauth/introspect", headers=FORM, body=body).status for _ in range(3)]
    assert statuses[-1] == 429 and statuses[:2] == [200, 200]


@pytest.fixture
def authorize_fn(load_function, aws_stack):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id="web-app",
            client_name="Web app",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code",),
            redirect_uris=(REDIRECT,),
            scope=("mcp:tools:call",),
            created_at=0,
        )
    )
    return load_function("AuthorizeFunction")


def start(authorize_fn):
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "web-app",
            "redirect_uri": REDIRECT,
            "code_challenge": pkce.s256("v" * 50),
            "code_challenge_method": "S256",
        }
    )
    page = authorize_fn.request("GET", "/oauth/authorize", query=query)
    return set_cookies(page), parse(page.body.decode())[0][0]


def sign_in(authorize_fn, cookies, form, password):
    body = urlencode(form.submission({"username": DEMO_USERNAME, "password": password}))
    return authorize_fn.request("POST", "/oauth/authorize", headers=FORM, body=body, cookies=cookies)


def test_repeated_wrong_passwords_lock_the_account_with_growing_backoff(authorize_fn, aws_stack):
    cookies, form = start(authorize_fn)
    for _ in range(5):
        assert "Invalid username or password" in sign_in(authorize_fn, cookies, form, "wrong").body.decode()
    locked = sign_in(authorize_fn, cookies, form, DEMO_PASSWORD)  # even the right password waits
    assert locked.status == 429
    assert 25 <= int(header(locked, "retry-after")) <= 30
    assert "Too many failed sign-ins" in locked.body.decode()
    assert "wallet_session" not in set_cookies(locked)

    # once the backoff has passed, the right password works and clears the count
    table = aws_stack.physical_ids["RateLimitsTable"]
    for item in aws.dynamodb().scan(TableName=table)["Items"]:
        if item["bucket"]["S"].startswith("login-fail-user-ip#"):
            aws.dynamodb().update_item(
                TableName=table,
                Key={"bucket": item["bucket"]},
                UpdateExpression="SET last_at = :t",
                ExpressionAttributeValues={":t": {"N": str(int(time.time()) - 31)}},
            )
    cookies, form = start(authorize_fn)
    ok = sign_in(authorize_fn, cookies, form, DEMO_PASSWORD)
    assert ok.status == 200
    assert "wallet_session" in set_cookies(ok)
    assert not [
        i
        for i in aws.dynamodb().scan(TableName=table)["Items"]
        if i["bucket"]["S"].startswith("login-fail-user-ip#")
    ]


def test_lockout_backoff_doubles_and_is_capped():
    from wallet_mcp.limits import lockout_remaining

    assert lockout_remaining(4, 1000, 5, 1000) == 0
    assert lockout_remaining(5, 1000, 5, 1000) == 30
    assert lockout_remaining(6, 1000, 5, 1000) == 60
    assert lockout_remaining(7, 1000, 5, 1010) == 110
    assert lockout_remaining(30, 1000, 5, 1000) == 900
    assert lockout_remaining(6, 1000, 5, 1061) == 0


# --- sign-in lockouts: per (username, address), per username in all, per address ----------------

ADDRESS_A, ADDRESS_B, ADDRESS_C = "203.0.113.7", "198.51.100.23", "192.0.2.44"


def attempt(
    function: Function, password: str, source_ip: str, *, username: str = DEMO_USERNAME
) -> HttpResponse:
    """One sign-in from `source_ip` through the login form `function` serves: the authorization
    endpoint's (AuthorizeFunction) or the account pages' (AccountFunction)."""
    if function.logical_id == "AccountFunction":
        page = function.request("GET", "/account", source_ip=source_ip)
        path = "/account"
    else:
        page = function.request("GET", "/oauth/authorize", query=_authorize_query(), source_ip=source_ip)
        path = "/oauth/authorize"
    assert page.status == 200, page.body
    (form,), _ = parse(page.body.decode())
    body = urlencode(form.submission({"username": username, "password": password}))
    return function.request(
        "POST", path, headers=FORM, body=body, cookies=set_cookies(page), source_ip=source_ip
    )


def _authorize_query() -> str:
    return urlencode(
        {
            "response_type": "code",
            "client_id": "web-app",
            "redirect_uri": REDIRECT,
            "code_challenge": pkce.s256("v" * 50),
            "code_challenge_method": "S256",
        }
    )


def refused_as_wrong(response: HttpResponse) -> bool:
    return response.status == 200 and "Invalid username or password" in response.body.decode()


def signed_in(response: HttpResponse) -> bool:
    return response.status in (200, 303) and "wallet_session" in set_cookies(response)


@pytest.fixture(params=["AuthorizeFunction", "AccountFunction"])
def login_form(
    request: pytest.FixtureRequest, authorize_fn: Function, load_function: Callable[..., Function]
) -> Function:
    """Each function that signs people in with a password."""
    return authorize_fn if request.param == "AuthorizeFunction" else load_function("AccountFunction")


def test_failures_from_one_address_lock_out_that_address_only(login_form: Function) -> None:
    for _ in range(5):
        assert refused_as_wrong(attempt(login_form, "wrong", ADDRESS_A))
    locked = attempt(login_form, DEMO_PASSWORD, ADDRESS_A)  # even the right password waits there
    assert locked.status == 429
    assert 25 <= int(header(locked, "retry-after") or 0) <= 30
    assert "Too many failed sign-ins" in locked.body.decode()
    # whoever failed from A cannot lock the user out from B
    assert signed_in(attempt(login_form, DEMO_PASSWORD, ADDRESS_B))


def test_failures_for_one_username_from_every_address_together_are_capped(
    load_function: Callable[..., Function], aws_stack: Stack
) -> None:
    account = load_function("AccountFunction", limited(aws_stack, LoginFailuresPerUserPerHour="3"))
    for address in (ADDRESS_A, ADDRESS_B, ADDRESS_C):  # one failure each: no address is locked out
        assert refused_as_wrong(attempt(account, "wrong", address))
    refused = attempt(account, DEMO_PASSWORD, "192.0.2.99")  # a fresh address, the right password
    assert refused.status == 429
    assert "Too many failed sign-ins" in refused.body.decode()
    assert 1 <= int(header(refused, "retry-after") or 0) <= 3600
    assert "wallet_session" not in set_cookies(refused)
    # another username is not affected
    assert refused_as_wrong(attempt(account, "wrong", "192.0.2.99", username="someone-else"))


def test_a_success_clears_the_failures_of_its_own_address_only(authorize_fn: Function) -> None:
    for address in (ADDRESS_A, ADDRESS_B):
        for _ in range(4):
            assert refused_as_wrong(attempt(authorize_fn, "wrong", address))
    assert signed_in(attempt(authorize_fn, DEMO_PASSWORD, ADDRESS_A))
    # A starts again from zero: four more failures there still do not lock it
    for _ in range(4):
        assert refused_as_wrong(attempt(authorize_fn, "wrong", ADDRESS_A))
    assert signed_in(attempt(authorize_fn, DEMO_PASSWORD, ADDRESS_A))
    # B's count was not cleared by A's success: its fifth failure locks B
    assert refused_as_wrong(attempt(authorize_fn, "wrong", ADDRESS_B))
    assert attempt(authorize_fn, DEMO_PASSWORD, ADDRESS_B).status == 429


def test_failures_for_a_username_that_does_not_exist_lock_out_the_same_way(authorize_fn: Function) -> None:
    for _ in range(5):
        assert refused_as_wrong(attempt(authorize_fn, "wrong", ADDRESS_A, username="nobody-here"))
    assert attempt(authorize_fn, "wrong", ADDRESS_A, username="nobody-here").status == 429


def test_pushed_authorization_requests_are_limited_per_client_and_failures_per_address(
    load_function, aws_stack
):
    """`/oauth/par` authenticates clients like the token endpoint (RFC 9126 §2), so it is guarded
    like it: a client's pushes per minute, and an address's failed authentications."""
    from tests.handlers.test_par import BASIC, request_params

    token = load_function(
        "TokenFunction",
        limited(aws_stack, TokenRequestsPerClientPerMinute="3", TokenFailuresPerAddressPerMinute="3"),
    )

    def push(headers=BASIC):
        return token.request(
            "POST", "/oauth/par", headers={**FORM, **headers}, body=urlencode(request_params())
        )

    statuses = [push().status for _ in range(4)]
    if statuses[:3] != [201, 201, 201]:  # a minute boundary passed mid-test: the window restarted
        statuses = [push().status for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = push()
    assert response_json(refused)["error"] == "slow_down" and header(refused, "retry-after")

    wrong = {"authorization": "Basic " + base64.b64encode(f"{DEMO_CLIENT_ID}:guess".encode()).decode()}
    other = load_function("TokenFunction", limited(aws_stack, TokenFailuresPerAddressPerMinute="3"))
    guesses = [
        other.request(
            "POST", "/oauth/par", headers={**FORM, **wrong}, body=urlencode(request_params())
        ).status
        for _ in range(3)
    ]
    assert guesses == [401, 401, 401]
    locked = other.request("POST", "/oauth/par", headers={**FORM, **BASIC}, body=urlencode(request_params()))
    assert locked.status == 429  # even the right secret waits at this address
    assert "failed" in response_json(locked)["error_description"]
