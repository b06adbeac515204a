"""Behind the optional CloudFront distribution (`EdgeProtection=true`): a request that skips it is
refused before any route runs, and a request through it is restored to what the viewer sent (the
public Host, the viewer's address for the per-address limits). docs/operations.md § Edge."""

from __future__ import annotations

import dataclasses

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from devstack.template import Stack
from tests.conftest import header, response_json
from tests.handlers.oauth_helpers import FORM

SECRET = "s3cr3t-origin-value-from-secrets-manager-000000"
ORIGIN_HOST = "abc123.execute-api.us-east-1.amazonaws.com"
EDGE_SERVER = "130.176.0.1"  # a CloudFront server: API Gateway's sourceIp behind the edge
CC = f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"


@pytest.fixture
def behind_edge(load_function, aws_stack, monkeypatch):
    """Functions configured as the template configures them behind the distribution (the secret a
    Secrets Manager dynamic reference would resolve to)."""
    functions = Stack.functions

    def with_secret(stack: Stack):
        return {
            name: dataclasses.replace(spec, environment={**spec.environment, "EDGE_ORIGIN_SECRET": SECRET})
            for name, spec in functions(stack).items()
        }

    monkeypatch.setattr(Stack, "functions", with_secret)

    def load(logical_id: str, **parameters: str):
        variant = Stack(aws_stack.template, parameters={**aws_stack.parameters, **parameters})
        variant.physical_ids = dict(aws_stack.physical_ids)
        return load_function(logical_id, variant)

    return load


def through_edge(viewer: str, **headers: str) -> dict[str, str]:
    return {"host": ORIGIN_HOST, "x-origin-verify": SECRET, "x-viewer-address": viewer, **headers}


@pytest.mark.parametrize(
    "sent",
    [{}, {"x-origin-verify": "guess"}, {"x-origin-verify": SECRET[:-1]}, {"x-viewer-address": "203.0.113.9"}],
    ids=["no secret", "wrong secret", "truncated secret", "only a viewer address"],
)
def test_a_request_that_skips_cloudfront_is_refused_before_any_route(behind_edge, sent):
    metadata = behind_edge("MetadataFunction")
    response = metadata.request(
        "GET", "/.well-known/oauth-authorization-server", headers={"host": ORIGIN_HOST, **sent}
    )
    assert response.status == 403
    assert response_json(response)["error"] == "access_denied"
    assert header(response, "cache-control") == "no-store"


def test_a_request_through_cloudfront_is_served_as_the_viewer_sent_it(behind_edge, aws_stack):
    metadata = behind_edge("MetadataFunction")
    response = metadata.request(
        "GET", "/.well-known/oauth-authorization-server", headers=through_edge("203.0.113.9")
    )
    assert response.status == 200
    assert response_json(response)["issuer"] == aws_stack.parameters["PublicBaseUrl"]
    # the MCP endpoint's DNS-rebinding check sees the public Host, not the origin's
    mcp = behind_edge("McpFunction")
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    answer = mcp.request("POST", "/mcp", headers=through_edge("203.0.113.9"), body=body)
    assert answer.status == 401  # the bearer challenge, not 421 "this host is not served here"
    direct = mcp.request("POST", "/mcp", headers={"host": ORIGIN_HOST}, body=body)
    assert direct.status == 403


def test_per_address_limits_count_the_viewer_not_the_cloudfront_server(behind_edge):
    token = behind_edge("TokenFunction", TokenFailuresPerAddressPerMinute="2")
    wrong = CC.replace(DEMO_CLIENT_SECRET, "guess")

    def post(viewer: str, body: str) -> int:
        return token.request(
            "POST", "/oauth/token", headers=through_edge(viewer, **FORM), body=body, source_ip=EDGE_SERVER
        ).status

    assert [post("198.51.100.7", wrong), post("198.51.100.7", wrong)] == [401, 401]
    assert post("198.51.100.7", CC) == 429  # that viewer is locked out …
    assert post("2001:db8::5", CC) == 200  # … another viewer behind the same edge server is not
