"""The authorization endpoint through its Lambda handler: validation, login, consent, codes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_PASSWORD, DEMO_REDIRECT_URI, DEMO_USER_ID, DEMO_USERNAME
from tests.conftest import BASE_URL, cookie_attributes, header, response_json, set_cookies
from tests.forms import parse
from wallet_mcp import aws
from wallet_mcp.oauth.server.authorize_errors import ERROR_DESCRIPTIONS
from wallet_mcp.primitives import pkce
from wallet_mcp.storage.clients import ClientRecord, ClientStore

REDIRECT = "https://app.example.com/callback"
VERIFIER = "v" * 64
CHALLENGE = pkce.s256(VERIFIER)
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def authorize_fn(load_function, aws_stack):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id="web-app",
            client_name='<script>alert("x")</script> Budget & Co',
            token_endpoint_auth_method="none",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(REDIRECT,),
            scope=("mcp:tools:list", "mcp:tools:call", "wallet:accounts:read", "wallet:accounts:write"),
            created_at=0,
            application_type="web",
        )
    )
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id="native-app",
            client_name="Native",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code",),
            redirect_uris=("http://127.0.0.1/callback",),
            scope=("mcp:tools:call",),
            created_at=0,
            application_type="native",
        )
    )
    return load_function("AuthorizeFunction")


def params(**overrides):
    base = {
        "response_type": "code",
        "client_id": "web-app",
        "redirect_uri": REDIRECT,
        "scope": "mcp:tools:list mcp:tools:call",
        "state": "xyz-state",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def get(fn, query: dict | str, cookies=None):
    qs = query if isinstance(query, str) else urlencode(query)
    return fn.request("GET", "/oauth/authorize", query=qs, cookies=cookies)


def redirect_params(response):
    location = header(response, "location")
    assert location, response.body
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", {k: v[0] for k, v in parse_qs(parts.query).items()}


# --- errors before the client and redirect URI are known: a local page, never a redirect ----------


@pytest.mark.parametrize(
    "query",
    [
        params(client_id=None),
        params(client_id="nobody"),
        params(redirect_uri=None),
        params(redirect_uri="https://evil.example.com/callback"),
        params(redirect_uri=REDIRECT + "/extra"),
        params(redirect_uri=REDIRECT.upper()),
        urlencode(params()) + "&client_id=web-app",
        urlencode(params()) + "&redirect_uri=" + REDIRECT,
        params(client_id="native-app", redirect_uri="http://127.0.0.1:5555/other"),
    ],
)
def test_untrusted_client_or_redirect_renders_a_local_error_page(authorize_fn, query):
    response = get(authorize_fn, query)
    assert response.status == 400
    assert header(response, "location") is None
    assert header(response, "content-type").startswith("text/html")
    assert "Cannot authorize" in response.body.decode()


# --- errors after: our page before sign-in, then back to the client with error, state and iss ----

REQUEST_ERRORS = [
    (params(response_type="token"), "unsupported_response_type"),
    (params(response_type=None), "unsupported_response_type"),
    (params(code_challenge=None), "invalid_request"),
    (params(code_challenge_method="plain"), "invalid_request"),
    (params(code_challenge_method=None), "invalid_request"),
    (params(code_challenge="short"), "invalid_request"),
    (params(scope="wallet:transactions:write"), "invalid_scope"),
    (params(resource="https://evil.example.com/mcp"), "invalid_target"),
    (urlencode(params()) + "&scope=mcp:tools:list", "invalid_request"),
    # RFC 9449 §10: dpop_jkt must be a base64url SHA-256 thumbprint (43 characters, no padding)
    (params(dpop_jkt="A" * 42), "invalid_request"),
    (params(dpop_jkt="A" * 43 + "="), "invalid_request"),
    (params(dpop_jkt="A" * 42 + "+"), "invalid_request"),
    (params(dpop_jkt="A" * 42 + "B"), "invalid_request"),  # trailing bits set: no 32-byte value
]


@pytest.mark.parametrize(("query", "error"), REQUEST_ERRORS)
def test_request_errors_before_sign_in_stay_on_our_page(authorize_fn, query, error):
    """RFC 9700 §4.11.2: an attacker's link must not turn this server into a redirector."""
    response = get(authorize_fn, query)
    assert response.status == 400
    assert header(response, "location") is None
    assert "Cannot authorize" in response.body.decode()
    assert ERROR_DESCRIPTIONS[error] in response.body.decode()


def signed_in(fn):
    first = get(fn, params())
    cookies = set_cookies(first)
    return cookies | set_cookies(login(fn, cookies, first.body.decode()))


@pytest.mark.parametrize(("query", "error"), REQUEST_ERRORS)
def test_request_errors_after_sign_in_redirect_with_a_fixed_description_state_and_iss(
    authorize_fn, query, error
):
    response = get(authorize_fn, query, cookies=signed_in(authorize_fn))
    assert response.status == 302
    target, returned = redirect_params(response)
    assert target == REDIRECT
    assert returned["error"] == error
    assert returned["error_description"] == ERROR_DESCRIPTIONS[error]  # never request text
    assert returned["state"] == "xyz-state"
    assert returned["iss"] == BASE_URL
    assert "code" not in returned


def test_silent_authentication_without_a_session_redirects_login_required_to_a_registered_client(
    authorize_fn,
):
    response = get(authorize_fn, params(prompt="none"))
    assert response.status == 302
    _, returned = redirect_params(response)
    assert returned["error"] == "login_required"
    assert returned["state"] == "xyz-state"


def test_silent_authentication_for_a_self_registered_client_stays_on_our_page(authorize_fn, aws_stack):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id="mcp_self",
            client_name="Claude",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code",),
            redirect_uris=("https://evil.example/cb",),
            scope=("mcp:tools:list",),
            created_at=0,
            self_registered=True,
        )
    )
    response = get(
        authorize_fn,
        params(
            client_id="mcp_self",
            redirect_uri="https://evil.example/cb",
            scope="mcp:tools:list",
            prompt="none",
        ),
    )
    assert response.status == 400
    assert header(response, "location") is None


# --- the pages ---------------------------------------------------------------------------------


def login(fn, cookies, page_html, username=DEMO_USERNAME, password=DEMO_PASSWORD):
    (form,), _ = parse(page_html)
    body = urlencode(form.submission({"username": username, "password": password}))
    return fn.request("POST", "/oauth/authorize", headers=FORM, body=body, cookies=cookies)


def decide(fn, cookies, page_html, decision):
    (form,), _ = parse(page_html)
    body = urlencode(form.submission(button=("decision", decision)))
    return fn.request("POST", "/oauth/authorize", headers=FORM, body=body, cookies=cookies)


def test_login_page_form_and_security_headers(authorize_fn):
    response = get(authorize_fn, params())
    assert response.status == 200
    forms, _ = parse(response.body.decode())
    assert len(forms) == 1
    form = forms[0]
    assert form.method == "post"
    assert {"username", "password", "request_id", "csrf_token"} <= set(form.fields)
    csp = header(response, "content-security-policy")
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "form-action 'self' https://app.example.com" in csp
    assert header(response, "x-frame-options") == "DENY"
    assert header(response, "referrer-policy") == "no-referrer"
    assert header(response, "x-content-type-options") == "nosniff"
    assert header(response, "cache-control") == "no-store"
    binding = cookie_attributes(response, "wallet_authz")
    assert "HttpOnly" in binding and "SameSite=lax" in binding and "Path=/oauth/authorize" in binding
    assert "<script>" not in response.body.decode()  # the client name is escaped


def test_full_login_and_consent_issues_a_code(authorize_fn):
    first = get(authorize_fn, params())
    cookies = set_cookies(first)
    wrong = login(authorize_fn, cookies, first.body.decode(), password="nope")
    assert wrong.status == 200
    assert "Invalid username or password" in wrong.body.decode()
    consent = login(authorize_fn, cookies, first.body.decode())
    assert consent.status == 200
    cookies |= set_cookies(consent)
    assert "HttpOnly" in cookie_attributes(consent, "wallet_session")
    forms, text = parse(consent.body.decode())
    (form,) = forms
    assert ("decision", "approve") in form.buttons and ("decision", "deny") in form.buttons
    assert "app.example.com" in text
    assert "See which wallet tools are available" in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Budget &amp; Co" in consent.body.decode()
    approved = decide(authorize_fn, cookies, consent.body.decode(), "approve")
    assert approved.status == 303
    target, returned = redirect_params(approved)
    assert target == REDIRECT
    assert returned["state"] == "xyz-state"
    assert returned["iss"] == BASE_URL
    assert len(returned["code"]) >= 43  # 256 bits, base64url

    # the same form again cannot mint a second code
    again = decide(authorize_fn, cookies, consent.body.decode(), "approve")
    assert again.status == 400
    assert header(again, "location") is None

    # a public client's id anyone can present: remembered consent is asked again (RFC 8252 §8.6)
    again = get(authorize_fn, params(state="second"), cookies=cookies)
    assert again.status == 200
    assert "You allowed this before" in again.body.decode()
    assert ("decision", "approve") in parse(again.body.decode())[0][0].buttons

    # a new scope asks again
    more = get(authorize_fn, params(scope="mcp:tools:call wallet:accounts:write"), cookies=cookies)
    assert more.status == 200
    assert ("decision", "approve") in parse(more.body.decode())[0][0].buttons


def test_remembered_consent_is_silent_only_for_a_confidential_client_and_never_for_moving_money(authorize_fn):
    demo = {"client_id": DEMO_CLIENT_ID, "redirect_uri": DEMO_REDIRECT_URI}
    first = get(authorize_fn, params(**demo))
    cookies = set_cookies(first)
    consent = login(authorize_fn, cookies, first.body.decode())
    cookies |= set_cookies(consent)
    assert decide(authorize_fn, cookies, consent.body.decode(), "approve").status == 303

    direct = get(authorize_fn, params(state="second", **demo), cookies=cookies)
    assert direct.status == 302
    target, returned = redirect_params(direct)
    assert target == DEMO_REDIRECT_URI and returned["state"] == "second" and "code" in returned

    money = get(authorize_fn, params(scope="wallet:transactions:write", **demo), cookies=cookies)
    assert money.status == 200
    consent = money.body.decode()
    assert decide(authorize_fn, cookies, consent, "approve").status == 303
    again = get(authorize_fn, params(scope="wallet:transactions:write", **demo), cookies=cookies)
    assert again.status == 200  # asked every time
    assert "You allowed this before" in again.body.decode()


def test_deny_redirects_access_denied(authorize_fn):
    first = get(authorize_fn, params())
    cookies = set_cookies(first)
    consent = login(authorize_fn, cookies, first.body.decode())
    cookies |= set_cookies(consent)
    denied = decide(authorize_fn, cookies, consent.body.decode(), "deny")
    assert denied.status == 303
    _, returned = redirect_params(denied)
    assert returned["error"] == "access_denied"
    assert returned["state"] == "xyz-state"
    assert returned["iss"] == BASE_URL


@pytest.mark.parametrize("tamper", ["csrf", "binding", "request"])
def test_forged_submissions_are_refused(authorize_fn, tamper):
    first = get(authorize_fn, params())
    cookies = set_cookies(first)
    (form,), _ = parse(first.body.decode())
    values = {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    if tamper == "csrf":
        values["csrf_token"] = "forged"
    elif tamper == "request":
        values["request_id"] = "forged"
    else:
        cookies = {}
    response = authorize_fn.request(
        "POST", "/oauth/authorize", headers=FORM, body=urlencode(form.submission(values)), cookies=cookies
    )
    assert response.status in (400, 403)
    assert header(response, "location") is None
    assert "wallet_session" not in set_cookies(response)


def test_a_form_is_refused_from_another_browser_or_for_another_request(authorize_fn):
    """The CSRF token is bound to the browser binding and to the request (signin/csrf.py): a form
    lifted from one browser's page, or one request's token on another request, is worthless."""
    mine, theirs = get(authorize_fn, params()), get(authorize_fn, params(state="other"))
    my_cookies = set_cookies(mine)
    second = get(authorize_fn, params(state="second"), cookies=my_cookies)
    (form,), _ = parse(mine.body.decode())
    (second_form,), _ = parse(second.body.decode())
    credentials = {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    attempts = [
        (form.submission(credentials), set_cookies(theirs)),  # my page, another browser's cookie
        (form.submission({**credentials, "csrf_token": second_form.fields["csrf_token"]}), my_cookies),
    ]
    for fields, cookies in attempts:
        response = authorize_fn.request(
            "POST", "/oauth/authorize", headers=FORM, body=urlencode(fields), cookies=cookies
        )
        assert response.status == 403
        assert "wallet_session" not in set_cookies(response)
    # the genuine form still works
    genuine = authorize_fn.request(
        "POST",
        "/oauth/authorize",
        headers=FORM,
        body=urlencode(form.submission(credentials)),
        cookies=my_cookies,
    )
    assert genuine.status == 200
    assert "wallet_session" in set_cookies(genuine)


def test_a_request_stored_before_the_derived_csrf_token_reads_as_expired(authorize_fn, aws_stack):
    """Deploy window: a pending request written with a random `csrf_hash` (its page carries a token
    that cannot be derived) asks the user to start again instead of calling the form forged."""
    first = get(authorize_fn, params())
    (form,), _ = parse(first.body.decode())
    aws.dynamodb().update_item(
        TableName=aws_stack.physical_ids["AuthRequestsTable"],
        Key={"request_id": {"S": form.fields["request_id"]}},
        UpdateExpression="SET csrf_hash = :h",
        ExpressionAttributeValues={":h": {"S": "0" * 64}},
    )
    response = login(authorize_fn, set_cookies(first), first.body.decode())
    assert response.status == 400
    assert "expired" in response.body.decode()


def test_native_loopback_redirect_matches_any_port(authorize_fn):
    response = get(
        authorize_fn,
        params(
            client_id="native-app", redirect_uri="http://127.0.0.1:49152/callback", scope="mcp:tools:call"
        ),
    )
    assert response.status == 200


def test_prompt_login_forces_the_login_page(authorize_fn):
    first = get(authorize_fn, params())
    cookies = set_cookies(first)
    consent = login(authorize_fn, cookies, first.body.decode())
    cookies |= set_cookies(consent)
    decide(authorize_fn, cookies, consent.body.decode(), "approve")
    forced = get(authorize_fn, params(prompt="login"), cookies=cookies)
    assert forced.status == 200
    assert "password" in parse(forced.body.decode())[0][0].fields


def test_code_is_bound_to_user_client_and_pkce(authorize_fn, aws_stack):
    first = get(authorize_fn, params(resource=f"{BASE_URL}/api"))
    cookies = set_cookies(first)
    consent = login(authorize_fn, cookies, first.body.decode())
    cookies |= set_cookies(consent)
    approved = decide(authorize_fn, cookies, consent.body.decode(), "approve")
    code = redirect_params(approved)[1]["code"]
    from wallet_mcp.credentials import opaque

    item = aws.dynamodb().get_item(
        TableName=aws_stack.physical_ids["AuthCodesTable"], Key={"code_hash": {"S": opaque.digest(code)}}
    )["Item"]
    assert item["client_id"]["S"] == "web-app"
    assert item["user_id"]["S"] == DEMO_USER_ID
    assert item["code_challenge"]["S"] == CHALLENGE
    assert item["redirect_uri"]["S"] == REDIRECT
    assert item["resource"]["S"] == f"{BASE_URL}/api"
    assert int(item["expires_at"]["N"]) - int(item["issued_at"]["N"]) == 60
    assert code not in str(item)  # stored only as a digest


CURSOR_REDIRECT = "cursor://anysphere.cursor-mcp/oauth/callback"


def test_an_app_scheme_client_is_shown_plainly_and_asked_every_time(load_function, authorize_fn):
    """Cursor's registration (a private-use scheme, RFC 8252 §7.1): the consent page names the
    scheme and authority the code goes to, and remembered consent never skips it (public client)."""
    register = load_function("RegisterFunction")
    registered = register.request(
        "POST",
        "/oauth/register",
        headers={"content-type": "application/json"},
        body={
            "client_name": "Cursor",
            "redirect_uris": [CURSOR_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        },
    )
    assert registered.status == 201, registered.body
    cursor = {"client_id": response_json(registered)["client_id"], "redirect_uri": CURSOR_REDIRECT}
    first = get(authorize_fn, params(**cursor))
    cookies = set_cookies(first)
    consent = login(authorize_fn, cookies, first.body.decode())
    cookies |= set_cookies(consent)
    assert consent.status == 200
    assert "cursor://anysphere.cursor-mcp" in consent.body.decode()
    approved = decide(authorize_fn, cookies, consent.body.decode(), "approve")
    assert approved.status == 303
    target, returned = redirect_params(approved)
    assert target == CURSOR_REDIRECT and "code" in returned

    again = get(authorize_fn, params(state="second", **cursor), cookies=cookies)
    assert again.status == 200  # a consent page, not a silent redirect
    assert "You allowed this before" in again.body.decode()


def test_scopes_this_server_does_not_know_are_ignored_not_refused(authorize_fn):
    """RFC 6749 §3.3: hosts ask for `openid email profile offline_access` beside ours; those are
    dropped (the token response says what was granted), never a failed sign-in."""
    first = get(authorize_fn, params(scope="openid email profile offline_access mcp:tools:list"))
    assert first.status == 200, first.body
    cookies = set_cookies(first)
    consent = login(authorize_fn, cookies, first.body.decode())
    page = consent.body.decode()
    assert consent.status == 200 and "mcp:tools:list" in page and "openid" not in page
    only_unknown = get(authorize_fn, params(scope="openid profile"))
    assert only_unknown.status == 200  # nothing known asked: the client's default scope
