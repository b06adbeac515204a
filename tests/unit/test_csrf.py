"""The one CSRF scheme (signin/csrf.py): a token derived from the browser's cookie secret, the
form's purpose and its context, checked in constant time."""

from __future__ import annotations

import pytest

from wallet_mcp.signin import csrf

SECRET = csrf.new_secret()
TOKEN = csrf.token(SECRET, "authorize", "request-1")


def test_the_token_of_a_form_verifies_again_from_the_same_cookie() -> None:
    assert csrf.token(SECRET, "authorize", "request-1") == TOKEN
    assert csrf.verify(SECRET, TOKEN, "authorize", "request-1")
    assert len(TOKEN) == 43  # 256 bits, base64url, no padding
    assert SECRET not in TOKEN


@pytest.mark.parametrize(
    ("secret", "presented", "purpose", "context"),
    [
        (csrf.new_secret(), TOKEN, "authorize", "request-1"),  # another browser
        (SECRET, TOKEN, "authorize", "request-2"),  # another request
        (SECRET, TOKEN, "session", "request-1"),  # another kind of form
        (SECRET, TOKEN, "sign-in", ""),
        (SECRET, TOKEN[:-1], "authorize", "request-1"),
        (SECRET, TOKEN + "A", "authorize", "request-1"),
        (SECRET, "", "authorize", "request-1"),
        (SECRET, None, "authorize", "request-1"),
        (SECRET, "ü" * 43, "authorize", "request-1"),  # not ASCII: refused, never an exception
        (None, TOKEN, "authorize", "request-1"),  # no cookie
        ("", csrf.token("", "authorize", "request-1"), "authorize", "request-1"),
    ],
    ids=[
        "another-browser",
        "another-request",
        "another-purpose",
        "sign-in",
        "cut",
        "extended",
        "empty",
        "missing",
        "non-ascii",
        "no-cookie",
        "empty-cookie",
    ],
)
def test_a_token_is_refused_anywhere_else(
    secret: str | None, presented: str | None, purpose: csrf.Purpose, context: str
) -> None:
    assert not csrf.verify(secret, presented, purpose, context)


def test_purpose_and_context_are_separated() -> None:
    assert csrf.token(SECRET, "session", "") != csrf.token(SECRET, "sign-in", "")
    assert csrf.token(SECRET, "authorize", "ab") != csrf.token(SECRET, "authorize", "a")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [(SECRET, True), (None, False), ("", False), ("x", False), ("b" * 42, False), ("a;b" * 20, False)],
    ids=["issued", "none", "empty", "short", "one-short", "not-base64url"],
)
def test_a_browser_keeps_its_secret_only_if_it_can_be_one_we_issued(sent: str | None, kept: bool) -> None:
    secret = csrf.browser_secret(sent)
    assert (secret == sent) is kept
    assert len(secret) >= 43
