"""MCP Apps (`io.modelcontextprotocol/ui`, ext-apps specification 2026-01-26): the wallet's views.

Three `ui://` resources, HTML served as `text/html;profile=mcp-app`, that a host renders in a
sandboxed iframe beside a tool's result:

    ui://wallet-mcp/spending.html      getSpendingAnalytics: by category and over time (SVG charts)
    ui://wallet-mcp/balances.html      getUserAccounts, getTotalBalance: balances per account
    ui://wallet-mcp/transactions.html  getRecentTransactions: the list, with filters

A tool names its view in `_meta.ui.resourceUri` (and the deprecated flat `_meta["ui/resourceUri"]`
that hosts built before the stable spec still read; the spec keeps it until GA). The views hold no
data: they draw the tool result's `structuredContent` the host hands them
(`ui/notifications/tool-result`) and call tools back through the host (`tools/call`), so every
call is checked by `/mcp` like any other, with the host's token, and a view never has a token
of its own. Reading a view needs `mcp:resources:read` alone (`wallet_resources.scopes_for_uri`).

Every tool result carries the text `content` and the `structuredContent` whatever the host
negotiated: a stateless server cannot know at `tools/call` what the host said at `initialize`.

The HTML is read from the package (`views/*.html`, with the shared `views/bridge.js` and
`views/view.css` put inline) on the first `resources/read`, never at import: the MCP function's
cold start does not pay for it. The SDK's `mcp.server.apps` is for `MCPServer`, and importing it
loads that whole tier; its two constants are repeated here (tests/unit/test_apps.py keeps them
equal).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Final, NamedTuple

EXTENSION_ID: Final = "io.modelcontextprotocol/ui"
APP_MIME_TYPE: Final = "text/html;profile=mcp-app"
VIEWS_DIR: Final = Path(__file__).parent / "views"
_INLINE: Final = {"/*@bridge.js*/": "bridge.js", "/*@view.css*/": "view.css"}


class View(NamedTuple):
    """A view (a NamedTuple, not a dataclass: a fifth of the cost at import, on the cold start)."""

    uri: str
    name: str
    title: str
    description: str
    file: str


SPENDING: Final = View(
    "ui://wallet-mcp/spending.html",
    "spending-view",
    "Spending chart",
    "Spending by category and month as charts; change the month or the range",
    "spending.html",
)
BALANCES: Final = View(
    "ui://wallet-mcp/balances.html",
    "balances-view",
    "Balances",
    "The balance of each account as a chart; pick an account for its recent transactions",
    "balances.html",
)
TRANSACTIONS: Final = View(
    "ui://wallet-mcp/transactions.html",
    "transactions-view",
    "Transactions",
    "Recent transactions with filters by account and category",
    "transactions.html",
)
VIEWS: Final = (SPENDING, BALANCES, TRANSACTIONS)
_BY_URI: Final = {v.uri: v for v in VIEWS}


def tool_meta(view: View) -> dict[str, Any]:
    """A tool's `_meta` naming its view."""
    return {"ui": {"resourceUri": view.uri}, "ui/resourceUri": view.uri}


def resource_meta() -> dict[str, Any]:
    """A view's `_meta.ui`: no `csp` (nothing outside the document is loaded, so the host's
    restrictive default, `connect-src 'none'`, is what the views need), and a border asked for."""
    return {"ui": {"prefersBorder": True}}


def is_view(uri: str) -> bool:
    return uri.startswith("ui://")


def find(uri: str) -> View | None:
    return _BY_URI.get(uri)


@cache
def html(view: View) -> str:
    """The view's document, self-contained: the shared script and style put inline."""
    text = (VIEWS_DIR / view.file).read_text(encoding="utf-8")
    for marker, part in _INLINE.items():
        text = text.replace(marker, (VIEWS_DIR / part).read_text(encoding="utf-8"))
    return text
