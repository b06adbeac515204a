"""`wallet-mcp login` and `logout` against the local stack, the browser played by
tests/cli/headless_browser.py through `$BROWSER` at the real sign-in and consent pages."""

from __future__ import annotations

import json
import stat

import anyio.to_thread
import httpx
import pytest

from devstack.seed import DEMO_USER_ID
from tests.cli.conftest import BALANCE_TEXT, JWT, OPAQUE_SECRETS

pytestmark = [pytest.mark.flow, pytest.mark.anyio]


def refresh(stack, saved) -> httpx.Response:
    """A refresh-token grant with a saved login's refresh token."""
    return httpx.post(
        f"{stack.base_url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": saved["refresh_token"],
            "client_id": saved["client_id"],
        },
    )


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_login_saves_private_tokens_the_bridge_uses_and_logout_revokes_them(stack, cli, tmp_path):
    signed_in = await cli.arun("login", "--server", stack.base_url, "--timeout", "60")
    assert signed_in.returncode == 0, signed_in.stderr

    (visit,) = [json.loads(line) for line in cli.browser_visits()]
    assert visit == {"pages": ["login", "consent"], "notices": [], "callback_status": 200}
    (token_file,) = cli.config_dir.glob("login-*.json")
    assert mode(token_file) == 0o600
    assert mode(cli.config_dir) == 0o700
    assert mode(cli.config_dir / "clients.json") == 0o600
    saved = json.loads(token_file.read_text())
    assert saved["issuer"] == stack.base_url
    assert saved["resource"] == f"{stack.base_url}/api"
    assert saved["refresh_token"].startswith("rt_")
    assert "wallet:transactions:write" in saved["scope"].split()

    # no configuration at all: the only saved login is the token source
    stderr = tmp_path / "bridge.log"
    async with cli.bridge({}, stderr) as client:
        balance = await client.call_tool("getTotalBalance", {})
        ping = await client.call_tool("ping", {})
    assert BALANCE_TEXT.match(balance.content[0].text)
    assert ping.structured_content["subject"] == DEMO_USER_ID
    assert f"token from the saved login for {stack.base_url}" in stderr.read_text()

    signed_out = await cli.arun("logout")
    assert signed_out.returncode == 0, signed_out.stderr
    assert not token_file.exists()
    reused = await anyio.to_thread.run_sync(refresh, stack, saved)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    after = await cli.arun("serve-stdio", stdin="")
    assert after.returncode == 2 and "wallet-mcp login" in after.stderr

    logs = signed_in.stderr + stderr.read_text() + signed_out.stderr
    for secret in (saved["access_token"], saved["refresh_token"]):
        assert secret not in logs
    assert not JWT.search(logs) and not OPAQUE_SECRETS.search(logs)


async def test_a_second_login_reuses_the_registered_client_but_asks_for_consent_again(stack, cli):
    """The command is a public native client on a loopback redirect URI: anyone can present its
    client_id, so remembered consent is never replayed silently (RFC 8252 §8.6, RFC 9700 §2.6).
    The consent page comes again, saying it was allowed before, and must be approved again."""
    first = await cli.arun("login", "--server", stack.base_url, "--timeout", "60")
    assert first.returncode == 0, first.stderr
    registered = json.loads((cli.config_dir / "clients.json").read_text())
    second = await cli.arun("login", "--server", stack.base_url, "--timeout", "60")
    assert second.returncode == 0, second.stderr

    assert json.loads((cli.config_dir / "clients.json").read_text()) == registered
    first_visit, second_visit = [json.loads(line) for line in cli.browser_visits()]
    assert first_visit["pages"] == second_visit["pages"] == ["login", "consent"]
    assert first_visit["notices"] == []
    (notice,) = second_visit["notices"]
    assert notice.startswith("You allowed this before.")
    assert second_visit["callback_status"] == 200
    assert "registered this command as client" in first.stderr
    assert "registered" not in second.stderr
    assert (await cli.arun("logout", "--server", stack.base_url)).returncode == 0


async def test_a_sign_in_refused_at_the_consent_page_saves_nothing(stack, cli):
    refused = await cli.arun(
        "login", "--server", stack.base_url, "--timeout", "60", env={"WALLET_TEST_DECISION": "deny"}
    )

    assert refused.returncode == 1
    assert "sign-in was not completed" in refused.stderr
    assert not list(cli.config_dir.glob("login-*.json"))


async def test_login_gives_up_after_its_timeout_with_a_clear_message(stack, cli):
    nobody = await cli.arun("login", "--server", stack.base_url, "--timeout", "2", env={"BROWSER": "true %s"})

    assert nobody.returncode == 1
    assert "no answer from the browser within 2 s" in nobody.stderr
    assert not list(cli.config_dir.glob("login-*.json"))
