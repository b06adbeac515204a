"""Signing-key rotation without downtime (docs/operations.md), step by step through the handlers."""

from __future__ import annotations

import json

import jwt
import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import BASE_URL, response_json, with_parameters


def issue(token_fn) -> str:
    response = token_fn.request(
        "POST",
        "/oauth/token",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}",
    )
    assert response.status == 200
    return str(response_json(response)["access_token"])


def accepted(mcp_fn, token: str) -> bool:
    response = mcp_fn.request(
        "POST",
        "/mcp",
        headers={
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        },
        body=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    assert response.status in (200, 401)
    return response.status == 200


def kids(metadata_fn) -> list[str]:
    return [k["kid"] for k in response_json(metadata_fn.request("GET", "/.well-known/jwks.json"))["keys"]]


@pytest.mark.parametrize("first", ["Blue", "Green"])
def test_rotation_keeps_old_tokens_valid_until_the_old_key_is_retired(load_function, aws_stack, first):
    second = "Green" if first == "Blue" else "Blue"
    before = with_parameters(aws_stack, ActiveSigningKey=first)
    old_token = issue(load_function("TokenFunction", before))
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    assert kids(load_function("MetadataFunction", before))[0] == old_kid  # the active key comes first

    # step 1: switch the active key; both keys stay published and accepted
    during = with_parameters(aws_stack, ActiveSigningKey=second)
    new_token = issue(load_function("TokenFunction", during))
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid != old_kid
    assert kids(load_function("MetadataFunction", during)) == [new_kid, old_kid]
    mcp = load_function("McpFunction", during)
    assert accepted(mcp, old_token) and accepted(mcp, new_token)

    # step 2: once every old token has expired, retire the old key
    after = with_parameters(aws_stack, ActiveSigningKey=second, RetireInactiveSigningKey="true")
    assert kids(load_function("MetadataFunction", after)) == [new_kid]
    mcp = load_function("McpFunction", after)
    assert not accepted(mcp, old_token)
    assert accepted(mcp, new_token)
    assert jwt.decode(new_token, options={"verify_signature": False})["iss"] == BASE_URL
