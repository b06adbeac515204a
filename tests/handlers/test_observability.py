"""What the functions leave behind: an audit trail of security events, metrics as EMF lines, and
logs that never carry a token, a code, a secret or a password."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import urlencode

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD, DEMO_USER_ID, DEMO_USERNAME
from tests.conftest import response_json, set_cookies
from tests.forms import parse
from tests.handlers.oauth_helpers import FORM, REDIRECT, VERIFIER, exchange, obtain_code, token_request
from wallet_mcp import aws
from wallet_mcp.credentials import opaque
from wallet_mcp.primitives import pkce
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.storage.clients import ClientRecord, ClientStore


@pytest.fixture
def fns(load_function, aws_stack):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id="app",
            client_name="App",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(REDIRECT,),
            scope=("mcp:tools:call",),
            created_at=0,
        )
    )
    return load_function("AuthorizeFunction"), load_function("TokenFunction")


def events(aws_stack, subject):
    return [e["event"] for e in AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"]).of(subject)]


def failed_sign_in(authorize):
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "app",
            "redirect_uri": REDIRECT,
            "code_challenge": pkce.s256(VERIFIER),
            "code_challenge_method": "S256",
        }
    )
    page = authorize.request("GET", "/oauth/authorize", query=query)
    (form,), _ = parse(page.body.decode())
    body = urlencode(form.submission({"username": DEMO_USERNAME, "password": "not the password"}))
    authorize.request("POST", "/oauth/authorize", headers=FORM, body=body, cookies=set_cookies(page))


def test_security_events_reach_the_audit_trail(fns, aws_stack):
    authorize, token = fns
    failed_sign_in(authorize)
    issued = response_json(
        exchange(token, obtain_code(authorize, client_id="app", scope="mcp:tools:call"), "app")
    )
    rotated = response_json(
        token_request(
            token,
            {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"], "client_id": "app"},
        )
    )
    aws.dynamodb().update_item(  # the old refresh token presented again, long after its rotation: theft
        TableName=aws_stack.physical_ids["RefreshTokensTable"],
        Key={"token_hash": {"S": opaque.digest(issued["refresh_token"])}},
        UpdateExpression="SET rotated_at = :t",
        ExpressionAttributeValues={":t": {"N": str(int(time.time()) - 600)}},
    )
    token_request(
        token, {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"], "client_id": "app"}
    )
    token.request(
        "POST", "/oauth/revoke", headers=FORM, body=f"token={rotated['access_token']}&client_id=app"
    )

    trail = events(aws_stack, DEMO_USER_ID)
    for expected in (
        "login_failed",
        "login_succeeded",
        "consent_granted",
        "token_issued",
        "refresh_token_reuse_detected",
        "token_revoked",
    ):
        assert expected in trail, trail
    assert trail.count("token_issued") == 2  # the code exchange and the refresh
    entry = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"]).of(DEMO_USER_ID)[0]
    assert entry["client_id"] == "app"
    item = aws.dynamodb().scan(TableName=aws_stack.physical_ids["AuditTable"])["Items"][0]
    assert int(item["expires_at"]["N"]) > time.time() + 80 * 86400  # kept 90 days, then TTL


def test_client_credentials_tokens_are_audited_under_the_client(fns, aws_stack):
    _, token = fns
    token.request(
        "POST",
        "/oauth/token",
        headers=FORM,
        body=f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}",
    )
    assert events(aws_stack, DEMO_CLIENT_ID) == ["token_issued"]


def emf(captured: str) -> list[dict]:
    lines = []
    for line in captured.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" in record:
            lines.append(record)
    return lines


def test_metrics_are_emitted_as_embedded_metric_format(fns, capsys):
    authorize, token = fns
    capsys.readouterr()
    issued = response_json(
        exchange(token, obtain_code(authorize, client_id="app", scope="mcp:tools:call"), "app")
    )
    token_request(token, {"grant_type": "refresh_token", "refresh_token": "rt_unknown", "client_id": "app"})
    assert issued["access_token"]
    records = emf(capsys.readouterr().out)
    names = {
        (m["Name"], r.get("grant") or r.get("error"))
        for r in records
        for m in r["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    }
    assert ("TokensIssued", "authorization_code") in names
    assert ("OAuthErrors", "invalid_grant") in names
    assert all(r["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "WalletMcp" for r in records)


def test_logs_never_carry_tokens_codes_secrets_or_passwords(fns, load_function, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    authorize, token = fns
    code = obtain_code(authorize, client_id="app", scope="mcp:tools:call")
    issued = response_json(exchange(token, code, "app"))
    exchange(token, code, "app")  # a replay, logged as an error path
    cc = response_json(
        token.request(
            "POST",
            "/oauth/token",
            headers=FORM,
            body=f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}",
        )
    )
    register = load_function("RegisterFunction")
    registered = response_json(
        register.request(
            "POST",
            "/oauth/register",
            headers={"content-type": "application/json"},
            body=json.dumps({"redirect_uris": ["http://localhost:9/cb"]}),
        )
    )
    output = capsys.readouterr()
    logged = output.out + output.err + caplog.text
    assert logged  # the functions did log
    for secret in (
        code,
        issued["access_token"],
        issued["refresh_token"],
        cc["access_token"],
        registered["client_secret"],
        DEMO_CLIENT_SECRET,
        DEMO_PASSWORD,
        VERIFIER,
    ):
        assert secret not in logged
    # nor any fragment a log line could carry: the JWTs' signatures, the opaque tokens' bodies
    assert issued["access_token"].split(".")[2] not in logged
    assert issued["refresh_token"][3:20] not in logged
