"""Dynamic client registration (RFC 7591) through the register function's handler."""

from __future__ import annotations

import json

import pytest

from devstack.template import Stack
from tests.conftest import Function, header, response_json
from wallet_mcp import aws
from wallet_mcp.credentials import opaque
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES

ALL_SCOPES = " ".join(SUPPORTED_SCOPES)
GOOD = {
    "client_name": "My MCP Client",
    "redirect_uris": ["http://localhost:8080/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "mcp:tools:list mcp:tools:call",
}


@pytest.fixture
def register_fn(load_function):
    return load_function("RegisterFunction")


def post(fn, metadata, content_type="application/json"):
    body = metadata if isinstance(metadata, (bytes, str)) else json.dumps(metadata)
    return fn.request("POST", "/oauth/register", headers={"content-type": content_type}, body=body)


def test_the_seed_guides_registration_request(register_fn, aws_stack):
    response = post(register_fn, GOOD)
    assert response.status == 201, response.body
    client = response_json(response)
    assert client["client_id"].startswith("mcp_")
    assert client["client_secret"].startswith("secret_")  # RFC 7591 default: client_secret_basic
    assert client["client_secret_expires_at"] == 0
    assert isinstance(client["client_id_issued_at"], int)
    assert client["client_name"] == "My MCP Client"
    assert client["redirect_uris"] == GOOD["redirect_uris"]
    assert client["grant_types"] == GOOD["grant_types"]
    assert client["response_types"] == ["code"]
    assert client["scope"] == "mcp:tools:list mcp:tools:call"
    assert client["application_type"] == "native"  # loopback only: inferred
    assert header(response, "cache-control") == "no-store"
    item = aws.dynamodb().get_item(
        TableName=aws_stack.physical_ids["ClientsTable"], Key={"client_id": {"S": client["client_id"]}}
    )["Item"]
    assert item["client_secret_hash"]["S"] == opaque.digest(client["client_secret"])
    assert client["client_secret"] not in json.dumps(item)
    assert "expires_at" in item  # unused registrations expire


def test_public_client_gets_no_secret(register_fn):
    client = response_json(post(register_fn, {**GOOD, "token_endpoint_auth_method": "none"}))
    assert "client_secret" not in client
    assert client["token_endpoint_auth_method"] == "none"


def test_omitted_scope_means_every_supported_scope(register_fn):
    metadata = {k: v for k, v in GOOD.items() if k != "scope"}
    assert "wallet:accounts:write" in response_json(post(register_fn, metadata))["scope"]


def test_unknown_metadata_is_ignored(register_fn):
    response = post(register_fn, {**GOOD, "software_version": "1.0", "x-custom": {"a": 1}})
    assert response.status == 201
    assert "x-custom" not in response_json(response)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["data:text/html,hi"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://app.example.com/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://app.example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://user:pw@app.example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["com.example.app:/cb"], "application_type": "web"}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_client_metadata"),
        ({"redirect_uris": "http://localhost/cb"}, "invalid_client_metadata"),
        ({"redirect_uris": [f"http://localhost/{i}" for i in range(11)]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata"),
        ({"grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"grant_types": ["password"]}, "invalid_client_metadata"),
        ({"grant_types": ["refresh_token"]}, "invalid_client_metadata"),
        (
            {
                "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "none",
                "redirect_uris": [],
            },
            "invalid_client_metadata",
        ),
        ({"response_types": ["token"]}, "invalid_client_metadata"),
        ({"client_name": "x" * 101}, "invalid_client_metadata"),
        ({"client_name": 42}, "invalid_client_metadata"),
        ({"application_type": "desktop"}, "invalid_client_metadata"),
        ({"client_uri": "javascript:alert(1)"}, "invalid_client_metadata"),
    ],
)
def test_invalid_metadata_is_refused_with_the_rfc7591_code(register_fn, aws_stack, change, error):
    before = aws.dynamodb().scan(TableName=aws_stack.physical_ids["ClientsTable"])["Count"]
    response = post(register_fn, {**GOOD, **change})
    assert response.status == 400, response.body
    assert response_json(response)["error"] == error
    assert aws.dynamodb().scan(TableName=aws_stack.physical_ids["ClientsTable"])["Count"] == before


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[]", "application/json", 400),
        ('"x"', "application/json", 400),
        (json.dumps(GOOD), "text/plain", 400),
        (json.dumps({**GOOD, "padding": "x" * 20000}), "application/json", 413),
        (b"\xff\xfe", "application/json", 400),
    ],
)
def test_malformed_bodies_are_4xx(register_fn, body, content_type, status):
    assert post(register_fn, body, content_type).status == status


def test_client_names_are_cleaned(register_fn):
    client = response_json(post(register_fn, {**GOOD, "client_name": "  Evil\u0000\u0007 \n App  "}))
    assert client["client_name"] == "Evil App"


def test_native_clients_may_use_private_use_schemes(register_fn):
    response = post(
        register_fn, {**GOOD, "application_type": "native", "redirect_uris": ["com.example.wallet:/oauth/cb"]}
    )
    assert response.status == 201


def test_client_credentials_registration(register_fn):
    response = post(
        register_fn,
        {
            "client_name": "Backend",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
        },
    )
    assert response.status == 201
    assert response_json(response)["response_types"] == []


_OFF_GRAMMAR_REDIRECT_URIS: list[str] = [
    "https://exämple.com/cb",  # non-ASCII host: was 201, then /oauth/authorize answered 500
    "https://example.com/café",
    "https://example.com/c\tb",
    "https://example.com/cb\n",
    "https://example.com/c\x7fb",
    "https://example.com/c b",
    'https://example.com/c"b',
    "https://example.com/c<b>",
    "https://example.com/c\\b",
    "https://example.com/c^b",
    "https://example.com/c`b",
    "https://example.com/c{b}",
    "https://example.com/c|b",
    "https://example.com/c%zzb",
    "https://acc.example;acc-injected/cb",  # was stored, then injected into the login page's CSP
    "https://acc.example,x/cb",
    "https://a!b.example/cb",
    "https://a$b.example/cb",
    "https://a'b.example/cb",
    "https://a(b).example/cb",
    "https://a*b.example/cb",
    "https://a+b.example/cb",
    "https://a=b.example/cb",
    "https://exa%6dple.com/cb",
    "https://example.com:/cb",
    "https://example.com:0/cb",
    "https://example.com:80a/cb",
    "https://example.com:99999/cb",
    "https://-app.example.com/cb",
    "https://app-.example.com/cb",
    "https://app..example.com/cb",
    "https://app_1.example.com/cb",
    f"https://{'a' * 64}.example.com/cb",
    f"https://{'.'.join(['a' * 60] * 5)}/cb",
    "https://1.2.3.256/cb",
    "https://127.1/cb",
    "https://[v1.x]/cb",
    "https://[fe80::1%25eth0]/cb",
    "https://[::1/cb",
    "http://[::1]x/cb",
]


@pytest.mark.parametrize("uri", _OFF_GRAMMAR_REDIRECT_URIS)
def test_redirect_uris_outside_the_strict_grammar_are_refused_and_nothing_is_stored(
    register_fn: Function, aws_stack: Stack, uri: str
) -> None:
    table = aws_stack.physical_ids["ClientsTable"]
    before = aws.dynamodb().scan(TableName=table)["Count"]
    response = post(register_fn, {**GOOD, "redirect_uris": [uri]})
    assert response.status == 400, response.body
    assert response_json(response)["error"] == "invalid_redirect_uri"
    assert aws.dynamodb().scan(TableName=table)["Count"] == before


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/cb",
        "https://APP.Example.com:8443/cb?x=1&y=%20",
        "https://93.184.216.34/cb",
        "https://[2001:db8::1]:8443/cb",
        "http://127.0.0.1:53124/callback",
        "http://[::1]/callback",
        "http://localhost/cb;v=1",
        "com.example.wallet:/oauth/cb",
        "com.example.wallet://callback/path",
    ],
)
def test_redirect_uris_inside_the_grammar_are_still_registered(register_fn: Function, uri: str) -> None:
    response = post(register_fn, {**GOOD, "application_type": "native", "redirect_uris": [uri]})
    assert response.status == 201, response.body
    assert response_json(response)["redirect_uris"] == [uri]


# Registration requests as MCP hosts send them (shapes from their public sources and issue trackers;
# not captured from the wire here). Each must register, as a public client, with what it asked.
HOST_REGISTRATIONS = {
    "cursor": {
        "client_name": "Cursor",
        "redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    },
    "vscode": {
        "client_name": "Visual Studio Code",
        "client_uri": "https://code.visualstudio.com",
        "redirect_uris": [
            "https://insiders.vscode.dev/redirect",
            "https://vscode.dev/redirect",
            "http://localhost/",
            "http://127.0.0.1/",
            "http://localhost:33418/",
            "http://127.0.0.1:33418/",
        ],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    },
    "claude-code": {
        "client_name": "Claude Code (wallet)",
        "redirect_uris": ["http://localhost:61523/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    },
    "claude.ai": {
        "client_name": "Claude",
        "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    },
    "chatgpt": {
        "client_name": "ChatGPT",
        "redirect_uris": ["https://chatgpt.com/connector_platform_oauth_redirect"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    },
    "inspector": {
        "client_name": "MCP Inspector",
        "client_uri": "https://github.com/modelcontextprotocol/inspector",
        "redirect_uris": [
            "http://localhost:6274/oauth/callback/debug",
            "http://localhost:6274/oauth/callback",
        ],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    },
}


@pytest.mark.parametrize("host", sorted(HOST_REGISTRATIONS))
def test_hosts_register_as_they_send_it(register_fn, host):
    metadata = HOST_REGISTRATIONS[host]
    response = post(register_fn, metadata)
    assert response.status == 201, response.body
    client = response_json(response)
    assert client["redirect_uris"] == metadata["redirect_uris"]
    assert client["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in client


def test_cursor_registers_as_a_native_client(register_fn):
    client = response_json(post(register_fn, HOST_REGISTRATIONS["cursor"]))
    assert client["application_type"] == "native"


@pytest.mark.parametrize(
    ("asked", "registered"),
    [("openid email mcp:tools:list", "mcp:tools:list"), ("openid profile offline_access", ALL_SCOPES)],
)
def test_scopes_this_server_does_not_know_are_ignored_at_registration(register_fn, asked, registered):
    """RFC 7591 §2: the server may register less than asked; none known means the defaults."""
    response = post(register_fn, {**GOOD, "scope": asked})
    assert response.status == 201, response.body
    assert response_json(response)["scope"] == registered
