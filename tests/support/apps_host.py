"""A minimal MCP Apps host (ext-apps 2026-01-26, the host side) in real Chromium, against the
local stack: what a chat client does to show a tool's view.

The host page (`HOST_HTML`, served at http://apps-host.test/) embeds the view in an
`<iframe sandbox="allow-scripts">` from another origin (http://apps-view.test/), whose response
carries the spec's restrictive default CSP (`connect-src 'none'`, no `'unsafe-eval'`). The page
answers `ui/initialize` with a host context (theme, display mode, locale), sends
`ui/notifications/tool-input` and then `tool-result` once the view says `initialized`, and proxies
the view's `tools/call` and `resources/read` to the server. The MCP client itself is Python
(`mcp_request`, exposed to the page): a real JSON-RPC POST to the stack's /mcp with a real access
token, as a desktop host's client would make; the page never holds the token.

The host context has no `containerDimensions`: the spec's `({height} | {maxHeight}) & ({width} |
{maxWidth})` comes out of the reference package's JSON Schema as an `allOf` of objects that each
forbid the other's keys, which no value with both a width and a height satisfies; the field is
optional, and the view then sizes itself (reported with `size-changed`).

Every message between the page and the view is logged in `window.host.log`; every CSP violation
in the view (an init script listens in every frame) in `window.__cspViolations`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from playwright.sync_api import Frame, Page, Route

HOST_ORIGIN = "http://apps-host.test"
VIEW_ORIGIN = "http://apps-view.test"
DEFAULT_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' data:; connect-src 'none'; font-src 'self'; "
    "frame-src 'none'; object-src 'none'; base-uri 'self'"
)
"""The spec's default when `_meta.ui.csp` is absent (Host Behavior, "Restrictive Default"), with the
directives its CSP construction adds (frame-src, object-src, base-uri)."""

LIGHT = {
    "--color-background-primary": "#ffffff",
    "--color-background-secondary": "#f1f3f5",
    "--color-text-primary": "#1a1c1f",
    "--color-text-secondary": "#495057",
    "--color-border-primary": "#ced4da",
    "--font-sans": "system-ui, sans-serif",
}
DARK = {
    "--color-background-primary": "#17181b",
    "--color-background-secondary": "#25262b",
    "--color-text-primary": "#f1f3f5",
    "--color-text-secondary": "#c1c2c5",
    "--color-border-primary": "#4a4d55",
    "--font-sans": "system-ui, sans-serif",
}


def host_variables(theme: str, keys: list[str]) -> dict[str, str]:
    """A value for each of the spec's style variables (`keys`), as a host with a design system of
    its own sends them: the colours the views use from LIGHT or DARK, the rest plain defaults."""
    named = DARK if theme == "dark" else LIGHT
    values = {}
    for key in keys:
        if key in named:
            values[key] = named[key]
        elif key.startswith("--color-"):
            values[key] = named["--color-text-secondary" if "text" in key else "--color-border-primary"]
        elif key == "--font-mono":
            values[key] = "ui-monospace, monospace"
        elif key.startswith("--font-weight-"):
            values[key] = "600" if key.endswith(("semibold", "bold")) else "400"
        elif key.endswith("line-height"):
            values[key] = "1.4"
        elif key.startswith("--font-"):
            values[key] = "14px"
        elif key.startswith("--border-radius-"):
            values[key] = "8px"
        elif key.startswith("--shadow-"):
            values[key] = "none"
        else:
            values[key] = "1px"
    return values


CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push({directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample});
});
"""

HOST_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>MCP Apps test host</title>
<style>
  body { margin: 0; padding: 16px; font: 14px system-ui, sans-serif; background: #e9ecef; }
  body.dark { background: #0b0c0e; }
  iframe { display: block; width: 640px; height: 300px; border: 1px solid #adb5bd; border-radius: 10px; }
</style></head>
<body>
<iframe id="view" sandbox="allow-scripts" title="App view"></iframe>
<script>
const query = new URLSearchParams(location.search);
const config = JSON.parse(query.get("config"));
if (config.theme === "dark") document.body.classList.add("dark");
const frame = document.getElementById("view");
const host = window.host = { log: [], initialized: false, calls: [], sizes: [] };

function send(message) {
  host.log.push({ direction: "to-view", message });
  frame.contentWindow.postMessage(message, "*");
}

// the host's own call of the tool, as when the model calls it: the result goes to the view
const toolResult = window.mcpRequest("tools/call", { name: config.tool, arguments: config.arguments });

window.addEventListener("message", async (event) => {
  if (event.source !== frame.contentWindow) return;
  const message = event.data;
  host.log.push({ direction: "from-view", message });
  if (!message || message.jsonrpc !== "2.0" || typeof message.method !== "string") return;
  const { id, method, params } = message;
  if (method === "ui/initialize") {
    send({ jsonrpc: "2.0", id, result: {
      protocolVersion: "2026-01-26",
      hostInfo: { name: "wallet-mcp test host", version: "1.0.0" },
      hostCapabilities: { serverTools: {}, serverResources: {}, logging: {} },
      hostContext: {
        theme: config.theme, displayMode: "inline", availableDisplayModes: ["inline"],
        locale: "en-US", timeZone: "UTC", platform: "web",
        styles: { variables: config.variables },
        toolInfo: { tool: { name: config.tool, inputSchema: { type: "object" } } },
      },
    } });
  } else if (method === "ui/notifications/initialized") {
    host.initialized = true;
    send({ jsonrpc: "2.0", method: "ui/notifications/tool-input", params: { arguments: config.arguments } });
    const answer = await toolResult;
    host.hostResult = answer.result;
    send({ jsonrpc: "2.0", method: "ui/notifications/tool-result", params: answer.result });
  } else if (method === "ui/notifications/size-changed") {
    host.sizes.push(params);
    if (params && params.height) frame.style.height = Math.min(params.height + 2, 4000) + "px";
  } else if (!method.startsWith("ui/") && id !== undefined) {
    if (!host.initialized) {
      send({ jsonrpc: "2.0", id, error: { code: -32600, message: "not initialized" } });
      return;
    }
    // the view's MCP requests go to the server through the host's own connection
    host.calls.push({ method, params });
    const answer = await window.mcpRequest(method, params);
    const reply = answer.error ? { error: answer.error } : { result: answer.result };
    send({ jsonrpc: "2.0", id, ...reply });
  } else if (id !== undefined) {
    send({ jsonrpc: "2.0", id, error: { code: -32601, message: "Method not found" } });
  }
});
frame.src = config.viewUrl;
</script>
</body></html>
"""


def mcp_request(
    mcp_url: str, access_token: str, method: str, params: dict[str, Any], *, request_id: int = 1
) -> dict[str, Any]:
    """A JSON-RPC request to /mcp as a host's MCP client sends it (stateless, 2025-11-25)."""
    response = httpx.post(
        mcp_url,
        content=json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}),
        headers={
            "authorization": f"Bearer {access_token}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-11-25",
        },
        timeout=30,
    )
    if response.status_code != 200:
        return {"error": {"code": -32000, "message": f"HTTP {response.status_code}: {response.text[:200]}"}}
    return dict(response.json())


@dataclass
class AppHost:
    """The host page and its MCP client for one Playwright page."""

    page: Page
    mcp_url: str
    access_token: str
    views: dict[str, str] = field(default_factory=dict)
    """Path under VIEW_ORIGIN -> the view's HTML, as `resources/read` gave it."""
    console_errors: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    style_keys: list[str] = field(default_factory=lambda: list(LIGHT))
    """The style variables the host sends (every one the spec names, where the test knows them)."""
    _ids: int = 0

    def __post_init__(self) -> None:
        self.page.context.add_init_script(CSP_LISTENER)
        self.page.on(
            "console", lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None
        )
        self.page.on("pageerror", lambda exc: self.console_errors.append(f"uncaught: {exc}"))
        self.page.expose_function("mcpRequest", self.mcp_request)
        self.page.context.route(f"{HOST_ORIGIN}/**", self._serve_host)
        self.page.context.route(f"{VIEW_ORIGIN}/**", self._serve_view)

    def mcp_request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One JSON-RPC request to /mcp with the host's token; the JSON-RPC response."""
        self._ids += 1
        self.requests.append({"method": method, "params": params})
        return mcp_request(self.mcp_url, self.access_token, method, params, request_id=self._ids)

    def read_view(self, uri: str) -> dict[str, Any]:
        """`resources/read` of a view, as a host fetches it before rendering."""
        answer = self.mcp_request("resources/read", {"uri": uri})
        assert "result" in answer, answer
        (content,) = answer["result"]["contents"]
        return dict(content)

    def open(self, uri: str, tool: str, arguments: dict[str, Any], *, theme: str = "light") -> Frame:
        """Render the view of `uri` for a call of `tool`; the view's frame once its document loaded."""
        content = self.read_view(uri)
        assert content["mimeType"] == "text/html;profile=mcp-app", content["mimeType"]
        path = "/" + uri.removeprefix("ui://")
        self.views[path] = content["text"]
        config = {
            "tool": tool,
            "arguments": arguments,
            "theme": theme,
            "variables": host_variables(theme, self.style_keys),
            "viewUrl": VIEW_ORIGIN + path,
        }
        self.page.goto(f"{HOST_ORIGIN}/host.html?{urlencode({'config': json.dumps(config)})}")
        self.page.wait_for_function("() => window.host && window.host.initialized", timeout=15_000)
        frame = self.page.frame_locator("#view")
        frame.locator("body").wait_for()
        (view,) = [f for f in self.page.frames if f.url.startswith(VIEW_ORIGIN)]
        return view

    def log(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate("() => window.host.log"))

    def calls(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate("() => window.host.calls"))

    def host_result(self) -> dict[str, Any]:
        self.page.wait_for_function("() => window.host.hostResult !== undefined", timeout=15_000)
        return dict(self.page.evaluate("() => window.host.hostResult"))

    @staticmethod
    def violations(view: Frame) -> list[dict[str, Any]]:
        return list(view.evaluate("() => window.__cspViolations"))

    def _serve_host(self, route: Route) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=HOST_HTML)

    def _serve_view(self, route: Route) -> None:
        path = "/" + route.request.url.removeprefix(VIEW_ORIGIN).lstrip("/").split("?", 1)[0]
        html = self.views.get(path)
        if html is None:
            route.fulfill(status=404, body="not found")
            return
        route.fulfill(
            status=200,
            headers={"content-type": "text/html; charset=utf-8", "content-security-policy": DEFAULT_CSP},
            body=html,
        )
