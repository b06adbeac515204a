"""The authorization endpoint under generated requests.

GET: 200 (a page), 302 or 400 only; a 302 never leaves for anywhere but a redirect URI registered for
the client (an open redirector is a bug, RFC 6749 §4.1.2.1 and RFC 9700 §4.11); a code is stored only
when one is sent back. POST: never a 5xx, and never a 303 (the way out with a code or an error)
unless the form carries the pending request's id and CSRF token from the browser that started it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, parse_qsl, quote_plus, urlsplit

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from devstack.seed import DEMO_CLIENT_ID, DEMO_PASSWORD, DEMO_REDIRECT_URI, DEMO_USERNAME
from tests.conftest import BASE_URL, header, set_cookies
from tests.forms import parse
from tests.fuzz.gateway import describe, item_counts, send
from tests.fuzz.strategies import (
    FORM,
    FORM_CONTENT_TYPES,
    FUZZ,
    SOURCE_ADDRESSES,
    Pairs,
    chance,
    encode_form,
    form_pairs,
    header_text,
    mostly,
    odd_text,
)
from wallet_mcp import aws
from wallet_mcp.oauth.server import client_id_metadata as cimd
from wallet_mcp.primitives import pkce
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.storage.clients import ClientRecord, ClientStore

pytestmark = pytest.mark.fuzz

CHALLENGE = pkce.s256("v" * 64)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
METADATA_URL = "https://client.example.com/oauth/metadata.json"
WEB = ClientRecord(
    client_id="web-app",
    client_name="Web app \u202e",
    token_endpoint_auth_method="none",
    grant_types=("authorization_code", "refresh_token"),
    redirect_uris=("https://app.example.com/callback", "https://app.example.com/cb?tenant=1"),
    scope=("mcp:tools:list", "mcp:tools:call", "wallet:accounts:read"),
    created_at=0,
    application_type="web",
)
NATIVE = ClientRecord(
    client_id="native-app",
    client_name="Native",
    token_endpoint_auth_method="none",
    grant_types=("authorization_code",),
    redirect_uris=("http://127.0.0.1/callback", "http://localhost/cb", "com.example.app:/cb"),
    scope=("mcp:tools:call",),
    created_at=0,
    application_type="native",
)
NO_CODE_FLOW = ClientRecord(
    client_id="backend-only",
    client_name="Backend",
    token_endpoint_auth_method="client_secret_post",
    client_secret_hash="0" * 64,
    grant_types=("client_credentials",),
    redirect_uris=("https://backend.example.com/cb",),
    scope=("mcp:tools:call",),
    created_at=0,
)
REDIRECTS = {
    # the seed's demo client is a web client
    DEMO_CLIENT_ID: ((DEMO_REDIRECT_URI,), "web"),
    WEB.client_id: (WEB.redirect_uris, "web"),
    NATIVE.client_id: (NATIVE.redirect_uris, "native"),
    NO_CODE_FLOW.client_id: (NO_CODE_FLOW.redirect_uris, "web"),
    METADATA_URL: (("https://client.example.com/callback",), "web"),
}
"""Every client the stack knows, with where it may be sent back to."""

STATES = (
    "xyz",
    "",
    "s" * 2049,
    "a&b=c",
    "javascript:alert(1)",
    "\u202e",
    "%00",
    "x#frag",
)
REDIRECT_URIS = [
    *sorted({uri for uris, _ in REDIRECTS.values() for uri in uris}),
    "https://evil.example.com/callback",
    "https://app.example.com/callback/../../evil",
    "https://app.example.com/callback?x=1",
    "https://app.example.com/callback#frag",
    "https://app.example.com.evil.example.com/callback",
    "https://app.example.com@evil.example.com/callback",
    "HTTPS://APP.EXAMPLE.COM/callback",
    "https://app.example.com:443/callback",
    "https://app.example.com/callback%20",
    "https://app.example.com/callback\\@evil.example.com",
    "//evil.example.com/callback",
    "http://127.0.0.1:49152/callback",
    "http://127.0.0.1:0/callback",
    "http://127.0.0.1:abc/callback",
    "http://127.0.0.1:1@evil.example.com/callback",
    "http://127.0.0.1.evil.example.com/callback",
    "http://localhost:8080@evil.example.com/callback",
    "http://[::1]:8080/callback",
    "http://localhost:8081/callback",
    "com.example.app:/cb?x=1",
    "com.example.app://evil.example.com/cb",
    "javascript:alert(1)//http://localhost:8080/callback",
]
QUERY_PARAMETERS: dict[str, st.SearchStrategy[str]] = {
    "response_type": st.sampled_from(["code", "token", "code id_token", "CODE", "none"]),
    "client_id": st.sampled_from([*sorted(REDIRECTS), "nobody", "https://evil.example.com/meta.json"]),
    "redirect_uri": st.sampled_from(REDIRECT_URIS),
    "scope": st.one_of(
        st.lists(st.sampled_from(SUPPORTED_SCOPES), max_size=3).map(" ".join),
        st.sampled_from(["openid", "admin:all", "mcp:tools:list\tx"]),
    ),
    "state": st.sampled_from(STATES),
    "code_challenge": st.sampled_from([CHALLENGE, "short", "=" * 43, CHALLENGE + "x", "é" * 43]),
    "code_challenge_method": st.sampled_from(["S256", "plain", "s256", ""]),
    "resource": st.sampled_from(
        [
            f"{BASE_URL}/mcp",
            f"{BASE_URL}/api",
            "https://evil.example.com/mcp",
            "http://localhost:abc/mcp",
            "http://[::1/mcp",
            "/mcp",
            f"{BASE_URL}/mcp#x",
        ]
    ),
    "prompt": st.sampled_from(["none", "login", "consent", "select_account", "login consent", ""]),
    "nonce": odd_text(),
    "response_mode": st.sampled_from(["query", "fragment", "form_post", "web_message"]),
}


def valid_request(client_id: str, redirect_uri: str, scope: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": "xyz",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }


VALID_REQUESTS = (
    valid_request(WEB.client_id, WEB.redirect_uris[0], "mcp:tools:list mcp:tools:call"),
    valid_request(WEB.client_id, WEB.redirect_uris[1], "mcp:tools:call"),
    valid_request(NATIVE.client_id, "http://127.0.0.1:5555/callback", "mcp:tools:call"),
    valid_request(NATIVE.client_id, "com.example.app:/cb", "mcp:tools:call"),
    valid_request(DEMO_CLIENT_ID, DEMO_REDIRECT_URI, "mcp:tools:list"),
    valid_request(METADATA_URL, "https://client.example.com/callback", "mcp:tools:list"),
)


def fetch_metadata(url: str) -> cimd.FetchedDocument:
    """The network, as the tests see it: one client metadata document, nothing else."""
    if url != METADATA_URL:
        raise cimd.ClientMetadataError("no such document")
    document = {
        "client_id": METADATA_URL,
        "client_name": "Metadata client",
        "redirect_uris": list(REDIRECTS[METADATA_URL][0]),
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none",
    }
    return cimd.FetchedDocument(document=document, cache_seconds=300)


@dataclass
class Browser:
    """The cookies of a browser that signed in and consented for the web app."""

    session: dict[str, str]


@pytest.fixture
def authorize_fn(load_function, aws_stack, monkeypatch):
    clients = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    for record in (WEB, NATIVE, NO_CODE_FLOW):
        clients.put(record)
    fn = load_function("AuthorizeFunction")
    monkeypatch.setattr(fn.module.start, "_fetch_metadata", fetch_metadata)
    return fn


@pytest.fixture
def signed_in(authorize_fn) -> Browser:
    """A session cookie of the demo user, with consent given to the web app (so a GET can answer 302
    with a code straight away)."""
    page = send(authorize_fn, "GET", "/oauth/authorize", query=encode_query(VALID_REQUESTS[0]))
    cookies = set_cookies(page)
    (form,), _ = parse(page.body.decode())
    consent = post(
        authorize_fn, form.submission({"username": DEMO_USERNAME, "password": DEMO_PASSWORD}), cookies
    )
    cookies |= set_cookies(consent)
    (form,), _ = parse(consent.body.decode())
    approved = post(authorize_fn, form.submission(button=("decision", "approve")), cookies)
    assert approved.status == 303, describe(approved)
    return Browser(session={"wallet_session": cookies["wallet_session"]})


def encode_query(params: dict[str, str]) -> str:
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in params.items())


def cookie_header(cookies: dict[str, str]) -> list[tuple[str, str]]:
    return [("cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()))] if cookies else []


def post(fn, form: dict[str, str] | str, cookies: dict[str, str], source_ip: str = "127.0.0.1"):
    body = form if isinstance(form, str) else encode_query(form)
    return send(
        fn,
        "POST",
        "/oauth/authorize",
        headers=[("content-type", FORM), *cookie_header(cookies)],
        body=body.encode(),
        source_ip=source_ip,
    )


def lands_on_a_registered_uri(location: str, client_id: str) -> bool:
    """`location` is one of the client's redirect URIs with parameters added (for a native client, a
    loopback URI on any port, RFC 8252 §7.3)."""
    registered, application_type = REDIRECTS[client_id]
    parts = urlsplit(location)
    for uri in registered:
        if location == uri or location.startswith(uri + ("&" if "?" in uri else "?")):
            return True
        have = urlsplit(uri)
        if (
            application_type == "native"
            and have.scheme == "http"
            and have.hostname in LOOPBACK
            and (parts.scheme, parts.hostname, parts.path) == (have.scheme, have.hostname, have.path)
            and parts.username is None
            and parts.password is None
            and parts.netloc.rpartition(":")[0] in ("", have.hostname, f"[{have.hostname}]")
        ):
            return True
    return False


def page_message(response) -> str:
    """The error a page shows (for the statistics of a run)."""
    match = re.search(r'role="alert">([^<]*)<', response.body.decode(errors="replace"))
    return match.group(1)[:40] if match else ""


def the_client_id(query: str) -> str | None:
    values = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "client_id"]
    return values[0] if len(values) == 1 else None


STATE_TABLES = ("AuthCodesTable", "AuthRequestsTable", "ConsentsTable", "SessionsTable")


@st.composite
def queries(draw: st.DrawFn) -> str:
    pairs: Pairs = draw(form_pairs(QUERY_PARAMETERS, VALID_REQUESTS))
    query = encode_form(pairs)
    if draw(chance(10)):
        query = draw(st.sampled_from(["&&&", "=&=", "%", "a=%zz&", "x" * 9000 + "&"])) + query
    return query


GET_COOKIES = st.sampled_from(["none", "signed-in", "forged session", "binding only"])


@example(  # a resource with a port that is not a number, on an otherwise valid request
    query=encode_query({**VALID_REQUESTS[0], "resource": "http://localhost:abc/mcp"}),
    cookies="none",
)
@settings(FUZZ, max_examples=200)
@given(query=queries(), cookies=GET_COOKIES)
def test_get_answers_a_page_a_local_error_or_a_redirect_to_a_registered_uri(
    authorize_fn, aws_stack, signed_in, query, cookies
):
    jar = {
        "none": {},
        "signed-in": signed_in.session,
        "forged session": {"wallet_session": "forged", "wallet_authz": "x"},
        "binding only": {"wallet_authz": "b" * 43},
    }[cookies]
    before = item_counts(aws_stack, STATE_TABLES)
    response = send(authorize_fn, "GET", "/oauth/authorize", query=query, headers=cookie_header(jar))
    after = item_counts(aws_stack, STATE_TABLES)
    location = header(response, "location")
    returned = parse_qs(urlsplit(location).query) if location else {}
    event(f"{response.status} {'code' if 'code' in returned else returned.get('error', [''])[0]}")
    assert response.status in {200, 302, 400}, describe(response)
    if response.status == 302:
        client_id = the_client_id(query)
        assert client_id in REDIRECTS, (location, query)
        assert lands_on_a_registered_uri(location, client_id), (location, query)
        assert ("code" in returned) != ("error" in returned), location
        assert returned.get("iss") == [BASE_URL], location
    else:
        assert location is None, describe(response)
    codes_issued = after["AuthCodesTable"] - before["AuthCodesTable"]
    assert codes_issued == (1 if "code" in returned else 0), (describe(response), location)
    if response.status != 200:
        assert after["AuthRequestsTable"] == before["AuthRequestsTable"], describe(response)
    assert (after["ConsentsTable"], after["SessionsTable"]) == (
        before["ConsentsTable"],
        before["SessionsTable"],
    )


SUBMISSION_FIELDS: dict[str, st.SearchStrategy[str]] = {
    "request_id": st.sampled_from(["forged", "x" * 3000, " "]),
    "csrf_token": st.sampled_from(["forged", "x" * 3000]),
    "username": st.sampled_from([DEMO_USERNAME, " demo ", "DEMO", "nobody", " ", "x" * 300]),
    "password": st.sampled_from([DEMO_PASSWORD, "wrong", "", "x" * 2000]),
    "decision": st.sampled_from(["approve", "deny", "APPROVE", "maybe"]),
}


@dataclass(frozen=True)
class Submission:
    """A request started for real (signed in or not), then a form and cookies posted back to it."""

    start: int
    """Which of VALID_REQUESTS the browser started."""
    signed_in: bool
    step: Literal["login", "decision"]
    """The form a browser would post: the login page's or the consent page's."""
    drop: tuple[str, ...] = ()
    """Form fields (`request_id`, `csrf_token`, all but those: `fields`) or cookies left out."""
    changes: tuple[tuple[str, str, bool], ...] = ()
    """Fields set to other values (name, value, percent-encoded)."""
    repeat_first: bool = False
    content_type: str | None = FORM
    binding: Literal["real", "forged", "missing"] = "real"
    source_ip: str = "127.0.0.1"


@st.composite
def submissions(draw: st.DrawFn) -> Submission:
    droppable = ["request_id", "csrf_token", "binding", "session", "fields"]
    changes = []
    for _ in range(draw(mostly(st.just(0), st.integers(1, 3), one_in=2))):
        name = draw(st.one_of(st.sampled_from(sorted(SUBMISSION_FIELDS)), odd_text(12)))
        value = draw(mostly(SUBMISSION_FIELDS.get(name, odd_text()), odd_text(), one_in=3))
        changes.append((name, value, draw(st.booleans())))
    return Submission(
        start=draw(st.integers(0, 3)),
        signed_in=draw(st.booleans()),
        step=draw(st.sampled_from(["login", "decision"])),
        drop=tuple(
            draw(mostly(st.just([]), st.lists(st.sampled_from(droppable), unique=True, max_size=2), one_in=2))
        ),
        changes=tuple(changes),
        repeat_first=draw(chance(10)),
        content_type=draw(FORM_CONTENT_TYPES),
        binding=draw(mostly(st.just("real"), st.sampled_from(["forged", "missing"]), one_in=3)),
        source_ip=draw(SOURCE_ADDRESSES),
    )


@example(  # a consent form without request_id: GetItem with an empty key → ValidationException
    Submission(start=0, signed_in=False, step="decision", drop=("request_id",), source_ip="10.2.0.1")
)
@settings(FUZZ, max_examples=80)
@given(submissions())
def test_post_is_never_a_5xx_and_never_a_303_without_the_pending_request(
    authorize_fn, aws_stack, signed_in, submission
):
    s = submission
    cookies = dict(signed_in.session) if s.signed_in else {}
    start = encode_query({**VALID_REQUESTS[s.start], "prompt": "consent"})  # a page even if consented
    page = send(authorize_fn, "GET", "/oauth/authorize", query=start, headers=cookie_header(cookies))
    assert page.status == 200, describe(page)
    cookies |= set_cookies(page)
    binding = cookies["wallet_authz"]
    (form,), _ = parse(page.body.decode())
    real = {"request_id": form.fields["request_id"], "csrf_token": form.fields["csrf_token"]}
    if s.step == "login":
        fields = {**form.fields, "username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    else:
        fields = {**real, "decision": "approve"}
    for name in s.drop:
        if name in real:
            fields.pop(name, None)
        elif name == "fields":
            fields = {k: v for k, v in fields.items() if k in real}
        elif name == "session":
            cookies.pop("wallet_session", None)
    if "binding" in s.drop or s.binding == "missing":
        cookies.pop("wallet_authz", None)
    elif s.binding == "forged":
        cookies["wallet_authz"] = "forged"
    pairs: Pairs = [(k, v, True) for k, v in fields.items()]
    for name, value, encoded in s.changes:
        pairs = [p for p in pairs if p[0] != name] + [(name, value, encoded)]
    if s.repeat_first and pairs:
        pairs.append(pairs[0])
    sent = {k: v for k, v, _ in pairs}
    headers = cookie_header(cookies)
    if s.content_type is not None:
        headers.append(("content-type", s.content_type))

    before = item_counts(aws_stack, ("AuthCodesTable",))
    response = send(
        authorize_fn,
        "POST",
        "/oauth/authorize",
        headers=headers,
        body=encode_form(pairs).encode(),
        source_ip=s.source_ip,
    )
    after = item_counts(aws_stack, ("AuthCodesTable",))
    event(f"{response.status} {page_message(response)}")
    assert response.status < 500, describe(response)
    if response.status == 303:
        genuine = (
            sent.get("request_id") == real["request_id"]
            and sent.get("csrf_token") == real["csrf_token"]
            and cookies.get("wallet_authz") == binding
            and (s.content_type or "").split(";")[0].strip().lower() == FORM
            and not s.repeat_first
        )
        assert genuine, (describe(response), sent, cookies)
        location = header(response, "location")
        assert lands_on_a_registered_uri(location, VALID_REQUESTS[s.start]["client_id"]), location
    if "code" not in parse_qs(urlsplit(header(response, "location") or "").query):
        assert after == before, describe(response)


HEADER_NAMES = st.sampled_from(["cookie", "origin", "referer", "x-forwarded-for", "accept", "host-x"])


@settings(FUZZ, max_examples=40)
@given(query=queries(), extra=st.lists(st.tuples(HEADER_NAMES, header_text()), max_size=3))
def test_get_with_odd_headers_and_cookies_is_never_a_5xx(authorize_fn, query, extra):
    response = send(authorize_fn, "GET", "/oauth/authorize", query=query, headers=extra)
    assert response.status in {200, 302, 400}, describe(response)
