"""The bridge across token expiries, on a second local stack whose access tokens live 4 seconds
(and whose rotated refresh tokens have no grace window: a replayed one revokes its family)."""

from __future__ import annotations

import json
import time

import anyio
import pytest

from tests.cli.conftest import BALANCE_TEXT, client_credentials_env

pytestmark = [pytest.mark.flow, pytest.mark.anyio]

DURATION = 10.0
"""Three access-token lifetimes: enough to see the bridge renew twice, on a busy machine too."""


async def call_for(client, seconds: float) -> list:
    results = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        results.append(await client.call_tool("getTotalBalance", {}))
        await anyio.sleep(0.7)
    return results


async def test_client_credentials_tokens_are_renewed_ahead_of_each_expiry(short_lived_stack, cli, tmp_path):
    stderr = tmp_path / "bridge.log"
    env = client_credentials_env(short_lived_stack, WALLET_MCP_LOG_LEVEL="DEBUG")
    async with cli.bridge(env, stderr) as client:
        results = await call_for(client, DURATION)

    assert len(results) >= 10
    assert all(not r.is_error and BALANCE_TEXT.match(r.content[0].text) for r in results)
    log = stderr.read_text()
    obtained = log.count("access token obtained (client_credentials, valid 4 s)")
    assert 3 <= obtained <= 6, log  # one per ~3.2 s, not one per call
    assert "refused the access token" not in log  # renewed before the API ever saw an expired one


async def test_a_saved_login_is_refreshed_and_each_rotated_refresh_token_is_saved(
    short_lived_stack, cli, tmp_path
):
    signed_in = await cli.arun("login", "--server", short_lived_stack.base_url, "--timeout", "60")
    assert signed_in.returncode == 0, signed_in.stderr
    (token_file,) = cli.config_dir.glob("login-*.json")
    first = json.loads(token_file.read_text())

    stderr = tmp_path / "bridge.log"
    async with cli.bridge({"WALLET_MCP_LOG_LEVEL": "DEBUG"}, stderr) as client:
        results = await call_for(client, 7.5)  # refreshes ~3.2 s and ~6.4 s after the login
        saved = json.loads(token_file.read_text())
    # a second process starts from the file: it must hold the latest pair (the old ones are dead)
    async with cli.bridge({}, tmp_path / "second.log") as client:
        later = await client.call_tool("getTotalBalance", {})

    assert all(not r.is_error for r in results), [r.content[0].text for r in results if r.is_error]
    assert stderr.read_text().count("access token obtained (refresh_token, valid 4 s)") >= 2
    assert saved["refresh_token"] != first["refresh_token"]
    assert saved["access_token"] != first["access_token"]
    assert not later.is_error, later.content[0].text


def test_call_refreshes_its_stored_token_instead_of_opening_the_browser_again(short_lived_stack, cli):
    env = {"AUTHORIZATION_SERVER_URL": short_lived_stack.base_url}
    first = cli.run("call", "ping", env=env)
    time.sleep(5)  # the stored access token has expired
    second = cli.run("call", "getTotalBalance", env=env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert BALANCE_TEXT.match(second.stdout.rstrip("\n"))
    assert len(cli.browser_visits()) == 1
