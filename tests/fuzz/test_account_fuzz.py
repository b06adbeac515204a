"""/account and /admin under generated forms, cookies and headers, from a signed-in admin's browser:
never a 5xx, and a refused submission changes nothing (clients, consents, refresh tokens)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from devstack.seed import DEMO_CLIENT_ID, DEMO_PASSWORD, DEMO_USERNAME
from tests.conftest import set_cookies
from tests.forms import parse
from tests.fuzz.gateway import describe, item_counts, send
from tests.fuzz.strategies import (
    FORM,
    FORM_CONTENT_TYPES,
    FUZZ,
    SURROGATE_ESCAPES,
    form_body,
    header_text,
    odd_text,
)

pytestmark = pytest.mark.fuzz

WRITTEN = ("ClientsTable", "ConsentsTable", "RefreshTokensTable")
PATHS = [
    "/account",
    "/account/revoke",
    "/account/sign-out",
    "/admin/clients",
    "/admin/client",
    "/admin/users/revoke",
]


@pytest.fixture
def admin(load_function):
    """The account function, and a signed-in admin's cookies and CSRF token."""
    account = load_function("AccountFunction")
    page = send(account, "GET", "/account")
    cookies = set_cookies(page)
    (form,), _ = parse(page.body.decode())
    data = form.submission({"username": DEMO_USERNAME, "password": DEMO_PASSWORD})
    response = send(
        account,
        "POST",
        "/account",
        headers=[("content-type", FORM), ("cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))],
        body=urlencode(data).encode(),
    )
    assert response.status == 303, describe(response)
    session = {k: v for k, v in (cookies | set_cookies(response)).items() if v}
    home = send(
        account, "GET", "/admin", headers=[("cookie", "; ".join(f"{k}={v}" for k, v in session.items()))]
    )
    csrf = next(f.fields["csrf_token"] for f in parse(home.body.decode())[0] if "csrf_token" in f.fields)
    return account, session, csrf


def values(csrf: str) -> dict[str, st.SearchStrategy[str]]:
    return {
        "csrf_token": st.sampled_from([csrf, csrf[:-1], "", "x" * 300]),
        "client_id": st.sampled_from([DEMO_CLIENT_ID, "", "mcp_nope", "é" * 1500, *SURROGATE_ESCAPES]),
        "action": st.sampled_from(["update", "rotate_secret", "disable", "enable", "delete", "", "DROP"]),
        "username": st.sampled_from([DEMO_USERNAME, "", "ghost", "x" * 5000]),
        "password": odd_text(),
        "next": st.sampled_from(["/admin", "//evil.example", "https://evil.example", "/account/../oauth"]),
        "client_name": odd_text(),
        "redirect_uris": st.sampled_from(
            ["https://a.example/cb", "javascript:x", "http://127.evil.example/cb"]
        ),
        "grant_types": st.sampled_from(["authorization_code", "client_credentials", "password", ""]),
        "scope": st.sampled_from(["wallet:accounts:read", "openid", ""]),
        "owner": st.sampled_from([DEMO_USERNAME, "", "ghost"]),
        "token_endpoint_auth_method": st.sampled_from(["client_secret_basic", "none", "private_key_jwt"]),
    }


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_forms_are_never_a_5xx_and_refusals_change_nothing(admin, aws_stack, data):
    account, session, csrf = admin
    path = data.draw(st.sampled_from(PATHS))
    content_type = data.draw(FORM_CONTENT_TYPES)
    # CSRF-less forgeries by design: the valid token is only sometimes among the values
    templates = (
        {"csrf_token": csrf, "client_id": DEMO_CLIENT_ID},
        {"csrf_token": csrf, "client_id": DEMO_CLIENT_ID, "action": "rotate_secret"},
        {"csrf_token": csrf, "username": DEMO_USERNAME, "client_id": DEMO_CLIENT_ID},
        {
            "csrf_token": csrf,
            "client_name": "Fuzzed",
            "redirect_uris": "https://a.example/cb",
            "grant_types": "authorization_code",
            "scope": "wallet:accounts:read",
        },
    )
    body = data.draw(form_body(values(csrf), templates))
    cookie = data.draw(
        st.sampled_from(
            [
                "; ".join(f"{k}={v}" for k, v in session.items()),
                "; ".join(f"{k}={v}" for k, v in session.items()),
                "",
                "wallet_session=forged",
                "wallet_session=" + "a" * 5000,
            ]
        )
    )
    origin = data.draw(st.sampled_from([None, "http://localhost:3000", "https://evil.example", "null"]))
    site = data.draw(st.sampled_from([None, "same-origin", "cross-site"]))
    headers = [("cookie", cookie)] if cookie else []
    if content_type is not None:
        headers.append(("content-type", content_type))
    headers += [("origin", origin)] if origin else []
    headers += [("sec-fetch-site", site)] if site else []
    headers.append(("x-odd", data.draw(header_text())))
    before = item_counts(aws_stack, WRITTEN)
    response = send(account, "POST", path, headers=headers, body=body)
    event(f"{path} {response.status}")
    assert response.status < 500, describe(response)
    if response.status >= 400:
        assert item_counts(aws_stack, WRITTEN) == before, describe(response)


@settings(FUZZ, max_examples=80)
@given(
    path=st.sampled_from(["/account", "/admin", "/admin/client", "/admin/users", "/admin/clients/new"]),
    query=st.lists(
        st.tuples(
            st.sampled_from(["client_id", "username", "next", "done", "x"]),
            st.one_of(odd_text(), st.sampled_from(["é" * 1500, "demo", DEMO_CLIENT_ID])),
        ),
        max_size=4,
    ).map(urlencode),
    signed=st.booleans(),
)
def test_pages_are_never_a_5xx(admin, path, query, signed):
    account, session, _ = admin
    headers = [("cookie", "; ".join(f"{k}={v}" for k, v in session.items()))] if signed else []
    response = send(account, "GET", path, headers=headers, query=query)
    event(f"{path} {response.status}")
    assert response.status < 500, describe(response)
