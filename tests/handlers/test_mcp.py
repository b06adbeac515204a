"""The MCP function: bearer authentication, scopes, and the SDK transport, through its Lambda handler."""

import asyncio
import json
import threading

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import BASE_URL, header, response_json, with_parameters
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


def answered_within(seconds: float, call):
    """`call()`'s result, or a failure (not a hang) when it has not returned within `seconds`."""
    outcome = []

    def run():
        asyncio.set_event_loop(asyncio.new_event_loop())  # Mangum runs the app on this thread's loop
        try:
            outcome.append(("answer", call()))
        except Exception as exc:
            outcome.append(("error", exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"no answer within {seconds} s: the request is being held open"
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


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


def test_a_refused_token_is_told_which_scopes_to_ask_for_and_no_write_scope(functions):
    """A client that authorizes again after a 401 (the Python SDK 1.x after a restart) takes its
    scope from the challenge, else every scope of the metadata (MCP 2025-11-25 §Scope Selection)."""
    token_fn, mcp = functions
    api_token = get_token(token_fn, resource=f"{BASE_URL}/api")  # signed by us, for another audience
    for token in ("not-a-jwt", api_token):
        challenge = header(rpc(mcp, "tools/list", token=token), "www-authenticate")
        scope = challenge.split('scope="', 1)[1].split('"', 1)[0].split()
        assert {"mcp:tools:list", "mcp:tools:call", "wallet:accounts:read"} <= set(scope), challenge
        assert not [s for s in scope if s.endswith(":write")], challenge


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
    # what the call needs and what the token holds (MCP 2025-11-25 §Scope Challenge Handling), so
    # a client re-authorizing with exactly this scope loses nothing; the description names the need
    assert 'scope="mcp:tools:list mcp:tools:call"' in challenge
    assert 'error_description="this request needs scope: mcp:tools:list"' in challenge
    assert f'resource_metadata="{PRM}"' in challenge


def test_calling_a_tool_needs_mcp_tools_call(functions):
    token_fn, mcp = functions
    token = get_token(token_fn, scope="mcp:tools:list")
    response = rpc(mcp, "tools/call", {"name": "ping", "arguments": {}}, token=token)
    assert response.status == 403
    challenge = header(response, "www-authenticate")
    assert 'scope="mcp:tools:list mcp:tools:call"' in challenge
    assert "needs scope: mcp:tools:call" in challenge


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
    assert calls == [("dynamodb", "PutItem")]  # the call's audit event, nothing to authenticate it


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("with_token", [True, False])
def test_get_and_delete_are_405_at_once_with_no_aws_call(functions, method, with_token):
    """A stateless JSON-response server offers no standalone stream and no session to end: it says
    405 with `Allow: POST` at once (the TypeScript 1.x client opens a GET after every initialize),
    before any token check or AWS call, instead of holding the stream until the timeout."""
    token_fn, mcp = functions
    headers = {"accept": "text/event-stream", "mcp-protocol-version": "2025-06-18"}
    if with_token:
        headers["authorization"] = f"Bearer {get_token(token_fn)}"
    calls = []
    aws.on_api_call(lambda service, operation: calls.append((service, operation)))
    response = answered_within(10, lambda: mcp.request(method, "/mcp", headers=headers))
    assert response.status == 405
    assert header(response, "allow") == "POST"
    assert response_json(response)["error"]["code"] == -32000
    assert calls == []


@pytest.mark.parametrize("version", ["1999-01-01", "2025-13-45", "latest"])
def test_an_unsupported_protocol_version_is_400_naming_the_supported_ones(functions, version):
    token_fn, mcp = functions
    response = rpc(mcp, "tools/list", token=get_token(token_fn), headers={"mcp-protocol-version": version})
    assert response.status == 400
    error = response_json(response)["error"]
    assert error["code"] == -32022  # UnsupportedProtocolVersionError (2026-07-28)
    assert error["data"] == {
        "supported": ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"],
        "requested": version,
    }
    assert "2025-11-25" in error["message"] and version in error["message"]


@pytest.mark.parametrize("id_", [7, "request-7"])
def test_the_unsupported_version_error_answers_the_requests_own_id(functions, id_):
    """JSON-RPC 2.0 §5: the error's id is the request's when it could be read (server-stateless)."""
    token_fn, mcp = functions
    response = rpc(
        mcp, "tools/list", token=get_token(token_fn), id_=id_, headers={"mcp-protocol-version": "1.0"}
    )
    assert response.status == 400
    assert response_json(response)["id"] == id_


@pytest.mark.parametrize("version", ["2025-06-18", "2025-11-25"])
def test_every_supported_handshake_version_is_served(functions, version):
    token_fn, mcp = functions
    response = rpc(mcp, "tools/list", token=get_token(token_fn), headers={"mcp-protocol-version": version})
    assert response.status == 200, response.body


@pytest.mark.parametrize("host", ["localhost:3000", "127.0.0.1:3000", "[::1]:3000"])
def test_a_local_stack_answers_on_every_loopback_name(functions, host):
    token_fn, mcp = functions
    response = rpc(mcp, "tools/list", token=get_token(token_fn), headers={"host": host})
    assert response.status == 200, response.body
    challenge = header(rpc(mcp, "tools/list", headers={"host": host}), "www-authenticate")
    assert f'resource_metadata="http://{host}/.well-known/oauth-protected-resource/mcp"' in challenge


@pytest.mark.parametrize(
    "host",
    ["localhost:3001", "127.0.0.1:8080", "[::1]", "evil.example.com", "[::1", "localhost:3000\x00", ""],
)
def test_any_other_host_is_421_never_a_5xx(functions, host):
    token_fn, mcp = functions
    response = rpc(mcp, "tools/list", token=get_token(token_fn), headers={"host": host})
    assert response.status == 421


def test_a_deployed_stack_serves_only_its_own_host(load_function, aws_stack):
    deployed = with_parameters(aws_stack, PublicBaseUrl="https://wallet.example.com")
    token_fn = load_function("TokenFunction", deployed)
    mcp = load_function("McpFunction", deployed)
    token = get_token(token_fn)
    for host in ("127.0.0.1:3000", "localhost:3000", "[::1]:3000"):
        assert rpc(mcp, "tools/list", token=token, headers={"host": host}).status == 421
    assert rpc(mcp, "tools/list", token=token, headers={"host": "wallet.example.com"}).status == 200
