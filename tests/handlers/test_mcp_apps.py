"""MCP Apps (ext-apps 2026-01-26) through the MCP function's handler: the tools name their views,
the views are `ui://` resources served as `text/html;profile=mcp-app` under the resource scope, the
server advertises the extension, and a host that never negotiated it gets the same results.

What the views do with those results, in real Chromium inside a sandboxed iframe, is
tests/ui/test_app_views.py."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import header, response_json
from tests.handlers.mcp_session import Session, token, wallet_functions
from wallet_mcp.mcp_server import apps

VIEWS = {
    "getSpendingAnalytics": "ui://wallet-mcp/spending.html",
    "getUserAccounts": "ui://wallet-mcp/balances.html",
    "getTotalBalance": "ui://wallet-mcp/balances.html",
    "getRecentTransactions": "ui://wallet-mcp/transactions.html",
}
UI = {"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html;profile=mcp-app"]}}


@pytest.fixture
def fns(load_function, aws_stack, demo_wallet):
    return wallet_functions(load_function, aws_stack)


@pytest.fixture
def demo(fns):
    token_fn, mcp_fn = fns
    return Session(mcp_fn, token(token_fn))


def initialize(session: Session, capabilities: dict) -> dict:
    return session.result(
        "initialize",
        {
            "protocolVersion": "2025-11-25",
            "capabilities": capabilities,
            "clientInfo": {"name": "a host", "version": "1"},
        },
    )


def modern(session: Session, method: str, capabilities: dict, params: dict | None = None) -> dict:
    """A request on the 2026-07-28 wire (what a client says about itself rides in `_meta`)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "a host", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }
    response = session.mcp.request(
        "POST",
        "/mcp",
        headers={
            "authorization": f"Bearer {session.token}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2026-07-28",
            "mcp-method": method,
            **({"mcp-name": params["name"]} if params and "name" in params else {}),
        },
        body=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**(params or {}), "_meta": meta}}
        ),
    )
    assert response.status == 200, response.body
    return dict(response_json(response)["result"])


def test_the_tools_name_their_views_and_the_server_advertises_the_extension(demo):
    tools = {t["name"]: t for t in demo.result("tools/list")["tools"]}
    for name, uri in VIEWS.items():
        assert tools[name]["_meta"]["ui"] == {"resourceUri": uri}
        assert tools[name]["_meta"]["ui/resourceUri"] == uri  # the deprecated flat key, until GA
    assert all("_meta" not in t for n, t in tools.items() if n not in VIEWS)
    # SEP-2133 extensions are capabilities of the 2026-07-28 wire (server/discover); the
    # 2025-11-25 initialize result has no field for them
    discovered = modern(demo, "server/discover", {"extensions": UI})
    assert discovered["capabilities"]["extensions"] == {"io.modelcontextprotocol/ui": {}}


def test_every_view_is_listed_and_readable_as_an_mcp_app(demo):
    listed = {r["uri"]: r for r in demo.result("resources/list")["resources"]}
    for uri in set(VIEWS.values()):
        assert listed[uri]["mimeType"] == "text/html;profile=mcp-app"
        assert listed[uri]["_meta"] == {"ui": {"prefersBorder": True}}
        (content,) = demo.result("resources/read", {"uri": uri})["contents"]
        assert content["uri"] == uri and content["mimeType"] == "text/html;profile=mcp-app"
        assert content["_meta"] == {"ui": {"prefersBorder": True}}  # no csp: the host's default
        html = content["text"]
        assert html.startswith("<!DOCTYPE html>") and "ui/initialize" in html
        assert "/*@" not in html  # the shared script and style are inline
    missing = demo.error("resources/read", {"uri": "ui://wallet-mcp/nope.html"})
    assert missing["code"] == -32002


def test_a_view_needs_the_resource_scope_and_no_wallet_scope(fns):
    token_fn, mcp_fn = fns
    resources_only = Session(mcp_fn, token(token_fn, scope="mcp:resources:read"))
    (content,) = resources_only.result("resources/read", {"uri": apps.SPENDING.uri})["contents"]
    assert content["mimeType"] == apps.APP_MIME_TYPE
    tools_only = Session(mcp_fn, token(token_fn, scope="mcp:tools:call wallet:analytics:read"))
    refused = tools_only.rpc("resources/read", {"uri": apps.SPENDING.uri})
    assert refused.status == 403
    assert 'needs scope: mcp:resources:read"' in header(refused, "www-authenticate")  # nothing of a wallet


def test_a_view_follows_the_resource_rules_for_a_client_without_a_wallet_owner(fns):
    """`mcp:resources:*` reaches a wallet (WALLET_SCOPE_PREFIXES): a client-credentials token
    without an owner reads no resource, a view included, the same 403 as for any other."""
    token_fn, mcp_fn = fns
    ownerless = Session(mcp_fn, token(token_fn, client=("ownerless-client", "other-secret")))
    refused = ownerless.rpc("resources/read", {"uri": apps.BALANCES.uri})
    assert refused.status == 403 and response_json(refused)["error"] == "access_denied"


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("getSpendingAnalytics", {"period": "last_6_months"}),
        ("getUserAccounts", {}),
        ("getTotalBalance", {}),
        ("getRecentTransactions", {"limit": 5}),
    ],
)
def test_hosts_with_and_without_the_extension_get_the_same_text_and_structure(demo, tool, arguments):
    plain = demo.call(tool, arguments)
    initialize(demo, {"extensions": UI})
    assert demo.call(tool, arguments) == plain
    call = {"name": tool, "arguments": arguments}
    without_ui = modern(demo, "tools/call", {}, call)
    with_ui = modern(demo, "tools/call", {"extensions": UI}, call)
    assert with_ui == without_ui
    assert with_ui["content"] == plain["content"]
    assert with_ui["structuredContent"] == plain["structuredContent"]
    assert plain["content"][0]["type"] == "text" and plain["content"][0]["text"]
    assert plain["structuredContent"]


def test_spending_has_a_month_by_month_breakdown_that_adds_up(demo):
    report = demo.call("getSpendingAnalytics", {"period": "last_6_months"})["structuredContent"]
    months = report["months"]
    assert months, "the demo wallet has spending in the last six months"
    assert [m["month"] for m in months] == sorted(m["month"] for m in months)
    assert all(report["first_month"] <= m["month"] <= report["last_month"] for m in months)
    for total in report["totals"]:
        by_month = sum(m["spent_minor"] for m in months if m["currency"] == total["currency"])
        by_category = sum(
            c["spent_minor"] for c in report["categories"] if c["currency"] == total["currency"]
        )
        assert by_month == by_category
    assert all(re.fullmatch(r"\d+\.\d\d", m["spent"]) for m in months)


def test_the_views_hold_no_data(demo):
    """The same HTML for every caller: nothing of the demo wallet is in it."""
    accounts = demo.call("getUserAccounts")["structuredContent"]["accounts"]
    for view in apps.VIEWS:
        html = apps.html(view)
        for account in accounts:
            assert account["id"] not in html and account["name"] not in html
    assert json.dumps(apps.resource_meta()) == '{"ui": {"prefersBorder": true}}'
