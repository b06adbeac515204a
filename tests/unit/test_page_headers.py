"""The Content-Security-Policy `form-action` list: only well-formed origins ever reach the header."""

from __future__ import annotations

import pytest

from wallet_mcp.web.pages import page_headers


def _form_action(form_targets: list[str]) -> str:
    policy = page_headers(form_targets=form_targets, secure=True)["Content-Security-Policy"]
    (directive,) = [d.strip() for d in policy.split(";") if d.strip().startswith("form-action")]
    return directive


@pytest.mark.parametrize(
    "target",
    [
        "https://app.example.com",
        "https://app.example.com:8443",
        "http://127.0.0.1:53124",
        "http://localhost",
        "http://[::1]:8080",
        "https://[2001:db8::1]",
        "https://93.184.216.34",
        "com.example.wallet:",
        "https:",
    ],
)
def test_well_formed_origins_are_allowed_as_form_targets(target: str) -> None:
    assert _form_action([target]) == f"form-action 'self' {target}"


@pytest.mark.parametrize(
    "target",
    [
        "https://acc.example;acc-injected",
        "https://acc.example; script-src *",
        "https://a.example https://b.example",
        "https://a.example,b",
        "https://exämple.com",
        "https://example.com\r\nSet-Cookie: x=1",
        "https://example.com\n",
        "https://example.com\t",
        "https://example.com/path",
        "https://example.com?q",
        "https://user@example.com",
        "https://exa%6dple.com",
        "https://-bad.example",
        "https://bad_.example",
        "https://example.com:",
        "https://example.com:80a",
        "https://[v1.x]",
        "https://[fe80::1%25eth0]",
        "https://[::1",
        "https://",
        "HTTPS://example.com",
        "'unsafe-inline'",
        "*",
        "https://*.example.com",
        "",
        " ",
        "javascript",
    ],
)
def test_anything_else_is_dropped(target: str) -> None:
    assert _form_action([target]) == "form-action 'self'"


def test_a_dropped_target_leaves_the_good_ones_and_the_header_encodable() -> None:
    headers = page_headers(
        form_targets=["https://exämple.com", "https://app.example.com", "https://a;b"], secure=False
    )
    policy = headers["Content-Security-Policy"]
    assert "form-action 'self' https://app.example.com; frame-ancestors 'none'" in policy
    for value in headers.values():
        value.encode("latin-1")
