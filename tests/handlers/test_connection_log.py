"""The connection log through the real handlers: each step of a client's attempts to connect is
recorded with its outcome (the RFC error code where there is one), never with a secret; a failure
to record changes nothing the client or the person gets; and the /admin pages show only steps
whose time is not up."""

from __future__ import annotations

import json
import time
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from botocore.awsrequest import AWSResponse

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.conftest import BASE_URL, header, response_json, set_cookies, with_parameters
from tests.forms import parse
from tests.handlers.oauth_helpers import (
    FORM,
    REDIRECT,
    VERIFIER,
    body,
    exchange,
    mcp_call,
    obtain_code,
    token_request,
)
from tests.handlers.test_account import sign_in
from tests.support.faults import aws_fault
from wallet_mcp import aws
from wallet_mcp.credentials.passwords import hash_password
from wallet_mcp.oauth.server import client_id_metadata as cimd
from wallet_mcp.oauth.server.authorize import AuthorizeStart
from wallet_mcp.primitives import pkce
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.connection_log import UNREGISTERED, ConnectionLog, failed, succeeded
from wallet_mcp.storage.users import UserRecord, UserStore
from wallet_mcp.tokens.access_tokens import access_token_claims, issue_access_token

APP = "diagnosed-app"
RETENTION = 86400  # the template's default


@pytest.fixture
def app_client(aws_stack):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id=APP,
            client_name="Diagnosed <i>App</i>",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(REDIRECT,),
            scope=("mcp:tools:list", "mcp:tools:call", "wallet:accounts:read"),
            created_at=0,
        )
    )
    return APP


@pytest.fixture
def authorize(load_function, app_client):
    return load_function("AuthorizeFunction")


@pytest.fixture
def token(load_function, app_client):
    return load_function("TokenFunction")


@pytest.fixture
def mcp(load_function, app_client):
    return load_function("McpFunction")


def raw_items(aws_stack) -> list[dict[str, Any]]:
    table = aws_stack.physical_ids["ConnectionLogTable"]
    return aws.dynamodb().scan(TableName=table)["Items"]


def logged(aws_stack, client_id: str | None = None) -> list[dict[str, str]]:
    """The table's steps as plain strings, oldest first (optionally one client's)."""
    rows = [{k: v.get("S", v.get("N")) for k, v in item.items()} for item in raw_items(aws_stack)]
    rows.sort(key=lambda row: row["at"])
    return [row for row in rows if client_id is None or row["client_id"] == client_id]


def outline(rows: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    return [(row["step"], row["outcome"], row["status"]) for row in rows]


def authorize_query(**overrides: str) -> str:
    query = {
        "response_type": "code",
        "client_id": APP,
        "redirect_uri": REDIRECT,
        "scope": "mcp:tools:list mcp:tools:call",
        "state": "st",
        "code_challenge": pkce.s256(VERIFIER),
        "code_challenge_method": "S256",
        **overrides,
    }
    return urlencode(query)


def post_form(authorize, form, cookies, values=None, button=None):
    return authorize.request(
        "POST",
        "/oauth/authorize",
        headers=FORM,
        body=urlencode(form.submission(values or {}, button=button)),
        cookies=cookies,
    )


# --- each step, and how it ended ----------------------------------------------------------------


def test_a_refused_registration_is_logged_with_its_rfc7591_error_and_the_name_given(load_function, aws_stack):
    register = load_function("RegisterFunction")
    response = register.request(
        "POST",
        "/oauth/register",
        body={"client_name": "Claude <b>Desktop</b>", "redirect_uris": ["http://app.example.com/cb"]},
    )
    assert response.status == 400
    assert response_json(response)["error"] == "invalid_redirect_uri"
    (step,) = logged(aws_stack)
    assert step["client_id"] == UNREGISTERED
    assert (step["step"], step["outcome"], step["status"]) == ("registration", "invalid_redirect_uri", "400")
    assert step["client_name"] == "Claude <b>Desktop</b>"
    assert step["description"] == response_json(response)["error_description"]
    assert step["request_id"]  # API Gateway's request id: the logs' correlation_id
    assert step["failure_day"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert abs(int(step["expires_at"]) - (time.time() + RETENTION)) < 60


def test_a_registration_is_logged_under_its_new_client_id_without_its_secret(load_function, aws_stack):
    register = load_function("RegisterFunction")
    response = register.request(
        "POST",
        "/oauth/register",
        body={
            "client_name": "Confidential",
            "redirect_uris": ["https://app.example.com/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    assert response.status == 201
    registered = response_json(response)
    (step,) = logged(aws_stack)
    assert step["client_id"] == registered["client_id"]
    assert (step["step"], step["outcome"], step["status"]) == ("registration", "ok", "201")
    assert "failure_day" not in step  # successes stay out of the failures index
    assert registered["client_secret"] not in json.dumps(raw_items(aws_stack))


def test_a_redirect_uri_not_registered_is_logged_at_authorize_naming_it(authorize, aws_stack):
    wrong = "https://app.example.com/other-callback"
    response = authorize.request("GET", "/oauth/authorize", query=authorize_query(redirect_uri=wrong))
    assert response.status == 400
    assert header(response, "location") is None  # never redirected to (RFC 6749 §4.1.2.1)
    (step,) = logged(aws_stack, APP)
    assert (step["step"], step["outcome"], step["status"]) == ("authorize", "invalid_request", "400")
    assert wrong in step["description"] and "not registered" in step["description"]


@pytest.mark.parametrize(
    ("overrides", "error", "asked"),
    [
        ({"scope": "wallet:transactions:write"}, "invalid_scope", "wallet:transactions:write"),
        ({"resource": f"{BASE_URL}/"}, "invalid_target", f"{BASE_URL}/"),  # not the MCP server's
    ],
)
def test_a_request_error_is_logged_with_what_was_asked_and_where_the_error_went(
    authorize, aws_stack, overrides, error, asked
):
    response = authorize.request("GET", "/oauth/authorize", query=authorize_query(**overrides))
    assert response.status == 400  # nobody signed in: our page, not the client's redirect URI
    (step,) = logged(aws_stack, APP)
    assert (step["step"], step["outcome"], step["status"]) == ("authorize", error, "400")
    assert f"(asked for {asked})" in step["description"]
    assert "never redirected" in step["description"]


def test_an_unknown_client_id_is_logged_under_the_id_the_request_named(authorize, aws_stack):
    response = authorize.request("GET", "/oauth/authorize", query=authorize_query(client_id="mcp_gone"))
    assert response.status == 400
    (step,) = logged(aws_stack, "mcp_gone")
    assert (step["step"], step["outcome"]) == ("authorize", "invalid_client")
    assert "register again" in step["description"]


@pytest.mark.parametrize(
    ("document", "outcome", "detail"),
    [
        (
            {"client_name": "Described", "redirect_uris": [REDIRECT]},
            "ok",
            "metadata document fetched and valid; cached for 300 s",
        ),
        (
            {
                "client_name": "Described",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "private_key_jwt",
            },
            "invalid_client_metadata",
            "metadata document refused: private_key_jwt needs exactly one of jwks or jwks_uri",
        ),
    ],
)
def test_a_metadata_document_fetch_is_logged_as_discovery(authorize, aws_stack, document, outcome, detail):
    """A URL client id: the document fetched (or refused, and exactly why: the person sees one
    answer for every refusal) is the `discovery` step."""
    url = "https://tools.example.com/clients/desktop.json"

    def fetch(fetched_url: str) -> cimd.FetchedDocument:
        assert fetched_url == url
        return cimd.FetchedDocument({"client_id": url, **document}, cache_seconds=300)

    authorize.module.start = AuthorizeStart(authorize.module.steps, fetch_metadata=fetch)
    response = authorize.request("GET", "/oauth/authorize", query=authorize_query(client_id=url))
    assert response.status == (200 if outcome == "ok" else 400)
    step = logged(aws_stack, url)[0]
    assert (step["step"], step["outcome"], step["description"]) == ("discovery", outcome, detail)
    if outcome == "ok":
        assert step["client_name"] == "Described"
        assert outline(logged(aws_stack, url))[1] == ("authorize", "ok", "200")
    else:
        assert "could not be fetched or is not valid" in response.body.decode()  # one answer for all
        assert len(logged(aws_stack, url)) == 1


def test_sign_in_and_a_denied_consent_are_logged_without_what_was_typed(authorize, aws_stack):
    page = authorize.request("GET", "/oauth/authorize", query=authorize_query())
    assert page.status == 200
    cookies = set_cookies(page)
    (form,), _ = parse(page.body.decode())
    wrong = post_form(
        authorize, form, cookies, {"username": "nobody-typed-this", "password": "hunter2-typed"}
    )
    assert wrong.status == 200 and "Invalid username or password" in wrong.body.decode()
    (form,), _ = parse(wrong.body.decode())
    consent = post_form(authorize, form, cookies, {"username": DEMO_USERNAME, "password": DEMO_PASSWORD})
    assert consent.status == 200
    cookies |= set_cookies(consent)
    (form,), _ = parse(consent.body.decode())
    denied = post_form(authorize, form, cookies, button=("decision", "deny"))
    assert denied.status == 303
    assert parse_qs(urlsplit(header(denied, "location")).query)["error"] == ["access_denied"]

    steps = logged(aws_stack, APP)
    assert outline(steps) == [
        ("authorize", "ok", "200"),
        ("login", "invalid_credentials", "200"),
        ("login", "ok", "200"),
        ("consent", "access_denied", "303"),
        ("authorize", "access_denied", "303"),
    ]
    assert steps[0]["description"].endswith("login page shown")
    assert steps[2]["description"] == f"signed in as {DEMO_USERNAME} with a password"
    assert REDIRECT in steps[4]["description"]
    stored = json.dumps(raw_items(aws_stack))
    assert "nobody-typed-this" not in stored and "hunter2-typed" not in stored
    assert DEMO_PASSWORD not in stored
    for cookie in cookies.values():
        assert cookie not in stored


def test_an_approved_request_logs_consent_and_the_redirect_with_a_code_never_the_code(authorize, aws_stack):
    code = obtain_code(authorize, client_id=APP)
    assert outline(logged(aws_stack, APP)) == [
        ("authorize", "ok", "200"),
        ("login", "ok", "200"),
        ("consent", "ok", "303"),
        ("authorize", "ok", "303"),
    ]
    assert code not in json.dumps(raw_items(aws_stack))


def test_an_invalid_grant_at_the_token_endpoint_is_logged_with_its_error_code(authorize, token, aws_stack):
    code = obtain_code(authorize, client_id=APP)
    wrong_verifier = "wrong-" + "v" * 50
    refused = exchange(token, code, APP, verifier=wrong_verifier)
    assert refused.status == 400 and body(refused)["error"] == "invalid_grant"
    step = logged(aws_stack, APP)[-1]
    assert (step["step"], step["outcome"], step["status"]) == ("token", "invalid_grant", "400")
    assert step["description"] == "authorization_code: code_verifier does not match the code_challenge"
    assert "failure_day" in step

    granted = exchange(token, code, APP)
    assert granted.status == 200
    tokens = body(granted)
    step = logged(aws_stack, APP)[-1]
    assert (step["step"], step["outcome"], step["status"]) == ("token", "ok", "200")
    assert step["description"].startswith(f"authorization_code: access token for {BASE_URL}/mcp")
    refreshed = token_request(
        token, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": APP}
    )
    assert refreshed.status == 200
    assert logged(aws_stack, APP)[-1]["description"].startswith("refresh_token: rotated")

    stored = json.dumps(raw_items(aws_stack))
    secrets = [code, VERIFIER, wrong_verifier, tokens["access_token"], tokens["refresh_token"]]
    secrets += [body(refreshed)["access_token"], body(refreshed)["refresh_token"]]
    assert [s for s in secrets if s in stored] == []


def test_the_same_failure_repeated_within_a_minute_is_logged_once(token, aws_stack):
    data = {"grant_type": "refresh_token", "refresh_token": "rt_not-a-token", "client_id": APP}
    for _ in range(3):
        assert body(token_request(token, data))["error"] == "invalid_grant"
    assert outline(logged(aws_stack, APP)) == [("token", "invalid_grant", "400")]
    other = {**data, "grant_type": "authorization_code"}  # another failure: logged
    assert token_request(token, other).status == 400
    assert len(logged(aws_stack, APP)) == 2


def test_a_client_authentication_failure_is_logged_under_the_id_it_named(token, aws_stack):
    response = token_request(
        token, {"grant_type": "client_credentials", "scope": "wallet:accounts:read"}, basic=(APP, "s3cret")
    )
    assert response.status == 401
    (step,) = logged(aws_stack, APP)
    assert (step["step"], step["outcome"], step["status"]) == ("token", "invalid_client", "401")
    assert "s3cret" not in json.dumps(raw_items(aws_stack))


def test_the_first_mcp_call_with_each_access_token_is_logged_once(authorize, token, mcp, aws_stack):
    tokens = body(exchange(token, obtain_code(authorize, client_id=APP), APP))
    before = len(logged(aws_stack, APP))
    assert mcp_call(mcp, tokens["access_token"]).status == 200
    assert mcp_call(mcp, tokens["access_token"]).status == 200
    steps = logged(aws_stack, APP)[before:]
    assert outline(steps) == [("mcp_call", "ok", "200")]
    assert steps[0]["description"] == "first call with this access token: tools/list, answered HTTP 200"
    assert tokens["access_token"] not in json.dumps(raw_items(aws_stack))


def test_mcp_refusals_of_our_tokens_are_logged_with_their_reason(authorize, token, mcp, aws_stack):
    tokens = body(exchange(token, obtain_code(authorize, client_id=APP), APP))
    before = len(logged(aws_stack, APP))
    wallet = mcp_call(mcp, tokens["access_token"], "tools/call", {"name": "getTotalBalance", "arguments": {}})
    assert wallet.status == 403  # the grant has no wallet scope
    signer = token.module.deployment.signer
    claims = access_token_claims(
        issuer=BASE_URL,
        subject="someone",
        client_id=APP,
        audience=f"{BASE_URL}/mcp",
        scope="mcp:tools:list",
        ttl=600,
        now=int(time.time()) - 3600,
    )
    expired = mcp_call(mcp, issue_access_token(signer, claims))
    assert expired.status == 401
    steps = logged(aws_stack, APP)[before:]
    assert outline(steps) == [("mcp_call", "insufficient_scope", "403"), ("mcp_call", "invalid_token", "401")]
    assert "wallet:accounts:read" in steps[0]["description"]
    assert steps[1]["description"] == "token expired"


def test_an_mcp_call_naming_no_client_of_ours_is_not_logged(mcp, aws_stack):
    assert mcp_call(mcp, "not-a-token").status == 401
    anonymous = mcp.request(
        "POST",
        "/mcp",
        headers={"content-type": "application/json", "accept": "application/json, text/event-stream"},
        body={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert anonymous.status == 401
    assert logged(aws_stack) == []


# --- a failure to record changes nothing ---------------------------------------------------------


@pytest.fixture
def missing_table(aws_stack):
    """The stack as deployed, but every function told of a connection log table that is not there."""
    variant = with_parameters(aws_stack)
    variant.physical_ids["ConnectionLogTable"] = "wallet-mcp-local-NoSuchConnectionLogTable"
    return variant


def test_a_missing_connection_log_table_changes_no_answer(
    load_function, app_client, missing_table, aws_stack
):
    register = load_function("RegisterFunction", missing_table)
    authorize = load_function("AuthorizeFunction", missing_table)
    token = load_function("TokenFunction", missing_table)
    mcp = load_function("McpFunction", missing_table)
    account = load_function("AccountFunction", missing_table)

    created = register.request(
        "POST", "/oauth/register", body={"redirect_uris": ["https://a.example.com/cb"]}
    )
    assert created.status == 201
    refused = register.request("POST", "/oauth/register", body={"redirect_uris": ["ftp://a.example.com"]})
    assert refused.status == 400 and response_json(refused)["error"] == "invalid_redirect_uri"
    wrong = authorize.request("GET", "/oauth/authorize", query=authorize_query(redirect_uri=REDIRECT + "x"))
    assert wrong.status == 400
    code = obtain_code(authorize, client_id=APP)  # login, consent, the redirect with a code
    assert exchange(token, code, APP, verifier="w" * 60).status == 400
    granted = exchange(token, code, APP)  # the success rides in the transaction: committed again without it
    assert granted.status == 200
    tokens = body(granted)
    assert set(tokens) >= {"access_token", "refresh_token"}
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": APP}
    assert token_request(token, refresh).status == 200
    assert mcp_call(mcp, tokens["access_token"]).status == 200

    _, cookies = sign_in(account)
    page = account.request("GET", "/admin/client", query=urlencode({"client_id": APP}), cookies=cookies)
    assert page.status == 200
    assert "The connection log cannot be read just now" in unescape(page.body.decode())
    failures = account.request("GET", "/admin/connections", cookies=cookies)
    assert failures.status == 200
    assert logged(aws_stack) == []


def test_a_throttled_connection_log_write_is_tried_once(authorize, token, mcp, aws_stack):
    tokens = body(exchange(token, obtain_code(authorize, client_id=APP), APP))
    # the first call with this token writes one step: its write fails, once, with no retry
    with aws_fault("dynamodb", "PutItem", "ThrottlingException", retried=True) as served:
        response = mcp_call(mcp, tokens["access_token"])
    assert response.status == 200
    assert served["count"] == 1


def test_a_best_effort_action_that_fails_the_transaction_is_dropped_and_the_token_issued(
    authorize, token, aws_stack
):
    """A throttled connection-log Put cancels the issuing transaction: it commits again without it."""
    code = obtain_code(authorize, client_id=APP)
    sizes: list[int] = []

    def throttle_the_last_action(model: Any, params: dict[str, Any], **_: Any) -> Any:
        sizes.append(len(json.loads(params["body"])["TransactItems"]))
        if len(sizes) > 1:
            return None
        reasons = [{"Code": "None"}] * (sizes[0] - 1) + [{"Code": "ThrottlingError"}]
        error = {
            "Error": {"Code": "TransactionCanceledException", "Message": "injected"},
            "CancellationReasons": reasons,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("https://fault.invalid/", 400, {}, None), error

    events = aws.dynamodb().meta.events
    events.register_first("before-call.dynamodb.TransactWriteItems", throttle_the_last_action)
    try:
        granted = exchange(token, code, APP)
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", throttle_the_last_action)
    assert granted.status == 200
    assert sizes[1] == sizes[0] - 1  # the same transaction, without the connection-log step
    assert logged(aws_stack, APP)[-1]["step"] != "token"


# --- the /admin pages ----------------------------------------------------------------------------


def test_steps_whose_time_is_up_are_not_shown(load_function, app_client, aws_stack):
    account = load_function("AccountFunction")
    table = aws_stack.physical_ids["ConnectionLogTable"]
    now = time.time()
    ConnectionLog(aws.dynamodb, table, retention=RETENTION, clock=lambda: now - 3 * 86400).record(
        failed(APP, "token", "invalid_grant", "OLD-STEP from three days ago", 400)
    )
    # written recently, but its own expiry has passed (a shorter retention then): TTL deletes lazily
    lapsed = ConnectionLog(aws.dynamodb, table, retention=30, clock=lambda: now - 60)
    lapsed.record(failed(APP, "token", "invalid_grant", "LAPSED-STEP whose expires_at passed", 400))
    ConnectionLog(aws.dynamodb, table, retention=RETENTION).record(
        failed(APP, "token", "invalid_grant", "FRESH-STEP <b>not markup</b>", 400)
    )
    assert len(raw_items(aws_stack)) == 3  # all still in the table

    _, cookies = sign_in(account)
    page = account.request("GET", "/admin/client", query=urlencode({"client_id": APP}), cookies=cookies)
    assert page.status == 200
    html = page.body.decode()
    assert "Connection attempts" in html
    assert "FRESH-STEP &lt;b&gt;not markup&lt;/b&gt;" in html
    assert "OLD-STEP" not in html and "LAPSED-STEP" not in html
    failures = account.request("GET", "/admin/connections", cookies=cookies)
    assert failures.status == 200
    html = failures.body.decode()
    assert "FRESH-STEP" in html and "OLD-STEP" not in html and "LAPSED-STEP" not in html
    assert 'href="/admin/client?client_id=diagnosed-app"' in html


def test_the_recent_failures_page_lists_every_clients_failures_newest_first(load_function, aws_stack):
    account = load_function("AccountFunction")
    register = load_function("RegisterFunction")
    table = aws_stack.physical_ids["ConnectionLogTable"]
    log = ConnectionLog(aws.dynamodb, table, retention=RETENTION, clock=lambda: time.time() - 86400 + 120)
    log.record(failed("yesterdays-client", "authorize", "invalid_scope", "from yesterday", 400))
    assert (
        register.request(
            "POST", "/oauth/register", body={"client_name": "<script>x</script>", "redirect_uris": []}
        ).status
        == 400
    )
    ConnectionLog(aws.dynamodb, table, retention=RETENTION).record(
        failed("todays-client", "token", "invalid_client", "client authentication failed", 401)
    )
    # a success is never listed among failures
    ConnectionLog(aws.dynamodb, table, retention=RETENTION).record(
        succeeded("todays-client", "token", "client_credentials: issued", 200)
    )

    _, cookies = sign_in(account)
    listing = account.request("GET", "/admin", cookies=cookies)
    assert 'href="/admin/connections"' in listing.body.decode()
    html = account.request("GET", "/admin/connections", cookies=cookies).body.decode()
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html
    order = [
        html.index(marker) for marker in ("client authentication failed", "redirect_uris", "from yesterday")
    ]
    assert order == sorted(order)
    assert "client_credentials: issued" not in html


def test_only_administrators_see_the_recent_failures(load_function, aws_stack):
    account = load_function("AccountFunction")
    assert header(account.request("GET", "/admin/connections"), "location") == (
        "/account?next=%2Fadmin%2Fconnections"
    )
    UserStore(aws.dynamodb(), aws_stack.physical_ids["UsersTable"]).create(
        UserRecord(
            username="carol", user_id="user-carol", password_hash=hash_password("carol-pw"), created_at=0
        )
    )
    _, cookies = sign_in(account, "carol", "carol-pw")
    assert account.request("GET", "/admin/connections", cookies=cookies).status == 403


def test_the_expiry_attribute_is_the_tables_ttl(aws_stack):
    described = aws.dynamodb().describe_time_to_live(TableName=aws_stack.physical_ids["ConnectionLogTable"])
    assert described["TimeToLiveDescription"]["AttributeName"] == "expires_at"
