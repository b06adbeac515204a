"""`wallet-mcp` against a server that requires DPoP (`RequireDpop`, RFC 9449), on a local stack of
its own whose access tokens live 4 seconds (so refreshes happen within a test): with `--dpop` or
`WALLET_MCP_DPOP=1` the command binds its tokens to its key — the bridge's client credentials,
`login` and the refreshes of its saved login, `call` and `tools` through the SDK's providers —
and without it every path fails saying so."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from dataclasses import replace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.cli.conftest import BALANCE_TEXT, JWT, OPAQUE_SECRETS, client_credentials_env
from tests.cli.test_private_key import key_client, key_env, key_file
from tests.cli.test_token_refresh import call_for
from tests.support.local_stack import LocalStack, running_stack
from wallet_mcp.cli.dpop import ENABLE_HINT, KEY_FILE
from wallet_mcp.primitives.dpop import ProofSigner
from wallet_mcp.storage.clients import ClientStore

pytestmark = pytest.mark.flow


@pytest.fixture(scope="module")
def dpop_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(
        tmp_path_factory.mktemp("dpop-stack"),
        parameters={
            "RequireDpop": "true",
            "AccessTokenTtlSeconds": "4",
            "RefreshTokenReuseGraceSeconds": "0",
        },
    ) as stack:
        yield stack


def key_jkt(cli) -> str:
    path = cli.config_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return ProofSigner(key).jkt


def no_secrets(text: str) -> None:
    assert not JWT.search(text) and not OPAQUE_SECRETS.search(text)
    assert "PRIVATE KEY" not in text


# --- the stdio bridge -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_without_dpop_the_bridge_gets_no_token_and_says_how_to_get_one(dpop_stack, cli, tmp_path):
    async with cli.bridge(client_credentials_env(dpop_stack), tmp_path / "bridge.log") as client:
        result = await client.call_tool("getTotalBalance", {})
    assert result.is_error
    assert "a DPoP proof is required" in result.content[0].text
    assert ENABLE_HINT in result.content[0].text


@pytest.mark.anyio
async def test_the_bridge_binds_its_client_credentials_tokens_and_renews_them(dpop_stack, cli, tmp_path):
    stderr = tmp_path / "bridge.log"
    env = client_credentials_env(dpop_stack, WALLET_MCP_DPOP="1", WALLET_MCP_LOG_LEVEL="DEBUG")
    async with cli.bridge(env, stderr) as client:
        results = await call_for(client, 4.5)  # the renewal ~3.2 s in
        ping = await client.call_tool("ping", {})
    assert all(not r.is_error and BALANCE_TEXT.match(r.content[0].text) for r in results), [
        r.content[0].text for r in results
    ]
    log = stderr.read_text()
    assert "DPoP-bound" in log
    assert log.count("access token obtained (client_credentials, valid 4 s)") >= 2
    assert "refused the access token" not in log
    assert not ping.is_error
    key_jkt(cli)  # created 0600 in the config directory
    no_secrets(log)


# --- login, the saved login's refreshes -------------------------------------------------------------


@pytest.mark.anyio
async def test_login_without_dpop_is_refused_and_says_how(dpop_stack, cli):
    result = await cli.arun("login", "--server", dpop_stack.base_url, "--timeout", "60")
    assert result.returncode == 1
    assert "a DPoP proof is required" in result.stderr and "--dpop" in result.stderr
    assert not list(cli.config_dir.glob("login-*.json"))


@pytest.mark.anyio
async def test_a_dpop_login_is_bound_and_the_bridge_refreshes_it_with_the_same_key(dpop_stack, cli, tmp_path):
    signed_in = await cli.arun("login", "--dpop", "--server", dpop_stack.base_url, "--timeout", "60")
    assert signed_in.returncode == 0, signed_in.stderr
    (token_file,) = cli.config_dir.glob("login-*.json")
    first = json.loads(token_file.read_text())
    jkt = key_jkt(cli)
    assert first["dpop_jkt"] == jkt
    # registered so that the server refuses this client any token request without a proof
    clients = ClientStore(dpop_stack.client("dynamodb"), "wallet-mcp-local-ClientsTable")
    registered = clients.get(first["client_id"], now=int(time.time()))
    assert registered is not None and registered.dpop_bound_access_tokens
    assert jwt.decode(first["access_token"], options={"verify_signature": False})["cnf"] == {"jkt": jkt}

    # no flag: a bound login brings its key along
    stderr = tmp_path / "bridge.log"
    async with cli.bridge({"WALLET_MCP_LOG_LEVEL": "DEBUG"}, stderr) as client:
        results = await call_for(client, 4.5)  # a refresh ~3.2 s after the login (two: test_token_refresh)
    saved = json.loads(token_file.read_text())

    assert all(not r.is_error for r in results), [r.content[0].text for r in results if r.is_error]
    log = stderr.read_text()
    assert log.count("access token obtained (refresh_token, valid 4 s)") >= 1
    assert saved["refresh_token"] != first["refresh_token"]
    assert jwt.decode(saved["access_token"], options={"verify_signature": False})["cnf"] == {"jkt": jkt}
    no_secrets(signed_in.stderr + log)


@pytest.mark.anyio
async def test_a_bound_login_whose_key_is_gone_is_a_clear_error(dpop_stack, cli):
    signed_in = await cli.arun("login", "--dpop", "--server", dpop_stack.base_url, "--timeout", "60")
    assert signed_in.returncode == 0, signed_in.stderr
    (cli.config_dir / KEY_FILE).unlink()
    result = await cli.arun("serve-stdio", stdin="")
    assert result.returncode == 2
    assert "wallet-mcp login" in result.stderr and KEY_FILE in result.stderr


# --- call and tools, through the SDK's providers ----------------------------------------------------


def test_call_and_tools_with_client_credentials_and_dpop(dpop_stack, cli):
    env = client_credentials_env(dpop_stack)
    without = cli.run("call", "getTotalBalance", env=env)
    assert without.returncode == 1
    assert "invalid_dpop_proof" in without.stderr and ENABLE_HINT in without.stderr

    balance = cli.run("call", "getTotalBalance", "--dpop", env=env)
    assert balance.returncode == 0, balance.stderr
    assert BALANCE_TEXT.match(balance.stdout.rstrip("\n"))
    tools = cli.run("tools", env={**env, "WALLET_MCP_DPOP": "1"})
    assert tools.returncode == 0, tools.stderr
    assert "getTotalBalance" in tools.stdout
    no_secrets(balance.stderr + tools.stderr)


def test_call_signs_in_with_a_bound_code_and_refreshes_with_the_key(dpop_stack, cli):
    env = {"AUTHORIZATION_SERVER_URL": dpop_stack.base_url, "WALLET_MCP_DPOP": "1"}
    first = cli.run("call", "ping", env=env)
    assert first.returncode == 0, first.stderr
    (stored,) = cli.config_dir.glob("mcp-*-dpop.json")
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    tokens = json.loads(stored.read_text())["tokens"]
    assert jwt.decode(tokens["access_token"], options={"verify_signature": False})["cnf"] == {
        "jkt": key_jkt(cli)
    }
    time.sleep(5)  # the access token has expired: the SDK refreshes, with a proof of the same key
    second = cli.run("call", "getTotalBalance", env=env)
    assert second.returncode == 0, second.stderr
    assert BALANCE_TEXT.match(second.stdout.rstrip("\n"))
    # one sign-in; its code was bound to the key (`dpop_jkt`, RFC 9449 §10) and redeemed with it
    assert len(cli.browser_visits()) == 1
    no_secrets(first.stderr + second.stderr)


# --- a client with the "Require DPoP" switch; the FAPI 2.0 profile ---------------------------------


def requiring_dpop(stack: LocalStack, client_id: str) -> str:
    """The client's "Require DPoP" switch on (RFC 9449 §5.2 `dpop_bound_access_tokens`)."""
    store = ClientStore(stack.client("dynamodb"), "wallet-mcp-local-ClientsTable")
    record = store.get(client_id, now=int(time.time()))
    assert record is not None
    store.put(replace(record, dpop_bound_access_tokens=True))
    return client_id


@pytest.mark.anyio
async def test_a_client_that_requires_dpop_works_with_the_option_only(stack, cli, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    env = key_env(stack, requiring_dpop(stack, key_client(stack, key)), key_file(tmp_path, key))
    without = await cli.arun("call", "getTotalBalance", env=env)
    assert without.returncode == 1 and ENABLE_HINT in without.stderr
    balance = await cli.arun("call", "getTotalBalance", "--dpop", env=env)
    assert balance.returncode == 0, balance.stderr
    async with cli.bridge(env, tmp_path / "bridge.log", args=("--dpop",)) as client:
        result = await client.call_tool("getTotalBalance", {})
    assert not result.is_error, result.content
    assert BALANCE_TEXT.match(result.content[0].text)


@pytest.fixture(scope="module")
def fapi_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("fapi-stack"), parameters={"Fapi2Profile": "true"}) as stack:
        yield stack


@pytest.mark.anyio
async def test_under_the_fapi_profile_a_key_client_works_with_dpop(fapi_stack, cli, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    env = key_env(fapi_stack, key_client(fapi_stack, key), key_file(tmp_path, key), WALLET_MCP_DPOP="1")
    balance = await cli.arun("call", "getTotalBalance", env=env)
    assert balance.returncode == 0, balance.stderr
    assert BALANCE_TEXT.match(balance.stdout.rstrip("\n"))
    async with cli.bridge(env, tmp_path / "bridge.log") as client:
        result = await client.call_tool("getTotalBalance", {})
    assert not result.is_error, result.content
    without = await cli.arun("call", "getTotalBalance", env={**env, "WALLET_MCP_DPOP": "0"})
    assert without.returncode == 1 and ENABLE_HINT in without.stderr
