"""The MCP Apps views as files: each self-contained, small, and without what the host's default
CSP forbids or a sandboxed iframe lacks (eval, the network, same-origin storage); read only when a
host asks for one, never when the MCP function loads."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from wallet_mcp.mcp_server import apps

MAX_VIEW_BYTES = 50 * 1024
SVG_NAMESPACE = "http://www.w3.org/2000/svg"

FORBIDDEN = {
    "eval": re.compile(r"\beval\s*\("),
    "new Function": re.compile(r"\bFunction\s*\("),
    "a string timer": re.compile(r"\bset(Timeout|Interval)\s*\(\s*[\"'`]"),
    "innerHTML": re.compile(r"\b(inner|outer)HTML\b|insertAdjacentHTML|document\.write"),
    "storage": re.compile(r"\b(localStorage|sessionStorage|indexedDB|document\.cookie)\b"),
    "the network": re.compile(r"\b(fetch|XMLHttpRequest|WebSocket|EventSource|sendBeacon|importScripts)\b"),
    "a dynamic import": re.compile(r"\bimport\s*\("),
    "an external stylesheet or script": re.compile(r"<link\b|<script\b[^>]*\bsrc=|@import|url\("),
}


@pytest.mark.parametrize("view", apps.VIEWS, ids=lambda v: v.name)
def test_each_view_is_small_and_self_contained(view):
    html = apps.html(view)
    assert len(html.encode()) <= MAX_VIEW_BYTES
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "/*@" not in html  # the shared script and style are inline
    assert html.count("<script>") == 1 and html.count("<style>") == 1
    urls = re.findall(r"https?://[^\s\"'`)]+", html)
    assert set(urls) <= {SVG_NAMESPACE}, urls


@pytest.mark.parametrize("view", apps.VIEWS, ids=lambda v: v.name)
def test_no_view_uses_what_the_default_csp_or_the_sandbox_forbids(view):
    html = apps.html(view)
    found = {what: pattern.findall(html) for what, pattern in FORBIDDEN.items() if pattern.search(html)}
    assert found == {}


def test_the_forbidden_patterns_do_find_what_they_forbid():
    for sample, what in [
        ("eval('1')", "eval"),
        ("new Function('return 1')", "new Function"),
        ('setTimeout("x()", 1)', "a string timer"),
        ("el.innerHTML = x", "innerHTML"),
        ("localStorage.setItem", "storage"),
        ("fetch('/x')", "the network"),
        ("import('./x.js')", "a dynamic import"),
        ('<script src="https://cdn.example/x.js">', "an external stylesheet or script"),
    ]:
        assert FORBIDDEN[what].search(sample), sample


def test_the_constants_are_the_sdks():
    from mcp.server import apps as sdk

    assert apps.EXTENSION_ID == sdk.EXTENSION_ID
    assert apps.APP_MIME_TYPE == sdk.APP_MIME_TYPE


def test_every_view_uri_is_a_ui_uri_and_every_file_is_packaged():
    for view in apps.VIEWS:
        assert view.uri.startswith("ui://wallet-mcp/") and apps.find(view.uri) is view
        assert (apps.VIEWS_DIR / view.file).is_file()
    assert apps.find("ui://wallet-mcp/other.html") is None


def test_loading_the_mcp_server_reads_no_view_and_not_the_sdk_apps_module():
    """The MCP function's cold start: the HTML is read at the first resources/read."""
    probe = (
        "import sys\n"
        "from wallet_mcp.mcp_server import server, wallet_tools, wallet_resources, catalog, apps\n"
        "print(apps.html.cache_info().currsize, 'mcp.server.apps' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False"]
