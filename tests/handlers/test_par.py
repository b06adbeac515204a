"""Pushed authorization requests (RFC 9126) through the token and authorize functions' handlers:
the client pushes its request with its client authentication, then sends only `client_id` and
the `request_uri` to `/oauth/authorize`; each `request_uri` works once and for a minute."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import header, response_json, with_parameters
from tests.handlers import oauth_helpers
from tests.handlers.test_private_key_jwt import CLIENT_ASSERTION_TYPE, JWKS, RSA_KEY, assertion, keyed_client
from wallet_mcp import aws
from wallet_mcp.primitives import pkce
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.pushed_requests import PushedRequests

FORM = {"content-type": "application/x-www-form-urlencoded"}
REDIRECT = "http://localhost:8080/callback"
VERIFIER = "par-verifier-" + "v" * 50
BASIC = {
    "authorization": "Basic " + base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
}


def request_params(**extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": "mcp:tools:list mcp:tools:call",
        "state": "par-state",
        "code_challenge": pkce.s256(VERIFIER),
        "code_challenge_method": "S256",
        **extra,
    }


@pytest.fixture
def fns(load_function):
    return load_function("AuthorizeFunction"), load_function("TokenFunction")


def push(token_fn, params: dict[str, str], headers: dict[str, str] | None = BASIC):
    return token_fn.request("POST", "/oauth/par", headers={**FORM, **(headers or {})}, body=urlencode(params))


def authorize_with(authorize, query: dict[str, str]):
    return authorize.request("GET", "/oauth/authorize", query=urlencode(query))


def sign_in_and_approve(authorize, page) -> str:
    redirect = oauth_helpers.sign_in_and_approve(authorize, page)
    query = parse_qs(urlsplit(header(redirect, "location")).query)
    assert query["state"] == ["par-state"]
    return query["code"][0]


def test_a_pushed_request_is_authorized_once_and_its_code_exchanged(fns):
    authorize, token_fn = fns
    pushed = push(token_fn, request_params())
    assert pushed.status == 201, pushed.body
    assert header(pushed, "cache-control") == "no-store"
    body = response_json(pushed)
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert body["expires_in"] == 60
    # §4: only client_id and request_uri; a parameter sent beside them does not count
    query = {"client_id": DEMO_CLIENT_ID, "request_uri": body["request_uri"], "state": "not-this-one"}
    page = authorize_with(authorize, query)
    assert page.status == 200, page.body
    code = sign_in_and_approve(authorize, page)
    exchanged = token_fn.request(
        "POST",
        "/oauth/token",
        headers={**FORM, **BASIC},
        body=urlencode(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
            }
        ),
    )
    assert exchanged.status == 200, exchanged.body
    # single use: the same request_uri again is refused on this server's own page
    again = authorize_with(authorize, {"client_id": DEMO_CLIENT_ID, "request_uri": body["request_uri"]})
    assert again.status == 400
    assert "expired or was already used" in again.body.decode()


def test_a_request_uri_is_refused_for_another_client_and_stays_usable_for_its_own(fns):
    authorize, token_fn = fns
    request_uri = response_json(push(token_fn, request_params()))["request_uri"]
    assert authorize_with(authorize, {"client_id": "someone-else", "request_uri": request_uri}).status == 400
    assert authorize_with(authorize, {"request_uri": request_uri}).status == 400
    assert authorize_with(authorize, {"client_id": DEMO_CLIENT_ID, "request_uri": request_uri}).status == 200


@pytest.mark.parametrize(
    "request_uri",
    ["urn:ietf:params:oauth:request_uri:made-up", "https://attacker.example/r", "", "x" * 5000],
)
def test_an_unknown_request_uri_is_refused(fns, request_uri):
    authorize, _ = fns
    response = authorize_with(authorize, {"client_id": DEMO_CLIENT_ID, "request_uri": request_uri})
    assert response.status == 400


def test_an_expired_request_uri_is_refused(fns, aws_stack):
    authorize, _ = fns
    store = PushedRequests(aws.dynamodb(), aws_stack.physical_ids["AuthCodesTable"])
    request_uri = store.push(DEMO_CLIENT_ID, request_params(), now=int(time.time()) - 120, ttl=60)
    response = authorize_with(authorize, {"client_id": DEMO_CLIENT_ID, "request_uri": request_uri})
    assert response.status == 400


@pytest.mark.parametrize(
    ("params", "headers", "status", "error"),
    [
        (request_params(), None, 401, "invalid_client"),  # a confidential client must authenticate (§2)
        (
            request_params(),
            {"authorization": "Basic " + base64.b64encode(f"{DEMO_CLIENT_ID}:x".encode()).decode()},
            401,
            "invalid_client",
        ),
        (request_params(request_uri="urn:ietf:params:oauth:request_uri:x"), BASIC, 400, "invalid_request"),
        (request_params(redirect_uri="https://attacker.example/cb"), BASIC, 400, "invalid_request"),
        (request_params(code_challenge_method="plain"), BASIC, 400, "invalid_request"),
        (request_params(response_type="token"), BASIC, 400, "invalid_request"),
    ],
    ids=[
        "no authentication",
        "wrong secret",
        "request_uri inside",
        "unregistered redirect",
        "no S256",
        "implicit",
    ],
)
def test_a_bad_push_is_refused(fns, params, headers, status, error):
    _, token_fn = fns
    response = push(token_fn, params, headers)
    assert response.status == status, response.body
    assert response_json(response)["error"] == error


def test_a_key_client_pushes_with_an_assertion_whose_audience_may_be_the_par_endpoint(fns, aws_stack):
    _, token_fn = fns
    client = keyed_client("par-key-client", jwks=json.dumps(JWKS))
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            **{**_fields(client), "grant_types": ("authorization_code",), "redirect_uris": (REDIRECT,)}
        )
    )
    signed = assertion(
        RSA_KEY, iss="par-key-client", sub="par-key-client", aud="http://localhost:3000/oauth/par"
    )
    params = {
        **request_params(client_id="par-key-client"),
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": signed,
    }
    response = push(token_fn, params, headers=None)
    assert response.status == 201, response.body


def _fields(record: ClientRecord) -> dict:
    return {name: getattr(record, name) for name in record.__slots__}  # type: ignore[attr-defined]


def test_a_client_that_requires_par_cannot_send_a_plain_request(fns, aws_stack):
    authorize, token_fn = fns
    store = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    current = store.get_any(DEMO_CLIENT_ID)
    assert authorize_with(authorize, request_params()).status == 200  # before: the login page
    store.put(ClientRecord(**{**_fields(current), "require_pushed_authorization_requests": True}))
    plain = authorize_with(authorize, request_params())
    assert plain.status == 400  # nobody signed in: this server's page, never a redirect
    request_uri = response_json(push(token_fn, request_params()))["request_uri"]
    assert authorize_with(authorize, {"client_id": DEMO_CLIENT_ID, "request_uri": request_uri}).status == 200


def test_a_deployment_that_requires_par_says_so_and_refuses_plain_requests(load_function, aws_stack):
    assert authorize_with(load_function("AuthorizeFunction"), request_params()).status == 200
    variant = with_parameters(aws_stack, RequirePushedAuthorizationRequests="true")
    authorize = load_function("AuthorizeFunction", variant)
    metadata = load_function("MetadataFunction", variant)
    document = response_json(metadata.request("GET", "/.well-known/oauth-authorization-server"))
    assert document["require_pushed_authorization_requests"] is True
    assert document["pushed_authorization_request_endpoint"] == "http://localhost:3000/oauth/par"
    assert authorize_with(authorize, request_params()).status == 400


def test_registration_accepts_require_pushed_authorization_requests(load_function):
    register = load_function("RegisterFunction")
    response = register.request(
        "POST",
        "/oauth/register",
        body={
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "require_pushed_authorization_requests": True,
        },
    )
    assert response.status == 201, response.body
    assert response_json(response)["require_pushed_authorization_requests"] is True
    refused = register.request(
        "POST",
        "/oauth/register",
        body={"redirect_uris": [REDIRECT], "require_pushed_authorization_requests": "yes"},
    )
    assert refused.status == 400
