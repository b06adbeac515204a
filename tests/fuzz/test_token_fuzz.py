"""The token, revocation and introspection endpoints under generated requests: every answer is one of
the statuses RFC 6749 §5.2 and its extensions allow, an error carries an RFC error code and is never
cached, and a refused request writes nothing."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote_plus, urlencode, urlsplit

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from devstack.seed import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_REDIRECT_URI,
    DEMO_USERNAME,
)
from tests.conftest import BASE_URL, Function, header, set_cookies
from tests.forms import parse
from tests.fuzz.gateway import describe, item_counts, json_or_none, send
from tests.fuzz.strategies import (
    FORM,
    FORM_CONTENT_TYPES,
    FUZZ,
    SOURCE_ADDRESSES,
    authorization_headers,
    form_body,
    mostly,
    odd_text,
)
from wallet_mcp import aws
from wallet_mcp.credentials import opaque
from wallet_mcp.primitives import pkce
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.storage.clients import ClientRecord, ClientStore

pytestmark = pytest.mark.fuzz

TOKEN_STATUSES = {200, 400, 401, 413, 429}
ERROR_CODES = {
    # RFC 6749 §5.2
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    # RFC 8707 §2, RFC 8628 §3.5, RFC 6749 §4.1.2.1
    "invalid_target",
    "slow_down",
    "temporarily_unavailable",
}
# Everything but the rate-limit counters, which count refused requests by design.
WRITTEN_TABLES = (
    "ClientsTable",
    "AuthCodesTable",
    "RefreshTokensTable",
    "RevokedTokensTable",
    "SessionsTable",
    "ConsentsTable",
    "AuthRequestsTable",
    "UsersTable",
    "PersonalTokensTable",
)

client_ids = st.one_of(
    st.sampled_from([DEMO_CLIENT_ID, DEMO_CLIENT_ID, "nobody", DEMO_CLIENT_ID.upper(), DEMO_CLIENT_ID + " "]),
    odd_text(),
)
secrets = st.one_of(st.sampled_from([DEMO_CLIENT_SECRET, DEMO_CLIENT_SECRET, "wrong"]), odd_text())
scopes = st.one_of(
    st.lists(st.sampled_from(SUPPORTED_SCOPES), max_size=4).map(" ".join),
    st.sampled_from(["openid", "admin:all", "mcp:tools:list\tmcp:tools:call", "mcp:tools:list  "]),
)
resources = st.sampled_from(
    [
        f"{BASE_URL}/api",
        f"{BASE_URL}/mcp",
        "HTTP://LOCALHOST:3000/api/",
        f"{BASE_URL}/api#frag",
        "https://evil.example.com/mcp",
        "/api",
        "http://localhost:abc/mcp",
        "http://[::1/mcp",
        "http://localhost:99999/api",
        "urn:x",
    ]
)
TOKEN_PARAMETERS: dict[str, st.SearchStrategy[str]] = {
    "grant_type": st.sampled_from(
        [
            "client_credentials",
            "authorization_code",
            "refresh_token",
            "password",
            "implicit",
            "CLIENT_CREDENTIALS",
        ]
    ),
    "client_id": client_ids,
    "client_secret": secrets,
    "scope": scopes,
    "resource": resources,
    "code": st.sampled_from(["not-a-code", "A" * 43, "x" * 513]),
    "redirect_uri": st.sampled_from([DEMO_REDIRECT_URI, "https://evil.example.com/cb"]),
    "code_verifier": st.sampled_from(["v" * 43, "short", "v" * 129]),
    "refresh_token": st.sampled_from(["rt_" + "x" * 43, "rt_", "x" * 600]),
}

POST_CREDENTIALS = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
CREDENTIALS = urlencode(POST_CREDENTIALS)
TOKEN_REQUESTS = (
    {"grant_type": "client_credentials", **POST_CREDENTIALS},
    {
        "grant_type": "client_credentials",
        **POST_CREDENTIALS,
        "scope": "mcp:tools:list",
        "resource": f"{BASE_URL}/api",
    },
    {"grant_type": "client_credentials"},
    {
        "grant_type": "authorization_code",
        "code": "A" * 43,
        "redirect_uri": DEMO_REDIRECT_URI,
        "code_verifier": "v" * 43,
        **POST_CREDENTIALS,
    },
    {"grant_type": "refresh_token", "refresh_token": "rt_" + "x" * 43, **POST_CREDENTIALS},
)
AUTHORIZATION = mostly(st.none(), authorization_headers(client_ids, secrets), one_in=4)


def forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"x") -> str:
    """A JWT this server did not sign."""
    return ".".join(
        base64.urlsafe_b64encode(part).rstrip(b"=").decode()
        for part in (json.dumps(header).encode(), json.dumps(claims).encode(), signature)
    )


def forgeries(issued: str) -> list[str]:
    """Tokens shaped like the real one: signature cut, algorithm `none`, HS256, odd headers."""
    real_header = json.loads(base64.urlsafe_b64decode(issued.split(".")[0] + "=="))
    claims = json.loads(base64.urlsafe_b64decode(issued.split(".")[1] + "=="))
    return [
        issued[:-2],
        issued + ".x",
        issued.rsplit(".", 1)[0] + ".",
        forged({**real_header, "alg": "none"}, claims, b""),
        forged({**real_header, "alg": "HS256"}, claims),
        forged({**real_header, "kid": ["x"]}, claims),
        forged({**real_header, "typ": {"a": 1}}, claims),
        forged(real_header, {**claims, "aud": [claims["aud"]], "exp": "never"}),
        forged([1], claims),  # type: ignore[arg-type]
        "a.b.c",
        "x" * 9000,
        "rt_" + "x" * 43,
    ]


@pytest.fixture
def token_fn(load_function):
    return load_function("TokenFunction")


def check_oauth_answer(response, allowed: set[int]) -> None:
    assert response.status in allowed, describe(response)
    assert header(response, "cache-control") == "no-store", describe(response)
    if response.status == 200:
        return
    body = json_or_none(response)
    assert isinstance(body, dict), describe(response)
    assert body.get("error") in ERROR_CODES, describe(response)
    assert isinstance(body.get("error_description", ""), str)
    if response.status == 401:
        assert header(response, "www-authenticate"), describe(response)


@example(  # a resource with a port that is not a number: ValueError from urlsplit().port
    body=f"grant_type=client_credentials&{CREDENTIALS}&resource=http://localhost:abc/mcp".encode(),
    content_type=FORM,
    authorization=None,
    source_ip="10.0.0.1",
)
@example(  # a resource with an unclosed IPv6 literal: ValueError from urlsplit()
    body=f"grant_type=client_credentials&{CREDENTIALS}&resource=http://[::1/mcp".encode(),
    content_type=FORM,
    authorization=None,
    source_ip="10.0.0.2",
)
@settings(FUZZ, max_examples=250)
@given(
    body=form_body(TOKEN_PARAMETERS, TOKEN_REQUESTS),
    content_type=FORM_CONTENT_TYPES,
    authorization=AUTHORIZATION,
    source_ip=SOURCE_ADDRESSES,
)
def test_token_requests_get_an_rfc_answer_and_refusals_write_nothing(
    token_fn, aws_stack, body, content_type, authorization, source_ip
):
    headers = []
    if content_type is not None:
        headers.append(("content-type", content_type))
    if authorization is not None:
        headers.append(("authorization", authorization))
    before = item_counts(aws_stack, WRITTEN_TABLES)
    response = send(token_fn, "POST", "/oauth/token", headers=headers, body=body, source_ip=source_ip)
    check_oauth_answer(response, TOKEN_STATUSES)
    event(f"status {response.status} {(json_or_none(response) or {}).get('error_description', '')[:30]}")
    if response.status == 200:
        assert json_or_none(response)["token_type"] == "Bearer"
    else:
        assert item_counts(aws_stack, WRITTEN_TABLES) == before, describe(response)


@pytest.fixture
def issued(token_fn):
    """A real access token of the demo client, for the revocation and introspection pools."""
    response = send(
        token_fn,
        "POST",
        "/oauth/token",
        headers=[("content-type", FORM)],
        body=f"grant_type=client_credentials&{CREDENTIALS}".encode(),
    )
    assert response.status == 200, describe(response)
    return json_or_none(response)["access_token"]


@settings(FUZZ, max_examples=150)
@given(
    path=st.sampled_from(["/oauth/revoke", "/oauth/introspect"]),
    data=st.data(),
    content_type=FORM_CONTENT_TYPES,
    authorization=AUTHORIZATION,
    source_ip=SOURCE_ADDRESSES,
)
def test_revocation_and_introspection_never_fail_and_refusals_write_nothing(
    token_fn, aws_stack, issued, path, data, content_type, authorization, source_ip
):
    tokens = st.one_of(st.sampled_from([issued, *forgeries(issued)]), odd_text())
    parameters = {
        "token": tokens,
        "token_type_hint": st.sampled_from(["access_token", "refresh_token", "id_token", "x"]),
        "client_id": client_ids,
        "client_secret": secrets,
    }
    templates = ({"token": issued, **POST_CREDENTIALS}, {"token": "rt_" + "x" * 43, **POST_CREDENTIALS})
    body = data.draw(form_body(parameters, templates), label="body")
    headers = []
    if content_type is not None:
        headers.append(("content-type", content_type))
    if authorization is not None:
        headers.append(("authorization", authorization))
    before = item_counts(aws_stack, WRITTEN_TABLES)
    response = send(token_fn, "POST", path, headers=headers, body=body, source_ip=source_ip)
    check_oauth_answer(response, {200, 400, 401, 413, 429})
    event(f"{path} status {response.status} {(json_or_none(response) or {}).get('error', '')}")
    if response.status != 200:
        assert item_counts(aws_stack, WRITTEN_TABLES) == before, describe(response)
    elif path == "/oauth/introspect":
        assert isinstance(json_or_none(response).get("active"), bool), describe(response)


# --- the grants that spend something: a real code, a real refresh token --------------------------

REDIRECT = "https://app.example.com/callback"
VERIFIER = "v" * 64
PUBLIC_CLIENT = ClientRecord(
    client_id="public-app",
    client_name="Public",
    token_endpoint_auth_method="none",
    grant_types=("authorization_code", "refresh_token"),
    redirect_uris=(REDIRECT,),
    scope=("mcp:tools:list", "mcp:tools:call", "wallet:accounts:read"),
    created_at=0,
)
CODE, REFRESH = "@@code@@", "@@refresh-token@@"
"""Placeholders for a code and a refresh token issued just before each request."""
GRANT_REQUESTS = (
    {
        "grant_type": "authorization_code",
        "code": CODE,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": PUBLIC_CLIENT.client_id,
    },
    {"grant_type": "refresh_token", "refresh_token": REFRESH, "client_id": PUBLIC_CLIENT.client_id},
)
AUTHORIZE_QUERY = {
    "response_type": "code",
    "client_id": PUBLIC_CLIENT.client_id,
    "redirect_uri": REDIRECT,
    "scope": "mcp:tools:list mcp:tools:call",
    "state": "s",
    "code_challenge": pkce.s256(VERIFIER),
    "code_challenge_method": "S256",
}
GRANT_PARAMETERS = {
    **TOKEN_PARAMETERS,
    "client_id": st.sampled_from([PUBLIC_CLIENT.client_id, DEMO_CLIENT_ID, "nobody"]),
    "code": st.sampled_from([CODE, CODE + "x", CODE[:-1], "A" * 43]),
    "refresh_token": st.sampled_from([REFRESH, REFRESH + "x", "rt_" + "x" * 43]),
    "redirect_uri": st.sampled_from([REDIRECT, REDIRECT + "/", REDIRECT.upper(), DEMO_REDIRECT_URI]),
    "code_verifier": st.sampled_from([VERIFIER, VERIFIER + "x", VERIFIER[:42], "v" * 43]),
    "scope": st.sampled_from(["mcp:tools:list", "wallet:accounts:read", "wallet:accounts:write", "openid"]),
}


@dataclass(frozen=True)
class Browser:
    """A signed-in browser: every authorization request shows the consent page (a public client's
    remembered consent is asked again, RFC 8252 §8.6), which it approves."""

    authorize: Function
    token: Function
    session: str

    def code(self) -> str:
        """A code just issued, from the consent page approved again."""
        query = urlencode(AUTHORIZE_QUERY)
        page = send(
            self.authorize,
            "GET",
            "/oauth/authorize",
            query=query,
            headers=[("cookie", f"wallet_session={self.session}")],
        )
        assert page.status == 200, describe(page)
        cookies = {"wallet_session": self.session} | set_cookies(page)
        (form,), _ = parse(page.body.decode())
        response = send(
            self.authorize,
            "POST",
            "/oauth/authorize",
            headers=[("content-type", FORM), ("cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))],
            body=urlencode({**form.fields, "decision": "approve"}).encode(),
        )
        assert response.status == 303, describe(response)
        return parse_qs(urlsplit(header(response, "location")).query)["code"][0]

    def refresh_token(self) -> str:
        """A refresh token just issued (with its code spent)."""
        exchange = {**GRANT_REQUESTS[0], "code": self.code()}
        response = send(
            self.token,
            "POST",
            "/oauth/token",
            headers=[("content-type", FORM)],
            body=urlencode(exchange).encode(),
        )
        assert response.status == 200, describe(response)
        return json_or_none(response)["refresh_token"]


@pytest.fixture
def browser(load_function, aws_stack, token_fn) -> Browser:
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(PUBLIC_CLIENT)
    authorize = load_function("AuthorizeFunction")
    page = send(authorize, "GET", "/oauth/authorize", query=urlencode({**AUTHORIZE_QUERY, "prompt": "login"}))
    cookies = set_cookies(page)
    for submission in ({"username": DEMO_USERNAME, "password": DEMO_PASSWORD}, {"decision": "approve"}):
        (form,), _ = parse(page.body.decode())
        jar = "; ".join(f"{k}={v}" for k, v in cookies.items())
        page = send(
            authorize,
            "POST",
            "/oauth/authorize",
            headers=[("content-type", FORM), ("cookie", jar)],
            body=urlencode({**form.fields, **submission}).encode(),
        )
        cookies |= set_cookies(page)
    assert page.status == 303, describe(page)
    return Browser(authorize, token_fn, cookies["wallet_session"])


def spent_state(stack, body: bytes) -> dict[str, object]:
    """What a grant request can spend or issue: the tables' sizes and the presented code's and refresh
    token's items."""
    form = dict(parse_qsl(body.decode(errors="replace")))
    state: dict[str, object] = dict(item_counts(stack, WRITTEN_TABLES))
    for name, table, key in (
        ("code", "AuthCodesTable", "code_hash"),
        ("refresh_token", "RefreshTokensTable", "token_hash"),
    ):
        if name in form:
            found = aws.dynamodb().get_item(
                TableName=stack.physical_ids[table], Key={key: {"S": opaque.digest(form[name])}}
            )
            state[name] = found.get("Item")
    return state


@settings(FUZZ, max_examples=100)
@given(body=form_body(GRANT_PARAMETERS, GRANT_REQUESTS), source_ip=SOURCE_ADDRESSES)
def test_code_and_refresh_grants_answer_rfc_errors_and_spend_nothing_when_refused(
    token_fn, aws_stack, browser, body, source_ip
):
    if quote_plus(CODE).encode() in body:
        body = body.replace(quote_plus(CODE).encode(), browser.code().encode())
    if quote_plus(REFRESH).encode() in body:
        body = body.replace(quote_plus(REFRESH).encode(), browser.refresh_token().encode())
    before = spent_state(aws_stack, body)
    response = send(
        token_fn, "POST", "/oauth/token", headers=[("content-type", FORM)], body=body, source_ip=source_ip
    )
    check_oauth_answer(response, TOKEN_STATUSES)
    event(f"status {response.status} {(json_or_none(response) or {}).get('error_description', '')[:30]}")
    if response.status != 200:
        assert spent_state(aws_stack, body) == before, describe(response)
