"""Browsers: CORS for browser-based MCP clients (preflight without a token), Origin validation on
/mcp, and the headers every response carries."""

from __future__ import annotations

import json

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import header, response_json

INSPECTOR = "http://localhost:6274"  # an allowed browser origin of the local stack


def preflight(fn, path, origin, method="POST", headers="authorization, content-type, mcp-protocol-version"):
    return fn.request(
        "OPTIONS",
        path,
        headers={
            "origin": origin,
            "access-control-request-method": method,
            "access-control-request-headers": headers,
        },
    )


def test_mcp_preflight_needs_no_token_and_allows_the_configured_origin(load_function):
    mcp = load_function("McpFunction")
    response = preflight(mcp, "/mcp", INSPECTOR)
    assert response.status == 200
    assert header(response, "access-control-allow-origin") == INSPECTOR
    assert "POST" in header(response, "access-control-allow-methods")
    assert "mcp-protocol-version" in header(response, "access-control-allow-headers").lower()


def test_mcp_refuses_other_origins_before_anything_else(load_function):
    mcp = load_function("McpFunction")
    assert preflight(mcp, "/mcp", "https://evil.example.com").status == 400
    response = mcp.request(
        "POST",
        "/mcp",
        headers={"origin": "https://evil.example.com", "content-type": "application/json"},
        body=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    assert response.status == 403
    assert header(response, "www-authenticate") is None  # not even an invitation to authenticate


def test_mcp_answers_an_allowed_origin_and_exposes_the_challenge(load_function):
    mcp = load_function("McpFunction")
    response = mcp.request(
        "POST",
        "/mcp",
        headers={"origin": INSPECTOR, "content-type": "application/json"},
        body=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    assert response.status == 401
    assert header(response, "access-control-allow-origin") == INSPECTOR
    assert "www-authenticate" in header(response, "access-control-expose-headers").lower()


@pytest.mark.parametrize(
    ("function", "path", "method"),
    [
        ("TokenFunction", "/oauth/token", "POST"),
        ("RegisterFunction", "/oauth/register", "POST"),
        ("MetadataFunction", "/.well-known/oauth-authorization-server", "GET"),
    ],
)
def test_oauth_and_discovery_endpoints_allow_any_origin(load_function, function, path, method):
    fn = load_function(function)
    response = preflight(fn, path, "https://any-browser-client.example", method)
    assert response.status == 200
    assert header(response, "access-control-allow-origin") == "*"


def test_a_cross_origin_token_request_gets_its_cors_headers(load_function):
    token = load_function("TokenFunction")
    response = token.request(
        "POST",
        "/oauth/token",
        headers={"origin": "https://client.example", "content-type": "application/x-www-form-urlencoded"},
        body=f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}",
    )
    assert response.status == 200
    assert header(response, "access-control-allow-origin") == "*"
    assert response_json(response)["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("function", "path"),
    [
        ("MetadataFunction", "/.well-known/jwks.json"),
        ("TokenFunction", "/oauth/token"),
        ("McpFunction", "/mcp"),
    ],
)
def test_every_response_is_nosniff(load_function, function, path):
    fn = load_function(function)
    response = fn.request("GET" if "well-known" in path else "POST", path)
    assert header(response, "x-content-type-options") == "nosniff"
    assert header(response, "strict-transport-security") is None  # plain http locally: no HSTS


def test_hsts_over_https(load_function, aws_stack):
    from devstack.template import Stack

    deployed = Stack(
        aws_stack.template, parameters={**aws_stack.parameters, "PublicBaseUrl": "https://wallet.example.com"}
    )
    deployed.physical_ids = dict(aws_stack.physical_ids)
    metadata = load_function("MetadataFunction", deployed)
    response = metadata.request(
        "GET", "/.well-known/oauth-authorization-server", headers={"host": "wallet.example.com"}
    )
    assert response_json(response)["issuer"] == "https://wallet.example.com"
    assert header(response, "strict-transport-security").startswith("max-age=63072000")
