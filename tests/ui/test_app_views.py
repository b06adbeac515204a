"""The MCP Apps views in real Chromium, each in a sandboxed iframe of a minimal host
(tests/support/apps_host.py) that talks to the local stack with the demo user's real access token:
the handshake completes, the charts and lists draw from the real tool result, an interaction calls
a tool through the host and redraws, in light and dark, with no CSP violation and no console error.

Each view is captured (the iframe alone) into tests/artifacts/; with WALLET_MCP_DOCS_SCREENSHOTS=1
the same pictures go to docs/images/apps-<view>-<theme>.png (docs/clients.md shows them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Frame, Page

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.support import ext_apps_schema
from tests.support.apps_host import AppHost, mcp_request
from tests.support.site import Browser, Person, register
from wallet_mcp.mcp_server import apps

pytestmark = pytest.mark.flow

ROOT = Path(__file__).resolve().parents[2]
READ_ALL = (
    "mcp:tools:list mcp:tools:call mcp:resources:read wallet:accounts:read wallet:transactions:read "
    "wallet:analytics:read"
)


@pytest.fixture(scope="module")
def access_token(stack) -> str:
    """The demo user's access token from a real authorization-code flow (sign-in and consent)."""
    client = register(stack, name="Apps test host")
    browser = Browser(stack.base_url)
    try:
        return str(client.tokens(browser, Person(DEMO_USERNAME, DEMO_PASSWORD, ""), READ_ALL)["access_token"])
    finally:
        browser.close()


@pytest.fixture
def host(page: Page, stack, access_token: str) -> AppHost:
    page.set_viewport_size({"width": 700, "height": 900})
    return AppHost(page, stack.mcp_url, access_token, style_keys=ext_apps_schema.style_variable_keys())


def capture(page: Page, name: str) -> None:
    artifacts = ROOT / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    frame = page.locator("#view")
    page.wait_for_timeout(150)  # the size-changed round trip settles the iframe's height
    frame.screenshot(path=str(artifacts / f"apps-{name}.png"))
    if os.environ.get("WALLET_MCP_DOCS_SCREENSHOTS") == "1":
        frame.screenshot(path=str(ROOT / "docs" / "images" / f"apps-{name}.png"))


def assert_handshake(host: AppHost, tool_arguments: dict[str, Any]) -> None:
    """ui/initialize (with the view's capabilities) -> its result -> initialized, and only then the
    tool input and result (the host sends nothing else before `initialized`)."""
    log = host.log()
    first = log[0]
    assert first["direction"] == "from-view" and first["message"]["method"] == "ui/initialize"
    params = first["message"]["params"]
    assert params["protocolVersion"] == "2026-01-26"
    assert params["appInfo"]["name"].startswith("wallet-mcp")
    assert "inline" in params["appCapabilities"]["availableDisplayModes"]
    to_view = [e["message"] for e in log if e["direction"] == "to-view"]
    assert to_view[0]["id"] == first["message"]["id"] and "hostContext" in to_view[0]["result"]
    initialized = next(
        i for i, e in enumerate(log) if e["message"].get("method") == "ui/notifications/initialized"
    )
    before = [e for e in log[:initialized] if e["direction"] == "to-view"]
    assert [m["message"].get("method") for m in before] == [None]  # the initialize response alone
    methods = [m.get("method") for m in to_view]
    assert methods[1:3] == ["ui/notifications/tool-input", "ui/notifications/tool-result"]
    assert to_view[1]["params"] == {"arguments": tool_arguments}
    assert_valid_messages(host)


def assert_valid_messages(host: AppHost) -> None:
    """Every `ui/` message both ways, and the initialize result, as the reference package's schema
    defines them (the view's side is what is tested; the host's shows the test host is right)."""
    log = host.log()
    wrong = [p for entry in log for p in ext_apps_schema.check(entry["message"])]
    initialize = next(e["message"]["id"] for e in log if e["message"].get("method") == "ui/initialize")
    (result,) = [
        e["message"]["result"]
        for e in log
        if e["direction"] == "to-view" and e["message"].get("id") == initialize and "result" in e["message"]
    ]
    wrong += ext_apps_schema.problems("McpUiInitializeResult", result)
    assert wrong == []
    sent = {e["message"].get("method") for e in log if e["direction"] == "from-view"}
    assert {"ui/initialize", "ui/notifications/initialized", "ui/notifications/size-changed"} <= sent


def assert_clean(host: AppHost, view: Frame) -> None:
    assert AppHost.violations(view) == []
    assert host.console_errors == []


CONTRAST = """() => {
  // WCAG 2.x relative luminance and contrast ratio of each piece of text against what is behind it
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const channel = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const behind = (el) => {
    for (let n = el; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const el = t.parentElement;
    const skip = "[hidden], .sr-only, title, option, script, style";
    if (!t.textContent.trim() || !el || el.closest(skip)) continue;
    const style = getComputedStyle(el);
    const fg = rgb(el instanceof SVGElement ? style.fill : style.color).slice(0, 3);
    const [a, b] = [lum(fg), lum(behind(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = (size >= 18.66 && Number(style.fontWeight) >= 600) || size >= 24;
    const needed = el.closest("button:disabled") ? 0 : large ? 3 : 4.5;  // disabled controls are exempt
    if (ratio < needed) low.push(`${t.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""

UNLABELLED = """() => [...document.querySelectorAll("button, select, input, svg[role=img]")]
  .filter((el) => {
    if (el.matches("svg")) return !el.querySelector("title")?.textContent.trim();
    if (el.matches("button")) return !el.textContent.trim() && !el.getAttribute("aria-label");
    return !(el.labels && el.labels.length) && !el.getAttribute("aria-label");
  })
  .map((el) => el.outerHTML.slice(0, 80))"""


def assert_accessible(view: Frame) -> None:
    """Every control and chart has a name, and all text meets WCAG AA contrast."""
    assert view.evaluate(UNLABELLED) == []
    assert view.evaluate(CONTRAST) == []


def assert_theme(view: Frame, theme: str) -> None:
    assert view.evaluate("document.documentElement.dataset.theme") == theme
    background = view.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(23, 24, 27)" if theme == "dark" else "rgb(255, 255, 255)")


def bars(view: Frame, selector: str, attribute: str) -> list[tuple[str, float]]:
    return [
        (str(r.get_attribute(attribute)), float(r.get_attribute("data-amount") or "nan"))
        for r in view.locator(selector).all()
    ]


def months_between(first: str, last: str) -> list[str]:
    y, m = map(int, first.split("-"))
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def wait_for_call(host: AppHost, page: Page, count: int) -> dict[str, Any]:
    page.wait_for_function(f"() => window.host.calls.length >= {count}", timeout=15_000)
    return host.calls()[count - 1]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_spending_view_charts_the_real_result_and_changes_the_period(host, page, theme):
    arguments = {"period": "last_6_months"}
    view = host.open(apps.SPENDING.uri, "getSpendingAnalytics", arguments, theme=theme)
    report = host.host_result()["structuredContent"]
    view.wait_for_selector("#category-chart rect.bar")
    assert_handshake(host, arguments)
    assert_theme(view, theme)
    assert_accessible(view)

    currency = report["totals"][0]["currency"]
    expected = [(c["category"], float(c["spent"])) for c in report["categories"] if c["currency"] == currency]
    assert expected, "the demo wallet has spending in the last six months"
    assert bars(view, "#category-chart rect.bar", "data-category") == expected
    labels = view.locator("#category-chart text").all_text_contents()
    assert [c for c, _ in expected] == labels[0::2]  # each bar: its category, then its amount
    months = months_between(report["first_month"], report["last_month"])
    spent = {m["month"]: float(m["spent"]) for m in report["months"] if m["currency"] == currency}
    assert len(months) == 6
    assert bars(view, "#month-chart rect.bar", "data-month") == [(m, spent.get(m, 0.0)) for m in months]
    assert view.locator("#total").inner_text().startswith("Total: $")
    assert view.locator("#next").is_disabled()  # the period ends this month: nothing later yet
    capture(page, f"spending-{theme}")

    # earlier: the six months before, through the host, then drawn again (by keyboard)
    view.locator("#previous").focus()
    page.keyboard.press("Enter")
    call = wait_for_call(host, page, 1)
    earlier = months_between(*call["params"]["arguments"]["period"].split(".."))
    assert call["method"] == "tools/call" and call["params"]["name"] == "getSpendingAnalytics"
    assert len(earlier) == 6 and earlier[-1] < months[0]
    view.wait_for_function(
        f"() => document.querySelector('#month-chart rect.bar').dataset.month === '{earlier[0]}'"
    )
    assert [m for m, _ in bars(view, "#month-chart rect.bar", "data-month")] == earlier

    # a range of three months ending at the same month
    view.select_option("#range", "3")
    call = wait_for_call(host, page, 2)
    assert call["params"]["arguments"]["period"] == f"{earlier[3]}..{earlier[5]}"
    view.wait_for_function("() => document.querySelectorAll('#month-chart rect.bar').length === 3")
    assert_clean(host, view)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_balances_view_charts_each_account_and_picks_one(host, page, theme):
    view = host.open(apps.BALANCES.uri, "getUserAccounts", {}, theme=theme)
    accounts = host.host_result()["structuredContent"]["accounts"]
    view.wait_for_selector("#balance-chart rect.bar")
    assert_handshake(host, {})
    assert_theme(view, theme)
    assert_accessible(view)
    assert bars(view, "#balance-chart rect.bar", "data-account") == [
        (a["id"], float(a["balance"])) for a in accounts
    ]
    buttons = view.locator("#accounts button")
    assert buttons.count() == len(accounts)
    assert view.locator("#count").inner_text() == f"in {len(accounts)} accounts"
    capture(page, f"balances-{theme}")

    chosen = accounts[0]
    buttons.first.click()
    call = wait_for_call(host, page, 1)
    assert call["params"] == {
        "name": "getRecentTransactions",
        "arguments": {"accountId": chosen["id"], "limit": 5},
    }
    view.wait_for_selector("#detail:not([hidden])")
    assert view.locator("#detail-title").inner_text() == f"Recent in {chosen['name']}"
    assert buttons.first.get_attribute("aria-pressed") == "true"
    assert view.locator("#detail-rows tr").count() >= 1
    assert_clean(host, view)


def test_the_balances_view_of_the_total_asks_the_host_for_the_accounts(host, page):
    view = host.open(apps.BALANCES.uri, "getTotalBalance", {})
    total = host.host_result()
    assert total["content"][0]["text"].startswith("💰 Total Balance: $")  # the text stays for the model
    call = wait_for_call(host, page, 1)
    assert call["params"] == {"name": "getUserAccounts", "arguments": {}}
    view.wait_for_selector("#balance-chart rect.bar")
    assert view.locator("#balance-chart rect.bar").count() == total["structuredContent"]["accounts"]
    assert_clean(host, view)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_transactions_view_lists_filters_and_loads_one_account(host, page, theme):
    arguments = {"limit": 12}
    view = host.open(apps.TRANSACTIONS.uri, "getRecentTransactions", arguments, theme=theme)
    transactions = host.host_result()["structuredContent"]["transactions"]
    view.wait_for_selector("#rows tr[data-account]")
    assert_handshake(host, arguments)
    assert_theme(view, theme)
    assert_accessible(view)
    rows = view.locator("#rows tr[data-account]")
    assert rows.count() == len(transactions) == 12
    assert [r.get_attribute("data-category") for r in rows.all()] == [t["category"] for t in transactions]
    first_cells = rows.first.locator("td").all_inner_texts()
    assert first_cells[1] == transactions[0]["description"]

    # the account names, asked for through the host, fill the filter and the column
    call = wait_for_call(host, page, 1)
    assert call["params"]["name"] == "getUserAccounts"
    view.wait_for_selector("#account:not([disabled]) option:nth-child(2)", state="attached")
    capture(page, f"transactions-{theme}")

    # a category: filtered in the view, no call
    category = transactions[0]["category"]
    view.select_option("#category", category)
    assert {r.get_attribute("data-category") for r in rows.all()} == {category}
    assert len(host.calls()) == 1
    view.select_option("#category", "")

    # older ones: the tool again with the result's cursor, appended below
    cursor = host.host_result()["structuredContent"]["next_cursor"]
    assert cursor and view.locator("#more").is_visible()
    view.locator("#more").click()
    call = wait_for_call(host, page, 2)
    assert call["params"] == {"name": "getRecentTransactions", "arguments": {"limit": 12, "cursor": cursor}}
    view.wait_for_function("() => document.querySelectorAll('#rows tr[data-account]').length > 12")

    # an account: the tool again, through the host, for that account alone
    account = transactions[0]["account_id"]
    view.select_option("#account", account)
    call = wait_for_call(host, page, 3)
    assert call["params"] == {
        "name": "getRecentTransactions",
        "arguments": {"limit": 12, "accountId": account},
    }
    view.wait_for_function(
        "(id) => { const rows = [...document.querySelectorAll('#rows tr[data-account]')];"
        " return rows.length > 0 && rows.every((r) => r.dataset.account === id); }",
        arg=account,
    )
    assert_clean(host, view)


def test_the_tools_and_views_meta_follow_the_reference_schema(stack, access_token):
    tools = mcp_request(stack.mcp_url, access_token, "tools/list", {})["result"]["tools"]
    linked = {t["name"]: t["_meta"]["ui"] for t in tools if "_meta" in t}
    assert set(linked) == {
        "getSpendingAnalytics",
        "getUserAccounts",
        "getTotalBalance",
        "getRecentTransactions",
    }
    for meta in linked.values():
        assert ext_apps_schema.problems("McpUiToolMeta", meta) == []
    listed = mcp_request(stack.mcp_url, access_token, "resources/list", {})["result"]["resources"]
    views = [r for r in listed if r["uri"].startswith("ui://")]
    assert {v["uri"] for v in views} == {m["resourceUri"] for m in linked.values()}
    for view in views:
        assert ext_apps_schema.problems("McpUiResourceMeta", view["_meta"]["ui"]) == []
        read = mcp_request(stack.mcp_url, access_token, "resources/read", {"uri": view["uri"]})
        (content,) = read["result"]["contents"]
        assert ext_apps_schema.problems("McpUiResourceMeta", content["_meta"]["ui"]) == []


def test_a_refused_call_is_shown_in_the_view_not_thrown(page, stack):
    """A host whose token lacks the tool's scope: the server answers 403 (step-up), the host
    passes the error on, and the view says so (no uncaught error, nothing drawn)."""
    client = register(stack, name="Apps test host, accounts only")
    browser = Browser(stack.base_url)
    try:
        person = Person(DEMO_USERNAME, DEMO_PASSWORD, "")
        narrow = client.tokens(browser, person, "mcp:tools:call mcp:resources:read wallet:accounts:read")
    finally:
        browser.close()
    host = AppHost(
        page, stack.mcp_url, narrow["access_token"], style_keys=ext_apps_schema.style_variable_keys()
    )
    view = host.open(apps.BALANCES.uri, "getUserAccounts", {})
    view.wait_for_selector("#balance-chart rect.bar")
    view.locator("#accounts button").first.click()
    view.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "403" in view.locator("#status").inner_text()
    assert view.locator("#detail").is_hidden()
    assert AppHost.violations(view) == []
    # the host logged the refusal itself (a 403 to its fetch is its business, not a view error)
    assert [e for e in host.console_errors if "uncaught" in e] == []
