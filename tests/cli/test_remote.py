"""`wallet-mcp tools` and `wallet-mcp call` against the remote MCP endpoint of the local stack,
through the official SDK client: client credentials, or a person signing in through the browser."""

from __future__ import annotations

import json
import stat

import pytest

from devstack.seed import DEMO_CLIENT_SECRET
from tests.cli.conftest import BALANCE_TEXT, JWT, client_credentials_env
from tests.cli.test_serve_stdio import CONTRACT_TOOLS

pytestmark = pytest.mark.flow


def test_tools_and_call_work_with_client_credentials(stack, cli):
    env = client_credentials_env(stack)
    listed = cli.run("tools", env=env)
    balance = cli.run("call", "getTotalBalance", env=env)
    as_json = cli.run("call", "getTotalBalance", "--json", env=env)
    page = cli.run("call", "getRecentTransactions", "--arg", "limit=2", "--json", env=env)

    for result in (listed, balance, as_json, page):
        assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert names[: len(CONTRACT_TOOLS)] == list(CONTRACT_TOOLS)
    assert BALANCE_TEXT.match(balance.stdout.rstrip("\n"))
    structured = json.loads(as_json.stdout)
    assert structured["scope"] == "wallet:accounts:read"
    assert structured["totals"][0]["currency"] == "USD"
    assert len(json.loads(page.stdout)["transactions"]) == 2
    logs = "".join(r.stderr for r in (listed, balance, as_json, page))
    assert DEMO_CLIENT_SECRET not in logs and not JWT.search(logs)


def test_a_tool_error_or_an_unknown_tool_exits_non_zero_with_the_message(stack, cli):
    env = client_credentials_env(stack)
    refused = cli.run(
        "call",
        "createTransaction",
        "--arg",
        "accountId=no-such-account",
        "--arg",
        "amount=-1.5",
        "--arg",
        "category=dining",
        "--arg",
        "description=Coffee",
        env=env,
    )
    unknown = cli.run("call", "noSuchTool", env=env)

    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == "no such account"
    assert unknown.returncode == 1
    assert "Unknown tool: noSuchTool" in unknown.stderr


def test_without_client_credentials_call_signs_in_through_the_browser_once(stack, cli):
    env = {"AUTHORIZATION_SERVER_URL": stack.base_url}
    first = cli.run("call", "ping", env=env)
    second = cli.run("call", "getTotalBalance", env=env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("🏓 pong — authenticated as ")
    assert second.returncode == 0, second.stderr
    assert BALANCE_TEXT.match(second.stdout.rstrip("\n"))
    assert len(cli.browser_visits()) == 1  # the second call used the stored tokens
    (stored,) = cli.config_dir.glob("mcp-*.json")
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    tokens = json.loads(stored.read_text())["tokens"]
    for secret in (tokens["access_token"], tokens["refresh_token"]):
        assert secret not in first.stderr + second.stderr
