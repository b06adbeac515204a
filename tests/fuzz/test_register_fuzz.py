"""Dynamic client registration (RFC 7591) under generated bodies: 201, or a 4xx with an RFC 7591 error
code, and a refused registration stores no client."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from tests.conftest import header
from tests.fuzz.gateway import describe, item_counts, json_or_none, send
from tests.fuzz.strategies import (
    FUZZ,
    LONE_SURROGATES,
    SOURCE_ADDRESSES,
    chance,
    dumps,
    json_values,
    mostly,
    nested,
    odd_text,
)

pytestmark = pytest.mark.fuzz

ERROR_CODES = {
    "invalid_request",
    "invalid_redirect_uri",
    "invalid_client_metadata",
    "invalid_software_statement",
    "unapproved_software_statement",
    "slow_down",
    "temporarily_unavailable",
}
LONE = "@@lone-surrogate@@"
"""Put in a generated string, replaced on the wire by a JSON escape of a lone surrogate."""

GOOD = {
    "client_name": "My MCP Client",
    "redirect_uris": ["http://localhost:8080/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "mcp:tools:list mcp:tools:call",
}
TEMPLATES: tuple[dict[str, Any], ...] = (
    GOOD,
    {"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none"},
    {
        "client_name": "Backend",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_post",
    },
    {
        "redirect_uris": ["com.example.app:/cb"],
        "application_type": "native",
        "client_uri": "https://app.example.com",
        "logo_uri": "https://app.example.com/logo.png",
    },
)
URIS = [
    "https://app.example.com/cb",
    "http://localhost:8080/callback",
    "http://127.0.0.1/cb",
    "http://[::1]:9/cb",
    "com.example.app:/cb",
    "https://app.example.com/cb#frag",
    "https://user:pw@app.example.com/cb",
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "data:text/html,hi",
    "http://app.example.com/cb",
    "http://127.evil.example.com/cb",
    "http://127.0.0.1.nip.io/cb",
    "http://localhost.evil.example.com/cb",
    "https://app.example.com:abc/cb",
    "https://[::1/cb",
    "https://exämple.com/cb",
    "https:///cb",
    "https:cb",
    "//app.example.com/cb",
    "https://app.example.com/c b",
    "https://app.example.com/\u202ebc",
    f"https://app.example.com/{LONE}",
    "https://app.example.com/" + "x" * 2000,
]
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "client_name": st.one_of(odd_text(), st.just(f"name {LONE}")),
    "redirect_uris": st.lists(st.sampled_from(URIS), max_size=12),
    "grant_types": st.lists(
        st.sampled_from(
            ["authorization_code", "refresh_token", "client_credentials", "implicit", "password", ""]
        ),
        max_size=4,
    ),
    "response_types": st.lists(st.sampled_from(["code", "token", "id_token", ""]), max_size=3),
    "token_endpoint_auth_method": st.sampled_from(
        ["none", "client_secret_basic", "client_secret_post", "private_key_jwt", "NONE"]
    ),
    "application_type": st.sampled_from(["web", "native", "desktop", ""]),
    "scope": st.one_of(
        st.sampled_from(["mcp:tools:list", "wallet:accounts:write mcp:tools:call", "openid", "a\tb", ""]),
        odd_text(),
    ),
    "client_uri": st.sampled_from(["https://app.example.com", f"https://app.example.com/{LONE}", "http://x"]),
    "logo_uri": st.sampled_from(["https://app.example.com/l.png", f"https://x/{LONE}", "javascript:x"]),
    "jwks_uri": st.just("https://app.example.com/jwks"),
    "software_statement": st.just("a.b.c"),
}


@st.composite
def metadata(draw: st.DrawFn) -> Any:
    """A registration request with a few fields changed, dropped or added; or any JSON at all."""
    if draw(chance(4)):
        return draw(json_values)
    document = dict(draw(st.sampled_from(TEMPLATES)))
    names = sorted(FIELDS)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["set", "set", "set", "any", "drop", "unknown"]))
        name = draw(st.sampled_from(names))
        if op == "set":
            document[name] = draw(FIELDS[name])
        elif op == "any":
            document[name] = draw(json_values)
        elif op == "drop":
            document.pop(name, None)
        else:
            document[draw(odd_text(12))] = draw(json_values)
    return document


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(mostly(st.just("json"), st.sampled_from(["bytes", "nested", "huge", "truncated"]), one_in=4))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "nested":
        return nested(draw(st.sampled_from([10, 500, 990, 1200, 8000]))).encode()
    if kind == "huge":
        return dumps({**GOOD, "padding": "x" * 17_000}).encode()
    text = dumps(draw(metadata())).replace(LONE, draw(st.sampled_from(LONE_SURROGATES)))
    if kind == "truncated":
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode()


JSON = "application/json"
ODD_CONTENT_TYPES = (
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "text/plain",
    "",
    "application/jsonx",
    None,
)
CONTENT_TYPES = mostly(st.just(JSON), st.sampled_from(ODD_CONTENT_TYPES))


def is_loopback_literal(host: str | None) -> bool:
    """`localhost`, or an IP literal of the loopback interface; not a name that starts like one."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


@pytest.fixture
def register_fn(load_function):
    return load_function("RegisterFunction")


@example(  # nesting deeper than Python's recursion limit: RecursionError out of json.loads
    body=nested(8000).encode(), content_type=JSON, source_ip="10.1.0.1"
)
@example(  # a lone surrogate in a redirect URI (valid JSON): passes validation, then cannot be encoded
    body=dumps({"redirect_uris": ["https://app.example.com/" + LONE]}).replace(LONE, "\\ud800").encode(),
    content_type=JSON,
    source_ip="10.1.0.2",
)
@example(  # the same in client_uri
    body=dumps({**GOOD, "client_uri": "https://app.example.com/" + LONE}).replace(LONE, "\\udfff").encode(),
    content_type=JSON,
    source_ip="10.1.0.3",
)
@example(  # a plain-http redirect URI whose host only starts like a loopback address
    body=dumps({"redirect_uris": ["http://127.evil.example.com/cb"]}).encode(),
    content_type=JSON,
    source_ip="10.1.0.4",
)
@settings(FUZZ, max_examples=250)
@given(body=bodies(), content_type=CONTENT_TYPES, source_ip=SOURCE_ADDRESSES)
def test_registration_is_201_or_an_rfc7591_error_and_refusals_store_no_client(
    register_fn, aws_stack, body, content_type, source_ip
):
    headers = [("content-type", content_type)] if content_type is not None else []
    before = item_counts(aws_stack, ["ClientsTable"])["ClientsTable"]
    response = send(register_fn, "POST", "/oauth/register", headers=headers, body=body, source_ip=source_ip)
    after = item_counts(aws_stack, ["ClientsTable"])["ClientsTable"]
    answer = json_or_none(response)
    event(f"status {response.status} {(answer or {}).get('error', '') if isinstance(answer, dict) else ''}")
    assert response.status in {201, 400, 413, 429}, describe(response)
    assert header(response, "cache-control") == "no-store", describe(response)
    assert isinstance(answer, dict), describe(response)
    if response.status == 201:
        assert after == before + 1, describe(response)
        assert answer["client_id"].startswith("mcp_")
        for uri in answer["redirect_uris"]:
            # plain http only to this machine (RFC 8252 §8.3, OAuth 2.1 §2.3.1): codes cross no network
            assert not uri.lower().startswith("http:") or is_loopback_literal(urlsplit(uri).hostname), uri
    else:
        assert after == before, describe(response)
        assert answer.get("error") in ERROR_CODES, describe(response)
