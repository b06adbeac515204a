"""Driving the authorization-code flow through the handlers, for the token-endpoint tests."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from devstack.events import HttpResponse
from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.conftest import Function, header, response_json, set_cookies
from tests.forms import parse
from wallet_mcp.primitives import pkce

FORM = {"content-type": "application/x-www-form-urlencoded"}
REDIRECT = "https://app.example.com/callback"
VERIFIER = "verifier-" + "x" * 50


def obtain_code(
    authorize: Function,
    *,
    client_id: str,
    scope: str = "mcp:tools:list mcp:tools:call",
    redirect_uri: str = REDIRECT,
    verifier: str = VERIFIER,
    resource: str | None = None,
    **extra: str,
) -> str:
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": "s",
        "code_challenge": pkce.s256(verifier),
        "code_challenge_method": "S256",
    }
    if resource:
        query["resource"] = resource
    query.update(extra)
    page = authorize.request("GET", "/oauth/authorize", query=urlencode(query))
    assert page.status == 200, page.body
    return parse_qs(urlsplit(header(sign_in_and_approve(authorize, page), "location")).query)["code"][0]


def sign_in_and_approve(authorize: Function, page: HttpResponse) -> HttpResponse:
    """The demo user signs in on the login `page` and approves on the consent page, if one is
    shown: the redirect back to the client (303)."""
    cookies = set_cookies(page)
    (form,), _ = parse(page.body.decode())
    consent = authorize.request(
        "POST",
        "/oauth/authorize",
        headers=FORM,
        body=urlencode(form.submission({"username": DEMO_USERNAME, "password": DEMO_PASSWORD})),
        cookies=cookies,
    )
    cookies |= set_cookies(consent)
    if consent.status == 200:
        (form,), _ = parse(consent.body.decode())
        consent = authorize.request(
            "POST",
            "/oauth/authorize",
            headers=FORM,
            body=urlencode(form.submission(button=("decision", "approve"))),
            cookies=cookies,
        )
    assert consent.status == 303, consent.body
    return consent


def token_request(
    token_fn: Function, data: dict[str, str], basic: tuple[str, str] | None = None, path: str = "/oauth/token"
):
    """A form POST to the token function (`/oauth/token` unless `path` says otherwise), with HTTP Basic
    client authentication when `basic` is given."""
    headers = dict(FORM)
    if basic:
        headers["authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    return token_fn.request("POST", path, headers=headers, body=urlencode(data))


def introspect(token_fn: Function, value: str, basic: tuple[str, str] | None):
    """RFC 7662 introspection of `value`, authenticated as `basic`."""
    return token_request(token_fn, {"token": value}, basic, path="/oauth/introspect")


def exchange(token_fn: Function, code: str, client_id: str, *, verifier: str = VERIFIER, **extra: str):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": client_id,
        **extra,
    }
    return token_request(token_fn, data)


def claims(response) -> dict:
    return jwt.decode(response_json(response)["access_token"], options={"verify_signature": False})


def body(response) -> dict:
    return json.loads(response.body)


def mcp_call(mcp_fn: Function, access_token: str, method: str = "tools/list", params: dict | None = None):
    """One MCP JSON-RPC request to the MCP function with a bearer token."""
    message: dict = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        message["params"] = params
    return mcp_fn.request(
        "POST",
        "/mcp",
        headers={
            "authorization": f"Bearer {access_token}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        },
        body=message,
    )
