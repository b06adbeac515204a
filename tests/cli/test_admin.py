"""`wallet-mcp admin` against the local stack's emulator: users and personal access tokens, in the
tables of the local prefix or of a CloudFormation stack; disabling and enabling users."""

from __future__ import annotations

import json
import time
import uuid

import anyio.to_thread
import httpx
import pytest

from devstack.template import load_template
from tests.cli.conftest import BALANCE_TEXT, aws_env
from tests.support.site import Browser, api_get, create_person, eventually, next_second, refused
from wallet_mcp.cli import admin
from wallet_mcp.credentials.passwords import verify_password
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.storage.personal_tokens import DEFAULT_LIFETIME_DAYS, PersonalTokenStore
from wallet_mcp.storage.revocations import CUTOFF_KIND, RevocationList, user_key
from wallet_mcp.storage.users import UserStore

pytestmark = [pytest.mark.flow, pytest.mark.anyio]

PREFIX = "wallet-mcp-local-"
DAY = 86400


def tokens_of(stack, user_id: str, table: str = f"{PREFIX}PersonalTokensTable"):
    return PersonalTokenStore(stack.client("dynamodb"), table).of_user(user_id)


def user_cutoff(stack, user_id: str, table: str = f"{PREFIX}RevokedTokensTable") -> dict:
    item = stack.client("dynamodb").get_item(
        TableName=table, Key=RevocationList.key(CUTOFF_KIND, user_key(user_id)), ConsistentRead=True
    )
    return item.get("Item", {})


def sign_in_at_the_account_page(stack, username: str, password: str) -> httpx.Response:
    """One password sign-in on /account, as a person at the page submits it."""
    browser = Browser(stack.base_url)
    try:
        page = browser.get("/account")
        (form,) = page.forms
        return browser.submit(page, form, {"username": username, "password": password}).response
    finally:
        browser.close()


def refresh(stack, saved: dict) -> httpx.Response:
    return httpx.post(
        f"{stack.base_url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": saved["refresh_token"],
            "client_id": saved["client_id"],
        },
    )


async def test_a_user_created_with_a_password_on_stdin_can_sign_in(stack, cli, tmp_path):
    username = f"Admin-{uuid.uuid4().hex[:8]}"
    password = "correct horse battery staple"
    created = await cli.arun(
        "admin", "create-user", "--username", username, "--admin", env=aws_env(stack), stdin=password + "\n"
    )
    again = await cli.arun("admin", "create-user", "--username", username, env=aws_env(stack), stdin=password)
    short = await cli.arun(
        "admin", "create-user", "--username", f"x{username}", env=aws_env(stack), stdin="short"
    )

    assert created.returncode == 0, created.stderr
    assert password not in created.stdout + created.stderr
    user = UserStore(stack.client("dynamodb"), "wallet-mcp-local-UsersTable").get(username)
    assert user is not None and user.username == username.lower() and user.roles == ("admin",)
    assert user.password_hash.startswith("scrypt$") and verify_password(password, user.password_hash)
    assert again.returncode == 1 and "exists already" in again.stderr
    assert short.returncode == 1 and "8 to 1024 characters" in short.stderr

    browser = {"WALLET_TEST_USERNAME": username.lower(), "WALLET_TEST_PASSWORD": password}
    signed_in = await cli.arun("login", "--server", stack.base_url, "--timeout", "60", env=browser)
    assert signed_in.returncode == 0, signed_in.stderr
    async with cli.bridge({}, tmp_path / "bridge.log") as client:
        balance = await client.call_tool("getTotalBalance", {})
    assert BALANCE_TEXT.match(balance.content[0].text)
    assert balance.content[0].text.startswith("💰 Total Balance: $0.00\nAccounts: 0\n")


def test_token_commands_refuse_unknown_users_and_scopes(stack, cli):
    env = aws_env(stack)
    nobody = cli.run(
        "admin",
        "create-token",
        "--username",
        "nobody",
        "--scope",
        "wallet:accounts:read",
        "--name",
        "n",
        env=env,
    )
    bad_scope = cli.run(
        "admin", "create-token", "--username", "demo", "--scope", "wallet:everything", "--name", "n", env=env
    )
    bad_id = cli.run("admin", "revoke-token", "--username", "demo", "--id", "0000", env=env)

    assert nobody.returncode == 1 and "no user 'nobody'" in nobody.stderr
    assert bad_scope.returncode == 2 and "unknown scope: wallet:everything" in bad_scope.stderr
    assert bad_id.returncode == 1 and "no personal access token '0000'" in bad_id.stderr
    assert nobody.stdout == bad_scope.stdout == ""


def test_the_access_token_lifetime_assumed_is_the_longest_the_template_allows():
    parameter = load_template()["Parameters"][admin.ACCESS_TOKEN_TTL_PARAMETER]
    assert int(parameter["MaxValue"]) == admin.MAX_ACCESS_TOKEN_TTL


def create_table_stack(stack, logical_ids, *, access_token_ttl: str | None = None) -> tuple[str, dict]:
    """A stack of the template's own definitions of these tables (with the template's parameters,
    the access-token lifetime set when given), through the emulator's CloudFormation; its name and
    physical names."""
    template = load_template()
    name = f"wallet-cli-{uuid.uuid4().hex[:8]}"
    body: dict = {
        "AWSTemplateFormatVersion": "2010-09-09",
        # the tables' conditions (deletion protection) and the parameters they read, all defaulted
        "Parameters": template["Parameters"],
        "Conditions": template["Conditions"],
        "Resources": {logical: template["Resources"][logical] for logical in logical_ids},
    }
    parameters = []
    if access_token_ttl is not None:
        parameters = [{"ParameterKey": admin.ACCESS_TOKEN_TTL_PARAMETER, "ParameterValue": access_token_ttl}]
    cloudformation = stack.client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(body), Parameters=parameters)
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    }
    return name, physical


def test_tables_are_found_through_the_cloudformation_stack_name(stack, cli):
    """A stack of the template's own table definitions: the command finds their physical names with
    describe_stack_resources, and the access-token lifetime among the stack's parameters."""
    name, physical = create_table_stack(stack, admin.TABLES, access_token_ttl="120")

    created = cli.run(
        "admin",
        "--stack-name",
        name,
        "create-user",
        "--username",
        "first-admin",
        "--admin",
        env=aws_env(stack),
        stdin="a very long passphrase\n",
    )
    token = cli.run(
        "admin",
        "--stack-name",
        name,
        "create-token",
        "--username",
        "first-admin",
        "--scope",
        "wallet:accounts:read",
        "--name",
        "ci",
        "--expires-in-days",
        "7",
        env=aws_env(stack),
    )
    listed = cli.run(
        "admin", "--stack-name", name, "list-tokens", "--username", "first-admin", env=aws_env(stack)
    )
    disabled = cli.run(
        "admin",
        "--stack-name",
        name,
        "disable-user",
        "--username",
        "first-admin",
        "--reason",
        "rotation",
        env=aws_env(stack),
    )
    enabled = cli.run(
        "admin", "--stack-name", name, "enable-user", "--username", "first-admin", env=aws_env(stack)
    )
    missing = cli.run(
        "admin", "--stack-name", "no-such-stack", "list-tokens", "--username", "x", env=aws_env(stack)
    )

    assert created.returncode == 0, created.stderr
    users = UserStore(stack.client("dynamodb"), physical["UsersTable"])
    user = users.get("first-admin")
    assert user.roles == ("admin",)
    assert token.returncode == 0 and token.stdout.startswith("wpat_")
    assert listed.returncode == 0 and "active" in listed.stdout and " ci " in listed.stdout
    assert disabled.returncode == 0, disabled.stderr
    assert "1 personal access token;" in disabled.stderr
    assert enabled.returncode == 0, enabled.stderr
    assert not users.get("first-admin").disabled
    (pat,) = tokens_of(stack, user.user_id, physical["PersonalTokensTable"])
    assert pat.revoked
    # the user's cut-off outlives the stack's own access-token lifetime, not the default one
    cutoff = user_cutoff(stack, user.user_id, physical["RevokedTokensTable"])
    assert "disabled" not in cutoff
    assert abs(int(cutoff["expires_at"]["N"]) - (int(time.time()) + 120)) <= 30
    events = AuditLog(stack.client("dynamodb"), physical["AuditTable"]).of(user.user_id)
    assert [e["event"] for e in events] == ["user_enabled", "user_disabled"]
    assert missing.returncode == 1 and "cannot read the resources of stack no-such-stack" in missing.stderr


def test_a_stack_without_every_table_the_commands_use_is_refused(stack, cli):
    name, _ = create_table_stack(stack, ("UsersTable", "PersonalTokensTable"))

    listed = cli.run("admin", "--stack-name", name, "list-tokens", "--username", "x", env=aws_env(stack))

    assert listed.returncode == 1
    assert f"stack {name} has no SessionsTable, ConsentsTable, RefreshTokensTable" in listed.stderr


# --- disabling and enabling a user -------------------------------------------------------------------


async def test_disable_user_ends_sign_in_tokens_and_grants_and_enable_user_brings_back_only_sign_in(
    stack, cli, tmp_path
):
    username = f"leaver-{uuid.uuid4().hex[:8]}"
    password = "a long enough passphrase"
    env = aws_env(stack)
    created = await cli.arun("admin", "create-user", "--username", username, env=env, stdin=password)
    assert created.returncode == 0, created.stderr
    user = UserStore(stack.client("dynamodb"), f"{PREFIX}UsersTable").get(username)
    token = await cli.arun(
        "admin", "create-token", "--username", username, "--scope", "wallet:accounts:read", "--name", "s",
        env=env,
    )  # fmt: skip
    assert token.returncode == 0, token.stderr
    pat = token.stdout.strip()
    assert (await anyio.to_thread.run_sync(api_get, stack, pat)).status_code == 200
    browser = {"WALLET_TEST_USERNAME": username, "WALLET_TEST_PASSWORD": password}
    first = await cli.arun("login", "--server", stack.base_url, "--timeout", "60", env=browser)
    assert first.returncode == 0, first.stderr
    (login_file,) = cli.config_dir.glob("login-*.json")
    saved = json.loads(login_file.read_text())

    reason = "left the company   (ticket 42)"
    disabled = await cli.arun("admin", "disable-user", "--username", username, "--reason", reason, env=env)
    again = await cli.arun("admin", "disable-user", "--username", username, "--reason", "x", env=env)
    nobody = await cli.arun("admin", "disable-user", "--username", "nobody", "--reason", "x", env=env)
    no_reason = await cli.arun("admin", "disable-user", "--username", username, "--reason", "  ", env=env)
    new_token = await cli.arun(
        "admin", "create-token", "--username", username, "--scope", "wallet:accounts:read", "--name", "t",
        env=env,
    )  # fmt: skip

    assert disabled.returncode == 0, disabled.stderr
    assert f"Disabled user {username} (id {user.user_id})" in disabled.stderr
    ended = "Ended 1 session, 1 refresh token, 1 consent and 1 personal access token;"
    assert ended in disabled.stderr, disabled.stderr
    assert disabled.stdout == ""
    assert again.returncode == 1 and f"user {username!r} is disabled already" in again.stderr
    assert nobody.returncode == 1 and "no user 'nobody'" in nobody.stderr
    assert no_reason.returncode == 2 and "--reason must be" in no_reason.stderr
    assert new_token.returncode == 1 and "is disabled" in new_token.stderr
    # the personal access token stops at once (the wallet API looks it up on every request)
    assert refused(await anyio.to_thread.run_sync(api_get, stack, pat))
    refreshed = await anyio.to_thread.run_sync(refresh, stack, saved)
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    signing_in = await anyio.to_thread.run_sync(sign_in_at_the_account_page, stack, username, password)
    assert signing_in.status_code == 403 and "disabled" in signing_in.text
    history = AuditLog(stack.client("dynamodb"), f"{PREFIX}AuditTable").of(user.user_id)
    event = next(e for e in history if e["event"] == "user_disabled")
    assert event["source"] == "cli"
    assert event["details"] == {
        "by": "operator",
        "reason": "left the company (ticket 42)",
        "sessions": 1,
        "refresh_tokens": 1,
        "consents": 1,
        "personal_tokens": 1,
    }
    assert user_cutoff(stack, user.user_id)["disabled"] == {"BOOL": True}

    enabled = await cli.arun("admin", "enable-user", "--username", username, env=env)
    enabled_again = await cli.arun("admin", "enable-user", "--username", username, env=env)

    assert enabled.returncode == 0, enabled.stderr
    assert f"Enabled user {username}" in enabled.stderr
    assert enabled_again.returncode == 1 and f"user {username!r} is not disabled" in enabled_again.stderr
    history = AuditLog(stack.client("dynamodb"), f"{PREFIX}AuditTable").of(user.user_id)
    event = next(e for e in history if e["event"] == "user_enabled")
    assert (event["source"], event["details"]) == ("cli", {"by": "operator"})
    # the cut-off stays one (longest possible) access-token lifetime, for tokens issued before it
    cutoff = user_cutoff(stack, user.user_id)
    assert "disabled" not in cutoff
    assert abs(int(cutoff["expires_at"]["N"]) - (int(time.time()) + admin.MAX_ACCESS_TOKEN_TTL)) <= 30

    # they sign in again — and are asked for consent again, the old one is gone — but their old
    # personal access token stays revoked
    await anyio.to_thread.run_sync(next_second)
    second = await cli.arun("login", "--server", stack.base_url, "--timeout", "60", env=browser)
    assert second.returncode == 0, second.stderr
    pages = [json.loads(line)["pages"] for line in cli.browser_visits()]
    assert pages == [["login", "consent"], ["login", "consent"]]
    assert refused(await anyio.to_thread.run_sync(api_get, stack, pat))
    (record,) = tokens_of(stack, user.user_id)
    assert record.revoked
    fresh = json.loads(login_file.read_text())["access_token"]
    assert await anyio.to_thread.run_sync(
        lambda: eventually(lambda: api_get(stack, fresh).status_code == 200, timeout=15)
    )
    async with cli.bridge({}, tmp_path / "bridge.log") as client:
        balance = await client.call_tool("getTotalBalance", {})
    assert BALANCE_TEXT.match(balance.content[0].text)


# --- personal access tokens expire -------------------------------------------------------------------


def test_a_personal_access_token_expires_in_90_days_unless_told_otherwise(stack, cli):
    person = create_person(stack)
    env = aws_env(stack)

    def create(*extra: str):
        return cli.run(
            "admin", "create-token", "--username", person.username, "--scope", "wallet:accounts:read",
            "--name", "n", *extra, env=env,
        )  # fmt: skip

    before = int(time.time())
    default = create()
    after = int(time.time())
    never = create("--never-expires")
    week = create("--expires-in-days", "7")
    both = create("--never-expires", "--expires-in-days", "7")
    zero = create("--expires-in-days", "0")

    assert default.returncode == 0, default.stderr
    assert never.returncode == 0, never.stderr
    assert week.returncode == 0, week.stderr
    store = PersonalTokenStore(stack.client("dynamodb"), f"{PREFIX}PersonalTokensTable")
    first, second, third = (store.find(run.stdout.strip(), now=after) for run in (default, never, week))
    assert DEFAULT_LIFETIME_DAYS == 90
    assert before + 90 * DAY <= first.expires_at <= after + 90 * DAY
    assert second.expires_at is None and "expires never" in never.stderr
    assert third.expires_at == third.created_at + 7 * DAY
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    assert zero.returncode == 2 and "--expires-in-days must be 1-3650" in zero.stderr
    assert both.stdout == zero.stdout == ""

    # the list shows when each was last used
    assert api_get(stack, default.stdout.strip()).status_code == 200
    listed = cli.run("admin", "list-tokens", "--username", person.username, env=env)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "CREATED", "EXPIRES", "LAST", "USED", "SCOPE"]
    used = next(row for row in rows if row.startswith(first.token_id))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert used.count(today) == 2, used  # created and last used today
    unused = next(row for row in rows if row.startswith(second.token_id))
    assert unused.count("never") == 2, unused  # never expires, never used
