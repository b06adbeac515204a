"""The local gateway takes the caller's address from its socket, as API Gateway does
(`requestContext.http.sourceIp`): a client-sent X-Forwarded-For cannot dodge per-address limits."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.forms import parse
from tests.support.local_stack import LocalStack

pytestmark = pytest.mark.flow


def failed_sign_in(stack: LocalStack, username: str, forwarded_for: str) -> httpx.Response:
    """A wrong password on /account, claiming to come from `forwarded_for`."""
    with httpx.Client(base_url=stack.base_url, headers={"x-forwarded-for": forwarded_for}) as browser:
        page = browser.get("/account")
        assert page.status_code == 200
        (form,), _ = parse(page.text)
        return browser.post(
            "/account",
            data=form.submission({"username": username, "password": "wrong"}),
            headers={"origin": stack.base_url},
        )


def test_x_forwarded_for_does_not_change_the_address_sign_in_failures_count_against(
    stack: LocalStack,
) -> None:
    # a username no one has: the shared stack's demo user is never locked out (unknown usernames
    # are counted all the same, so the answer does not tell whether one exists)
    username = f"nobody-{secrets.token_hex(6)}"
    for n in range(5):
        refused = failed_sign_in(stack, username, f"198.51.100.{n + 1}")
        assert refused.status_code == 200
        assert "Invalid username or password" in refused.text
    locked = failed_sign_in(stack, username, "198.51.100.99")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert 25 <= int(locked.headers["retry-after"]) <= 30
