"""The token function's client-credentials grant, through its real Lambda handler."""

import base64
import json
import time

import jwt
import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USER_ID
from tests.conftest import BASE_URL, EVENTS, header, response_json
from wallet_mcp import aws
from wallet_mcp.credentials import opaque
from wallet_mcp.storage.clients import ClientRecord, ClientStore

FORM = {"content-type": "application/x-www-form-urlencoded"}
CC = f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"


@pytest.fixture
def token_fn(load_function):
    return load_function("TokenFunction")


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {**FORM, "authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def claims_of(response):
    return jwt.decode(response_json(response)["access_token"], options={"verify_signature": False})


def test_client_credentials_with_client_secret_post(token_fn):
    response = token_fn.request(
        "POST", "/oauth/token", headers=FORM, body=CC + "&scope=mcp:tools:list mcp:tools:call"
    )
    assert response.status == 200, response.body
    body = response_json(response)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "mcp:tools:list mcp:tools:call"
    assert "refresh_token" not in body  # OAuth 2.1 §4.2: none for client credentials
    assert header(response, "cache-control") == "no-store"
    claims = claims_of(response)
    assert claims["iss"] == BASE_URL
    assert claims["aud"] == f"{BASE_URL}/mcp"
    assert claims["sub"] == DEMO_CLIENT_ID  # RFC 9068 §2.2: no resource owner
    assert claims["client_id"] == DEMO_CLIENT_ID
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 10
    assert len(claims["jti"]) >= 32
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"


def test_client_credentials_with_client_secret_basic(token_fn):
    response = token_fn.request(
        "POST",
        "/oauth/token",
        headers=basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        body="grant_type=client_credentials",
    )
    assert response.status == 200
    assert claims_of(response)["client_id"] == DEMO_CLIENT_ID


def test_a_captured_api_gateway_event_with_a_base64_form_body(token_fn):
    response = token_fn.invoke_event(json.loads((EVENTS / "http_api_post_token_form.json").read_text()))
    assert response.status == 200
    assert response_json(response)["scope"] == "mcp:tools:list"


def test_resource_indicator_selects_the_audience(token_fn):
    response = token_fn.request("POST", "/oauth/token", headers=FORM, body=CC + f"&resource={BASE_URL}/api")
    assert claims_of(response)["aud"] == f"{BASE_URL}/api"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (CC.replace(DEMO_CLIENT_SECRET, "wrong"), 401, "invalid_client"),
        ("grant_type=client_credentials&client_id=nobody&client_secret=x", 401, "invalid_client"),
        ("grant_type=client_credentials", 401, "invalid_client"),
        (CC.replace("client_credentials", "password"), 400, "unsupported_grant_type"),
        (CC.replace("grant_type=client_credentials&", ""), 400, "invalid_request"),
        (CC + "&resource=https://evil.example.com/mcp", 400, "invalid_target"),
        (CC + "&scope=mcp:tools:list&scope=mcp:tools:call", 400, "invalid_request"),
        (CC + "&grant_type=client_credentials", 400, "invalid_request"),
    ],
)
def test_errors_carry_the_rfc_code_and_status(token_fn, body, status, error):
    response = token_fn.request("POST", "/oauth/token", headers=FORM, body=body)
    assert response.status == status, response.body
    assert response_json(response)["error"] == error
    assert header(response, "cache-control") == "no-store"
    assert header(response, "pragma") == "no-cache"
    if status == 401:
        assert header(response, "www-authenticate").startswith("Basic realm=")


def test_json_bodies_are_refused(token_fn):
    response = token_fn.request("POST", "/oauth/token", body={"grant_type": "client_credentials"})
    assert response.status == 400
    assert response_json(response)["error"] == "invalid_request"


def test_huge_bodies_are_refused_without_a_5xx(token_fn):
    response = token_fn.request("POST", "/oauth/token", headers=FORM, body=CC + "&x=" + "a" * 100_000)
    assert response.status == 413


def test_a_client_without_the_grant_is_unauthorized_client(token_fn, aws_stack):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id="code-only",
            client_name="code only",
            token_endpoint_auth_method="client_secret_basic",
            client_secret_hash=opaque.digest("s"),
            grant_types=("authorization_code",),
            redirect_uris=("https://app.example.com/cb",),
            scope=("mcp:tools:call",),
            created_at=0,
            owner_user_id=DEMO_USER_ID,
        )
    )
    response = token_fn.request(
        "POST", "/oauth/token", headers=basic("code-only", "s"), body="grant_type=client_credentials"
    )
    assert response.status == 400
    assert response_json(response)["error"] == "unauthorized_client"


def test_warm_issuance_costs_one_kms_call_two_reads_and_one_count(token_fn):
    token_fn.request("POST", "/oauth/token", headers=FORM, body=CC)  # warm: public key fetched
    calls: list[tuple[str, str]] = []
    aws.on_api_call(lambda service, operation: calls.append((service, operation)))
    response = token_fn.request("POST", "/oauth/token", headers=FORM, body=CC)
    assert response.status == 200
    # one read of the client and its rate-limit counters; a client acting for its owner: one
    # consistent read of the revocation entries for owner and client (is the grant alive?); one
    # signature; then one transaction that counts the request and writes the audit record
    assert calls == [
        ("dynamodb", "BatchGetItem"),
        ("dynamodb", "BatchGetItem"),
        ("kms", "Sign"),
        ("dynamodb", "TransactWriteItems"),
    ]


def test_unknown_scopes_are_ignored_and_the_response_says_what_was_granted(token_fn):
    response = token_fn.request(
        "POST", "/oauth/token", headers=FORM, body=CC + "&scope=openid%20mcp:tools:list"
    )
    assert response.status == 200, response.body
    assert response_json(response)["scope"] == "mcp:tools:list"


def test_the_jwt_bearer_grant_is_unsupported_while_no_enterprise_idp_is_trusted(token_fn):
    """The demo client may use the grant, but this deployment trusts nobody's assertions."""
    body = (
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c"
        f"&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"
    )
    response = token_fn.request("POST", "/oauth/token", headers=FORM, body=body)
    assert response.status == 400, response.body
    assert response_json(response)["error"] == "unsupported_grant_type"
    missing = token_fn.request(
        "POST", "/oauth/token", headers=FORM, body=body.replace("&assertion=a.b.c", "")
    )
    assert response_json(missing)["error"] == "invalid_request"
