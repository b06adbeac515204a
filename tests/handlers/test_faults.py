"""Failing dependencies: DynamoDB throttling or outage and KMS errors give 503 with Retry-After and
leave nothing half done (a code is not burnt when its token could not be signed); a passing
throttle is absorbed by botocore's retries."""

from __future__ import annotations

import json

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import header, response_json
from tests.handlers.confirm_helpers import allow_debits, approve_pending
from tests.handlers.oauth_helpers import FORM, REDIRECT, exchange, obtain_code, token_request
from tests.support.faults import aws_fault
from wallet_mcp import aws
from wallet_mcp.storage.clients import ClientRecord, ClientStore

CC = f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """botocore's retries still happen, without their sleeps."""
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, ctx: 0)


@pytest.fixture
def token_fn(load_function):
    return load_function("TokenFunction")


def unavailable(response) -> None:
    assert response.status == 503, response.body
    assert header(response, "retry-after")


def test_a_passing_throttle_is_retried_by_botocore(token_fn):
    with aws_fault("dynamodb", "BatchGetItem", times=1, retried=True) as served:
        response = token_fn.request("POST", "/oauth/token", headers=FORM, body=CC)
    assert served["count"] == 1
    assert response.status == 200


@pytest.mark.parametrize(
    ("service", "operation", "code", "status"),
    [
        ("dynamodb", "BatchGetItem", "ProvisionedThroughputExceededException", 400),
        ("dynamodb", "BatchGetItem", "InternalServerError", 500),
    ],
)
def test_persistent_failures_are_503_with_retry_after(token_fn, service, operation, code, status):
    token_fn.request("POST", "/oauth/token", headers=FORM, body=CC)  # warm: keys fetched
    with aws_fault(service, operation, code, status=status, retried=True) as served:
        response = token_fn.request("POST", "/oauth/token", headers=FORM, body=CC)
    unavailable(response)
    assert response_json(response)["error"] == "temporarily_unavailable"
    assert served["count"] == 3  # botocore's standard mode: three attempts, then the error
    assert token_fn.request("POST", "/oauth/token", headers=FORM, body=CC).status == 200


@pytest.mark.parametrize("code", ["KMSInternalException", "ThrottlingException", "KeyUnavailableException"])
def test_a_failing_kms_signature_is_503(token_fn, code):
    token_fn.request("POST", "/oauth/token", headers=FORM, body=CC)
    with aws_fault("kms", "Sign", code, status=500):
        unavailable(token_fn.request("POST", "/oauth/token", headers=FORM, body=CC))


def test_an_unreachable_dynamodb_is_503(token_fn):
    with aws_fault("dynamodb", "BatchGetItem", connection_error=True):
        unavailable(token_fn.request("POST", "/oauth/token", headers=FORM, body=CC))


@pytest.fixture
def public_client(aws_stack):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id="public-app",
            client_name="Public",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(REDIRECT,),
            scope=("mcp:tools:call",),
            created_at=0,
        )
    )
    return "public-app"


def test_a_code_is_not_burnt_when_its_token_cannot_be_signed(load_function, token_fn, public_client):
    code = obtain_code(load_function("AuthorizeFunction"), client_id=public_client, scope="mcp:tools:call")
    with aws_fault("kms", "Sign", "KMSInternalException", status=500):
        unavailable(exchange(token_fn, code, public_client))
    assert exchange(token_fn, code, public_client).status == 200  # the same code, once


def test_a_refresh_token_survives_a_failed_rotation(load_function, token_fn, public_client):
    code = obtain_code(load_function("AuthorizeFunction"), client_id=public_client, scope="mcp:tools:call")
    issued = response_json(exchange(token_fn, code, public_client))
    form = {
        "grant_type": "refresh_token",
        "refresh_token": issued["refresh_token"],
        "client_id": public_client,
    }
    with aws_fault("dynamodb", "TransactWriteItems", "InternalServerError", status=500):
        unavailable(token_request(token_fn, form))
    assert token_request(token_fn, form).status == 200


def test_the_authorization_page_says_unavailable_in_html(load_function, public_client):
    authorize = load_function("AuthorizeFunction")
    query = (
        f"response_type=code&client_id={public_client}&redirect_uri={REDIRECT}&code_challenge={'a' * 43}"
        "&code_challenge_method=S256"
    )
    with aws_fault("dynamodb", "GetItem", "InternalServerError", status=500):
        response = authorize.request("GET", "/oauth/authorize", query=query)
    unavailable(response)
    assert header(response, "content-type").startswith("text/html")
    assert "frame-ancestors 'none'" in header(response, "content-security-policy")


def test_registration_during_an_outage_writes_nothing(load_function, aws_stack):
    register = load_function("RegisterFunction")
    metadata = json.dumps({"redirect_uris": ["http://localhost:9/cb"], "token_endpoint_auth_method": "none"})
    with aws_fault("dynamodb", "PutItem", "InternalServerError", status=500):
        response = register.request(
            "POST", "/oauth/register", headers={"content-type": "application/json"}, body=metadata
        )
    unavailable(response)
    assert aws.dynamodb().scan(TableName=aws_stack.physical_ids["ClientsTable"])["Count"] == 1


def test_mcp_with_kms_down_at_cold_start_is_503(load_function, token_fn):
    access = response_json(
        token_fn.request("POST", "/oauth/token", headers=FORM, body=CC + "&scope=mcp:tools:list")
    )
    mcp = load_function("McpFunction")  # a fresh instance: its public keys are not cached yet
    with aws_fault("kms", "GetPublicKey", "KMSInternalException", status=500):
        response = mcp.request(
            "POST",
            "/mcp",
            headers={
                "authorization": f"Bearer {access['access_token']}",
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
            },
            body=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
    unavailable(response)


def test_a_tool_call_during_an_outage_is_a_clear_error_and_writes_nothing(
    load_function, token_fn, demo_wallet
):
    access = response_json(token_fn.request("POST", "/oauth/token", headers=FORM, body=CC))["access_token"]
    mcp = load_function("McpFunction")
    allow_debits(mcp.stack.physical_ids["ClientsTable"])  # the demo client may ask for payments
    headers = {
        "authorization": f"Bearer {access}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
    }

    def call(name, arguments):
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        return response_json(mcp.request("POST", "/mcp", headers=headers, body=json.dumps(body)))["result"]

    account = call("getUserAccounts", {})["structuredContent"]["accounts"][0]["id"]
    arguments = {"accountId": account, "amount": "-5", "category": "dining", "description": "x"}
    asked = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "createTransaction", "arguments": arguments},
    }
    assert (
        response_json(mcp.request("POST", "/mcp", headers=headers, body=json.dumps(asked)))["error"]["code"]
        == -32042
    )
    assert approve_pending(mcp.stack.physical_ids["WalletTable"]) == 1  # the person approved it
    with aws_fault("dynamodb", "TransactWriteItems", "InternalServerError", status=500):
        result = call("createTransaction", arguments)
    assert result["isError"] is True
    assert "temporarily unavailable" in result["content"][0]["text"]
    assert call("getTotalBalance", {})["content"][0]["text"].startswith("💰 Total Balance: $5,432.10")


def test_the_wallet_api_during_an_outage_is_503_and_writes_nothing(load_function, token_fn, demo_wallet):
    access = response_json(
        token_fn.request(
            "POST", "/oauth/token", headers=FORM, body=CC + "&resource=http://localhost:3000/api"
        )
    )["access_token"]
    api = load_function("WalletFunction")
    auth = {"authorization": f"Bearer {access}"}
    account = response_json(api.request("GET", "/api/accounts", headers=auth))["accounts"][0]["id"]
    body = {"account_id": account, "amount": "-5.00", "category": "dining", "description": "x"}
    with aws_fault("dynamodb", "TransactWriteItems", "InternalServerError", status=500):
        unavailable(
            api.request(
                "POST", "/api/transactions", headers={**auth, "content-type": "application/json"}, body=body
            )
        )
    assert response_json(api.request("GET", "/api/balance", headers=auth))["totals"][0]["amount"] == "5432.10"
