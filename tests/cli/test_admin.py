"""`wallet-mcp admin` against the local stack's emulator: users and personal access tokens, in the
tables of the local prefix or of a CloudFormation stack."""

from __future__ import annotations

import json
import uuid

import pytest

from devstack.template import load_template
from tests.cli.conftest import BALANCE_TEXT, aws_env
from wallet_mcp.credentials.passwords import verify_password
from wallet_mcp.storage.users import UserStore

pytestmark = [pytest.mark.flow, pytest.mark.anyio]


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


def test_tables_are_found_through_the_cloudformation_stack_name(stack, cli):
    """A stack of the template's own two table definitions, created through the emulator's
    CloudFormation: the command finds its physical table names with describe_stack_resources."""
    resources = load_template()["Resources"]
    name = f"wallet-cli-{uuid.uuid4().hex[:8]}"
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {logical: resources[logical] for logical in ("UsersTable", "PersonalTokensTable")},
    }
    cloudformation = stack.client("cloudformation")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    }

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
    missing = cli.run(
        "admin", "--stack-name", "no-such-stack", "list-tokens", "--username", "x", env=aws_env(stack)
    )

    assert created.returncode == 0, created.stderr
    users = UserStore(stack.client("dynamodb"), physical["UsersTable"])
    assert users.get("first-admin").roles == ("admin",)
    assert token.returncode == 0 and token.stdout.startswith("wpat_")
    assert listed.returncode == 0 and "active" in listed.stdout and " ci " in listed.stdout
    assert missing.returncode == 1 and "cannot read the resources of stack no-such-stack" in missing.stderr
