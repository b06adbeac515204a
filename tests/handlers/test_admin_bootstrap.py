"""The first administrator without AWS credentials: `wallet-mcp admin bootstrap-token` prints a
token and the digest to deploy; `/admin/bootstrap` turns the token into one administrator, once.
docs/operations.md § The first administrator."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from devstack.seed import DEMO_USERNAME
from devstack.template import Stack
from tests.conftest import BASE_URL, Function, set_cookies
from tests.forms import parse
from tests.handlers.oauth_helpers import FORM
from tests.handlers.test_account import attempt_sign_in, sign_in
from wallet_mcp import aws
from wallet_mcp.cli.main import main as cli
from wallet_mcp.credentials.opaque import digest as token_digest
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.storage.users import BOOTSTRAP_MARKER, UserStore

TOKEN = "bootstrap-token-for-tests-0123456789abcdefghijkl"
ORIGIN = {"origin": BASE_URL}


def deployed(aws_stack: Stack, **parameters: str) -> Stack:
    variant = Stack(aws_stack.template, parameters={**aws_stack.parameters, **parameters})
    variant.physical_ids = dict(aws_stack.physical_ids)
    return variant


@pytest.fixture
def account(load_function, aws_stack) -> Function:
    return load_function(
        "AccountFunction", deployed(aws_stack, BootstrapAdminTokenSha256=token_digest(TOKEN))
    )


def users(aws_stack) -> UserStore:
    return UserStore(aws.dynamodb(), aws_stack.physical_ids["UsersTable"])


def open_form(account: Function):
    page = account.request("GET", "/admin/bootstrap")
    assert page.status == 200
    (form,), _ = parse(page.body.decode())
    return form, set_cookies(page)


def submit(account: Function, form, cookies, **values: str):
    fields = {
        "token": TOKEN,
        "username": "root",
        "password": "a long password",
        "password_again": "a long password",
    }
    return account.request(
        "POST",
        "/admin/bootstrap",
        headers={**FORM, **ORIGIN},
        body=urlencode(form.submission({**fields, **values})),
        cookies=cookies,
    )


def test_the_cli_prints_a_token_and_the_digest_to_deploy_without_aws(capsys, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert cli(["admin", "bootstrap-token"]) == 0
    printed = capsys.readouterr().out
    token = printed.split("shown once): ", 1)[1].split()[0]
    assert f"BootstrapAdminTokenSha256={token_digest(token)}" in printed
    assert len(token) >= 43


def test_without_a_deployed_digest_there_is_no_bootstrap(load_function):
    account = load_function("AccountFunction")
    assert account.request("GET", "/admin/bootstrap").status == 404
    assert (
        account.request("POST", "/admin/bootstrap", headers={**FORM, **ORIGIN}, body="token=x").status == 404
    )


def test_the_token_creates_one_administrator_once(account, aws_stack):
    form, cookies = open_form(account)
    second_tab, second_cookies = open_form(account)
    created = submit(account, form, cookies)
    assert created.status == 303 and dict(created.headers)["location"] == "/admin"
    root = users(aws_stack).get("root")
    assert root is not None and root.roles == ("admin",)
    events = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"]).of(root.user_id)
    assert [e["event"] for e in events] == ["user_created"]
    # the administrator signs in to /admin
    _, session = sign_in(account, "root", "a long password", next_path="/admin")
    assert account.request("GET", "/admin", cookies=session).status == 200
    # once: the page is gone, and a form opened before is refused too
    assert account.request("GET", "/admin/bootstrap").status == 410
    again = submit(account, second_tab, second_cookies, username="root2")
    assert again.status == 410
    assert users(aws_stack).get("root2") is None


@pytest.mark.parametrize(
    ("values", "status", "message"),
    [
        ({"token": "guess"}, 403, "not valid"),
        ({"token": ""}, 403, "not valid"),
        ({"password_again": "another password"}, 400, "differ"),
        ({"password": "short", "password_again": "short"}, 400, "8 to 1024"),
        ({"username": "#admin-bootstrap"}, 400, "username is"),
        ({"username": DEMO_USERNAME}, 400, "taken"),
        ({"csrf_token": "forged"}, 400, "expired"),
    ],
)
def test_a_refused_submission_creates_nobody_and_leaves_the_bootstrap_usable(
    account, aws_stack, values, status, message
):
    form, cookies = open_form(account)
    response = submit(account, form, cookies, **values)
    assert response.status == status
    assert message in response.body.decode()
    assert not users(aws_stack).bootstrap_spent()
    assert users(aws_stack).get("root") is None
    form, cookies = open_form(account)
    assert submit(account, form, cookies).status == 303


def test_a_form_posted_from_another_site_is_refused(account, aws_stack):
    form, cookies = open_form(account)
    response = account.request(
        "POST",
        "/admin/bootstrap",
        headers={**FORM, "origin": "https://evil.example"},
        body=urlencode(
            form.submission(
                {"token": TOKEN, "username": "root", "password": "x" * 12, "password_again": "x" * 12}
            )
        ),
        cookies=cookies,
    )
    assert response.status == 403
    assert not users(aws_stack).bootstrap_spent()


def test_guessing_the_token_locks_the_address_out(load_function, aws_stack):
    account = load_function(
        "AccountFunction",
        deployed(
            aws_stack, BootstrapAdminTokenSha256=token_digest(TOKEN), LoginFailuresPerAddressPerHour="2"
        ),
    )
    form, cookies = open_form(account)
    assert [submit(account, form, cookies, token=f"guess-{n}").status for n in range(2)] == [403, 403]
    locked = submit(account, form, cookies)
    assert locked.status == 429
    assert int(dict(locked.headers)["retry-after"]) > 0
    assert users(aws_stack).get("root") is None


def test_the_marker_is_never_a_user(account, aws_stack):
    form, cookies = open_form(account)
    assert submit(account, form, cookies).status == 303
    response, _ = attempt_sign_in(account, BOOTSTRAP_MARKER, "a long password")
    assert response.status < 500 and "Invalid username or password" in response.body.decode()
    assert users(aws_stack).get(BOOTSTRAP_MARKER) is None
