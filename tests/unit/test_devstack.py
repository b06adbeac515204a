"""The local stack reads the template the way CloudFormation and API Gateway would."""

import base64

import pytest

from devstack.events import HttpRequest, build_event, parse_result
from devstack.gateway import Router
from devstack.local import local_stack
from devstack.template import RouteSpec, Stack, TemplateError, load_template


def provisioned(stack: Stack) -> Stack:
    # what provisioning records after creating the keys
    stack.physical_ids.update(
        {"SigningKeyBlue": "key-blue", "SigningKeyGreen": "key-green", "ConfirmationKey": "key-confirm"}
    )
    return stack


@pytest.fixture(scope="module")
def stack():
    return provisioned(local_stack("http://localhost:3000"))


def test_every_function_gets_the_globals_and_its_own_environment(stack):
    functions = stack.functions()
    token = functions["TokenFunction"]
    assert token.environment["PUBLIC_BASE_URL"] == "http://localhost:3000"
    assert token.environment["CLIENTS_TABLE"] == "wallet-mcp-local-ClientsTable"
    assert token.environment["ACCESS_TOKEN_TTL_SECONDS"] == "3600"
    assert token.environment["SIGNING_KEY_ID"] == "key-blue"
    assert token.environment["VERIFICATION_KEY_IDS"] == "key-blue,key-green"
    assert token.handler == "app.lambda_handler"
    assert (token.code_uri / "app.py").is_file()


def test_without_a_public_base_url_the_issuer_is_the_api_endpoint():
    stack = provisioned(Stack(load_template(), parameters={}))
    env = stack.functions()["MetadataFunction"].environment
    assert env["PUBLIC_BASE_URL"] == "https://local.execute-api.us-east-1.amazonaws.com"


def test_custom_domain_condition_drives_the_issuer():
    stack = provisioned(Stack(load_template(), parameters={"DomainName": "wallet.example.com"}))
    assert stack.functions()["TokenFunction"].environment["PUBLIC_BASE_URL"] == "https://wallet.example.com"
    assert dict(stack.resources_of("AWS::ApiGatewayV2::DomainName"))


def test_routes_come_from_the_template(stack):
    keys = {(r.method, r.path): r.function for r in stack.routes()}
    assert keys[("POST", "/oauth/token")] == "TokenFunction"
    assert keys[("GET", "/.well-known/jwks.json")] == "MetadataFunction"
    assert keys[("POST", "/mcp")] == "McpFunction"


def test_signing_key_rotation_parameters():
    green = provisioned(Stack(load_template(), parameters={"ActiveSigningKey": "Green"}))
    env = green.functions()["TokenFunction"].environment
    assert env["SIGNING_KEY_ID"] == "key-green"
    assert env["VERIFICATION_KEY_IDS"] == "key-green,key-blue"
    retired = provisioned(
        Stack(load_template(), parameters={"ActiveSigningKey": "Green", "RetireInactiveSigningKey": "true"})
    )
    assert retired.functions()["McpFunction"].environment["VERIFICATION_KEY_IDS"] == "key-green"


def test_unknown_parameters_are_refused():
    with pytest.raises(TemplateError):
        Stack(load_template(), parameters={"Nope": "x"})


def test_router_prefers_exact_paths_then_parameters_then_greedy():
    router = Router(
        [
            RouteSpec("GET", "/.well-known/oauth-protected-resource", "root"),
            RouteSpec("GET", "/.well-known/oauth-protected-resource/{resource}", "param"),
            RouteSpec("ANY", "/api/{proxy+}", "greedy"),
            RouteSpec("GET", "/api/accounts", "exact"),
        ]
    )
    assert router.match("GET", "/.well-known/oauth-protected-resource")[0].function == "root"
    route, params = router.match("GET", "/.well-known/oauth-protected-resource/mcp")
    assert (route.function, params) == ("param", {"resource": "mcp"})
    assert router.match("GET", "/api/accounts")[0].function == "exact"
    assert router.match("DELETE", "/api/accounts/1/x")[1] == {"proxy": "accounts/1/x"}
    assert router.match("POST", "/.well-known/oauth-protected-resource") is None
    assert router.match("GET", "/nowhere") is None


def test_event_has_the_payload_2_0_shape():
    request = HttpRequest(
        method="POST",
        path="/oauth/token",
        query_string="a=1&a=2&b=",
        headers=[
            ("Host", "localhost:3000"),
            ("Cookie", "s=1; t=2"),
            ("X-Multi", "a"),
            ("X-Multi", "b"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body=b"grant_type=client_credentials",
    )
    event = build_event(request, route_key="POST /oauth/token", path_parameters=None, forwarded_proto="http")
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /oauth/token"
    assert event["cookies"] == ["s=1", "t=2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "a,b"
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["domainName"] == "localhost"
    assert event["isBase64Encoded"] is True  # form bodies are not text to API Gateway
    assert base64.b64decode(event["body"]) == b"grant_type=client_credentials"


def test_json_bodies_stay_text():
    request = HttpRequest("POST", "/mcp", "", [("content-type", "application/json")], b'{"a":1}')
    event = build_event(request, route_key="POST /mcp", path_parameters=None, forwarded_proto="https")
    assert event["body"] == '{"a":1}' and event["isBase64Encoded"] is False


def test_result_cookies_become_set_cookie_headers():
    response = parse_result(
        {"statusCode": 302, "headers": {"Location": "/x"}, "cookies": ["a=1; HttpOnly"], "body": ""}
    )
    assert response.status == 302
    assert ("set-cookie", "a=1; HttpOnly") in response.headers
    assert ("location", "/x") in response.headers


def test_stack_parameters_as_a_json_object_carry_values_with_commas():
    from devstack.local import parameter_overrides

    raw = '{"UpstreamIdentityProviders": [{"id": "a", "name": "A, B"}], "AccessTokenTtlSeconds": 30}'
    overrides = parameter_overrides(raw)
    assert overrides == {
        "UpstreamIdentityProviders": '[{"id":"a","name":"A, B"}]',
        "AccessTokenTtlSeconds": "30",
    }
    assert parameter_overrides("AccessTokenTtlSeconds=30") == {"AccessTokenTtlSeconds": "30"}
    stack = provisioned(local_stack("http://localhost:3000", overrides))
    environment = stack.functions()["AuthorizeFunction"].environment
    assert environment["UPSTREAM_IDENTITY_PROVIDERS"] == '[{"id":"a","name":"A, B"}]'
    assert environment["ALLOW_LOOPBACK_IDENTITY_PROVIDERS"] == "true"
