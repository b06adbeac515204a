"""The MCP function: bearer authentication, scopes, and the SDK transport, through its Lambda handler."""

import json

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import BASE_URL, header, response_json
from wallet_mcp import aws

PRM = f"{BASE_URL}/.well-known/oauth-protected-resource/mcp"
MCP_HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2025-06-18",
}


@pytest.fixture
def functions(load_function):
    token = load_function("TokenFunction")
    mcp = load_function("McpFunction")
    return token, mcp


def get_token(token_fn, scope="mcp:tools:list mcp:tools:call", resource=None):
    body = f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"
    body += f"&scope={scope}"
    if resource:
        body += f"&resource={resource}"
    response = token_fn.request(
        "POST", "/oauth/token", headers={"content-type": "application/x-www-form-urlencoded"}, body=body
    )
    assert response.status == 200, response.body
    return response_json(response)["access_token"]


def rpc(mcp_fn, method, params=None, token=None, id_=1, headers=None):
    message = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    hdrs = {**MCP_HEADERS, **(headers or {})}
    if token:
        hdrs["authorization"] = f"Bearer {token}"
    return mcp_fn.request("POST", "/mcp", headers=hdrs, body=json.dumps(message))


def test_without_a_token_the_answer_is_401_with_the_resource_metadata(functions):
    _, mcp = functions
    response = rpc(mcp, "tools/list")
    assert response.status == 401
    challenge = header(response, "www-authenticate")
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{PRM}"' in challenge
    assert "error=" not in challenge  # RFC 6750 §3.1: no error code without credentials


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "Zm9v"])
def test_a_bad_token_is_invalid_token(functions, token):
    _, mcp = functions
    response = rpc(mcp, "tools/list", token=token)
    assert response.status == 401
    assert 'error="invalid_token"' in header(response, "www-authenticate")
    assert f'resource_metadata="{PRM}"' in header(response, "www-authenticate")


def test_a_token_for_another_audience_is_refused(functions):
    token_fn, mcp = functions
    api_token = get_token(token_fn, resource=f"{BASE_URL}/api")
    response = rpc(mcp, "tools/list", token=api_token)
    assert response.status == 401
    assert "not issued for this resource" in header(response, "www-authenticate")


def test_tools_list_and_ping(functions):
    token_fn, mcp = functions
    token = get_token(token_fn)
    listed = rpc(mcp, "tools/list", token=token)
    assert listed.status == 200, listed.body
    names = [t["name"] for t in response_json(listed)["result"]["tools"]]
    assert "ping" in names
    called = rpc(mcp, "tools/call", {"name": "ping", "arguments": {}}, token=token, id_=2)
    assert called.status == 200
    result = response_json(called)["result"]
    assert result["isError"] is False
    assert "pong" in result["content"][0]["text"]
    assert result["structuredContent"]["client_id"] == DEMO_CLIENT_ID


def test_tools_list_without_its_scope_is_403_insufficient_scope(functions):
    token_fn, mcp = functions
    token = get_token(token_fn, scope="mcp:tools:call")
    response = rpc(mcp, "tools/list", token=token)
    assert response.status == 403
    challenge = header(response, "www-authenticate")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="mcp:tools:list"' in challenge
    assert f'resource_metadata="{PRM}"' in challenge


def test_calling_a_tool_needs_mcp_tools_call(functions):
    token_fn, mcp = functions
    token = get_token(token_fn, scope="mcp:tools:list")
    response = rpc(mcp, "tools/call", {"name": "ping", "arguments": {}}, token=token)
    assert response.status == 403
    assert 'scope="mcp:tools:call"' in header(response, "www-authenticate")


def test_bad_tool_arguments_are_a_tool_error_not_a_5xx(functions):
    token_fn, mcp = functions
    token = get_token(token_fn)
    response = rpc(mcp, "tools/call", {"name": "ping", "arguments": {"unexpected": 1}}, token=token)
    assert response.status == 200
    assert response_json(response)["result"]["isError"] is True


def test_unknown_tool_is_a_json_rpc_error(functions):
    token_fn, mcp = functions
    token = get_token(token_fn)
    response = rpc(mcp, "tools/call", {"name": "nope", "arguments": {}}, token=token)
    assert response.status == 200
    assert response_json(response)["error"]["code"] == -32602


@pytest.mark.parametrize("body", ["{not json", "[]", '"x"', ""])
def test_malformed_json_rpc_is_a_4xx(functions, body):
    token_fn, mcp = functions
    token = get_token(token_fn)
    response = mcp.request(
        "POST", "/mcp", headers={**MCP_HEADERS, "authorization": f"Bearer {token}"}, body=body
    )
    assert 400 <= response.status < 500, (response.status, response.body)


def test_oversized_bodies_are_413(functions):
    token_fn, mcp = functions
    token = get_token(token_fn)
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": "a" * 2_000_000}})
    response = mcp.request(
        "POST", "/mcp", headers={**MCP_HEADERS, "authorization": f"Bearer {token}"}, body=big
    )
    assert response.status == 413


def test_a_foreign_host_is_refused_dns_rebinding_protection(functions):
    token_fn, mcp = functions
    token = get_token(token_fn)
    response = rpc(mcp, "tools/list", token=token, headers={"host": "evil.example.com"})
    assert response.status == 421


def test_warm_authentication_makes_no_aws_call(functions):
    token_fn, mcp = functions
    token = get_token(token_fn)
    rpc(mcp, "tools/list", token=token)  # cold: the public key is fetched once
    calls = []
    aws.on_api_call(lambda service, operation: calls.append((service, operation)))
    response = rpc(mcp, "tools/call", {"name": "ping", "arguments": {}}, token=token)
    assert response.status == 200
    assert calls == []
