"""`wallet-mcp serve-stdio` as Claude Desktop runs it: a subprocess spoken to over stdio by the
official SDK client, backed by the Backend API of the local stack."""

from __future__ import annotations

import re
import socket
import time
import uuid
from decimal import Decimal

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp_types import PromptReference

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.cli.conftest import (
    BALANCE_TEXT,
    JWT,
    OPAQUE_SECRETS,
    aws_env,
    children_running,
    client_credentials_env,
)
from tests.flows.test_foundation import MemoryStorage
from tests.support.local_stack import free_port

pytestmark = [pytest.mark.flow, pytest.mark.anyio]

CONTRACT_TOOLS = (
    "ping",
    "getTotalBalance",
    "getUserAccounts",
    "getRecentTransactions",
    "createAccount",
    "createTransaction",
    "getSpendingAnalytics",
)
SEED_SCOPE = "mcp:tools:list mcp:tools:call wallet:accounts:read wallet:transactions:read"


async def remote(stack, work):
    """Run `work(client)` against the remote MCP server with the demo client's credentials."""
    provider = ClientCredentialsOAuthProvider(
        server_url=stack.mcp_url,
        storage=MemoryStorage(),
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        issuer=stack.base_url,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http)) as client,
    ):
        return await work(client)


def usd(balance_result) -> Decimal:
    (total,) = [t for t in balance_result.structured_content["totals"] if t["currency"] == "USD"]
    return Decimal(total["amount"])


async def test_the_bridge_offers_the_seven_contract_tools_with_the_remote_servers_schemas(
    stack, cli, tmp_path
):
    async def listing(client):
        return {t.name: t for t in (await client.list_tools()).tools}

    remote_tools = await remote(stack, listing)
    async with cli.bridge(client_credentials_env(stack), tmp_path / "stderr.log") as client:
        bridged = await listing(client)

    assert tuple(bridged) == CONTRACT_TOOLS
    for name in CONTRACT_TOOLS:
        assert bridged[name].input_schema == remote_tools[name].input_schema, name
        assert bridged[name].output_schema == remote_tools[name].output_schema, name
        assert bridged[name].description == remote_tools[name].description, name
        assert bridged[name].meta is None  # no resources over stdio, so no MCP Apps view to name


async def test_get_total_balance_answers_the_contract_text_like_the_remote_server(stack, cli, tmp_path):
    async with cli.bridge(client_credentials_env(stack), tmp_path / "stderr.log") as client:
        bridged = await client.call_tool("getTotalBalance", {})
    remote_text = await remote(stack, lambda c: c.call_tool("getTotalBalance", {}))

    assert not bridged.is_error
    assert BALANCE_TEXT.match(bridged.content[0].text), bridged.content[0].text
    assert bridged.content[0].text == remote_text.content[0].text
    assert bridged.structured_content["scope"] == "wallet:accounts:read"


async def test_the_bridge_offers_the_remote_servers_prompts_rendered_alike(stack, cli, tmp_path):
    cash = PromptReference(type="ref/prompt", name="account_activity")

    async def prompts(client):
        listed = (await client.list_prompts()).prompts
        names = (await client.complete(cash, {"name": "account", "value": "cash"})).completion.values
        activity = await client.get_prompt("account_activity", {"account": "Cash Wallet"})
        budget = await client.get_prompt("budget_check", {"limit": "250", "category": "dining"})
        return listed, names, activity.messages[0].content.text, budget.messages[0].content.text

    remote_prompts = await remote(stack, prompts)
    async with cli.bridge(client_credentials_env(stack), tmp_path / "stderr.log") as client:
        bridged = await prompts(client)

    assert [p.model_dump() for p in bridged[0]] == [p.model_dump() for p in remote_prompts[0]]
    assert bridged[1] == remote_prompts[1] == ["Cash Wallet"]
    assert bridged[2] == remote_prompts[2]
    assert 'my account "Cash Wallet" (cash, USD)' in bridged[2]
    assert bridged[3] == remote_prompts[3]


async def test_a_transaction_recorded_through_the_bridge_shows_in_the_balance(stack, cli, tmp_path):
    arguments = {
        "amount": "-12.34",
        "category": "dining",
        "description": "Lunch through the stdio bridge",
        "idempotencyKey": f"bridge-{uuid.uuid4().hex}",
    }
    async with cli.bridge(client_credentials_env(stack), tmp_path / "stderr.log") as client:
        before = usd(await client.call_tool("getTotalBalance", {}))
        accounts = (await client.call_tool("getUserAccounts", {})).structured_content["accounts"]
        arguments["accountId"] = next(a["id"] for a in accounts if a["type"] == "checking")
        recorded = await client.call_tool("createTransaction", arguments)
        retried = await client.call_tool("createTransaction", arguments)
        after = await client.call_tool("getTotalBalance", {})
        recent = await client.call_tool("getRecentTransactions", {"limit": 5})

    assert not recorded.is_error, recorded.content[0].text
    assert recorded.content[0].text.startswith("✅ Recorded -$12.34 (dining) in Everyday Checking")
    assert retried.structured_content["transaction"]["id"] == recorded.structured_content["transaction"]["id"]
    assert usd(after) == before - Decimal("12.34")
    assert BALANCE_TEXT.match(after.content[0].text)
    assert "Lunch through the stdio bridge" in recent.content[0].text


async def test_the_configuration_can_come_from_an_env_file_given_on_the_command_line(stack, cli, tmp_path):
    """The Claude Desktop setup that keeps the secret out of its config: `--env-file PATH`, no env."""
    env_file = tmp_path / "wallet.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in client_credentials_env(stack).items()))
    async with cli.bridge({}, tmp_path / "stderr.log", args=("--env-file", str(env_file))) as client:
        balance = await client.call_tool("getTotalBalance", {})

    assert not balance.is_error and BALANCE_TEXT.match(balance.content[0].text)
    assert "token from OAuth client credentials of mcp-demo-client" in (tmp_path / "stderr.log").read_text()


async def test_api_refusals_become_tool_errors_carrying_the_apis_description(stack, cli, tmp_path):
    bad_account = {
        "accountId": "no-such-account",
        "amount": "-1.00",
        "category": "dining",
        "description": "x",
    }
    async with cli.bridge(client_credentials_env(stack), tmp_path / "stderr.log") as client:
        unknown = await client.call_tool("createTransaction", bad_account)
        invalid = await client.call_tool("getRecentTransactions", {"limit": 0})
    # the seed's MCP_SCOPE is read-only: writing needs a scope the token lacks
    async with cli.bridge(
        client_credentials_env(stack, MCP_SCOPE=SEED_SCOPE), tmp_path / "seed.log"
    ) as client:
        read = await client.call_tool("getTotalBalance", {})
        write = await client.call_tool("createTransaction", bad_account)

    assert unknown.is_error and unknown.content[0].text == "no such account"
    assert invalid.is_error and invalid.content[0].text.startswith("Invalid arguments: limit")
    assert not read.is_error
    assert write.is_error
    assert write.content[0].text == "this request needs scope: wallet:transactions:write"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ["BACKEND_API_URL", "MCP_CLIENT_SECRET", "AUTHORIZATION_SERVER_URL", "wallet-mcp login"]),
        ({"MCP_CLIENT_ID": "x"}, ["MCP_CLIENT_ID is set but MCP_CLIENT_SECRET is not"]),
        ({"MCP_CLIENT_ID": "x", "MCP_CLIENT_SECRET": "y"}, ["set AUTHORIZATION_SERVER_URL too"]),
        ({"BACKEND_AUTH_TOKEN": "wpat_x"}, ["BACKEND_AUTH_TOKEN is set: set BACKEND_API_URL too"]),
    ],
)
def test_without_usable_credentials_it_exits_saying_what_to_set(cli, env, expected):
    result = cli.run("serve-stdio", env=env, stdin="", timeout=30)

    assert result.returncode == 2
    assert result.stdout == ""
    for text in expected:
        assert text in result.stderr


async def test_a_personal_access_token_is_the_fallback_and_revoking_it_is_a_prompt_tool_error(
    stack, cli, tmp_path
):
    created = await cli.arun(
        "admin",
        "create-token",
        "--username",
        "demo",
        "--scope",
        "wallet:accounts:read wallet:transactions:read",
        "--name",
        "stdio bridge",
        env=aws_env(stack),
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("wpat_") and token not in created.stderr
    token_id = re.search(r"Personal access token (\w+) ", created.stderr).group(1)

    stderr = tmp_path / "stderr.log"
    async with cli.bridge({"BACKEND_API_URL": stack.base_url, "BACKEND_AUTH_TOKEN": token}, stderr) as client:
        working = await client.call_tool("getTotalBalance", {})
        revoked = await cli.arun(
            "admin", "revoke-token", "--username", "demo", "--id", token_id, env=aws_env(stack)
        )
        assert revoked.returncode == 0, revoked.stderr
        started = time.monotonic()
        refused = await client.call_tool("getTotalBalance", {})
        elapsed = time.monotonic() - started

    assert not working.is_error and BALANCE_TEXT.match(working.content[0].text)
    assert refused.is_error and elapsed < 10
    assert "BACKEND_AUTH_TOKEN is unknown, expired or revoked" in refused.content[0].text
    assert "wallet-mcp admin create-token" in refused.content[0].text
    log = stderr.read_text()
    assert log.count("using BACKEND_AUTH_TOKEN") == 1
    assert token not in log
    listed = await cli.arun("admin", "list-tokens", "--username", "demo", env=aws_env(stack))
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(token_id)]
    assert "revoked" in row and "stdio bridge" in row


async def test_secrets_stay_out_of_the_process_listing_and_the_logs(stack, cli, tmp_path):
    stderr = tmp_path / "stderr.log"
    env = client_credentials_env(stack, WALLET_MCP_LOG_LEVEL="DEBUG")
    async with cli.bridge(env, stderr) as client:
        assert not (await client.call_tool("ping", {})).is_error
        assert not (await client.call_tool("getTotalBalance", {})).is_error
        (pid,) = children_running("serve-stdio")
        cmdline = await anyio.Path(f"/proc/{pid}/cmdline").read_bytes()

    assert b"serve-stdio" in cmdline
    assert DEMO_CLIENT_SECRET.encode() not in cmdline
    log = stderr.read_text()
    assert "access token obtained (client_credentials" in log  # debug logging was on
    assert DEMO_CLIENT_SECRET not in log
    assert not JWT.search(log)
    assert not OPAQUE_SECRETS.search(log)


async def test_an_unreachable_api_is_a_tool_error_not_a_hang(cli, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        stalled = f"http://127.0.0.1:{silent.getsockname()[1]}"
        results = {}
        for name, url in (("closed", closed), ("stalled", stalled)):
            env = {
                "BACKEND_API_URL": url,
                "BACKEND_AUTH_TOKEN": "wpat_" + "x" * 43,
                "WALLET_MCP_HTTP_TIMEOUT": "3",
            }
            async with cli.bridge(env, tmp_path / f"{name}.log") as client:
                started = time.monotonic()
                with anyio.fail_after(40):
                    result = await client.call_tool("getTotalBalance", {})
                results[name] = (result, time.monotonic() - started)

    for name, (result, elapsed) in results.items():
        assert result.is_error, name
        assert result.content[0].text.startswith("cannot reach the wallet API at http://127.0.0.1:")
        assert elapsed < 12, (name, elapsed)  # the 3 s bound, with the bridge's start-up
    assert results["stalled"][0].content[0].text.endswith("timed out")


def test_the_bridges_wallet_drafts_and_records_through_the_backend_api(stack):
    """`HttpWallet` answers the draft-then-record pair the MCP server's confirmation path uses:
    the service's validation against the API's account, the record posted to the API; and it
    refuses to record a confirmed operation it could not spend (never drops the condition)."""
    from wallet_mcp.cli.backend import BackendApi, HttpWallet
    from wallet_mcp.cli.token_sources import StaticTokenSource
    from wallet_mcp.wallet.service import ConfirmationRefused, InvalidInput

    with httpx2.Client(timeout=30) as http:
        issued = http.post(
            f"{stack.base_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "resource": f"{stack.base_url}/api",
                "scope": "wallet:accounts:read wallet:transactions:read wallet:transactions:write",
            },
        )
        assert issued.status_code == 200, issued.text
        wallet = HttpWallet(
            BackendApi(stack.base_url, StaticTokenSource(issued.json()["access_token"]), http)
        )
        account = wallet.accounts("ignored")[0]
        with pytest.raises(InvalidInput, match="category"):
            wallet.draft_transaction(
                "ignored", account_id=account.account_id, amount="1", category="nonsense", description="x"
            )
        draft = wallet.draft_transaction(
            "ignored", account_id=account.account_id, amount="12.34", category="income", description="Refund"
        )
        assert draft.tx.amount == 1234 and draft.account.account_id == account.account_id
        with pytest.raises(ConfirmationRefused):
            wallet.record("ignored", draft, authorised_by=[{"ConditionCheck": {}}])
        tx, after = wallet.record("ignored", draft, idempotency_key=f"bridge-{uuid.uuid4()}")
    assert tx.amount == 1234 and tx.description == "Refund"
    assert after.balance == account.balance + 1234
