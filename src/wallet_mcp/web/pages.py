"""Server-rendered HTML pages (login, consent, errors) and the headers every page carries.

Everything interpolated is escaped. Pages have a strict Content-Security-Policy (no script at all;
the one stylesheet is allowed by its hash), cannot be framed (`frame-ancestors 'none'`,
`X-Frame-Options: DENY`), send no referrer, and are never cached.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from fastapi.responses import HTMLResponse

from wallet_mcp.primitives.redirect_uris import is_valid_host
from wallet_mcp.primitives.scopes import SCOPE_DESCRIPTIONS

_CSS: Final = """
:root { color-scheme: light dark; --accent: #2563eb; --muted: #6b7280; --border: #d1d5db; }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: Canvas;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: CanvasText; }
main { width: min(440px, calc(100% - 32px)); padding: 32px; border: 1px solid var(--border);
  border-radius: 12px; box-shadow: 0 10px 30px rgba(0,0,0,.08); overflow-wrap: break-word; }
h1 { font-size: 1.35rem; margin: 0 0 4px; }
h1, h2, p, dd, li, legend, .who, td code, td strong, td a, td.uris { overflow-wrap: anywhere; }
.brand { margin: 0 0 16px; font-weight: 700; letter-spacing: .02em; color: var(--accent); }
p.lead { margin: 0 0 20px; color: var(--muted); } p.lead a { white-space: nowrap; }
label { display: block; font-weight: 600; margin: 14px 0 6px; }
input[type=text], input[type=password] { width: 100%; padding: 10px 12px; font: inherit;
  border: 1px solid var(--border); border-radius: 8px; background: Field; color: FieldText; }
.actions { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 24px; }
.actions > form { display: flex; flex: 1 1 auto; margin: 0; }
button { flex: 1; padding: 10px 14px; font: inherit; font-weight: 600; border-radius: 8px;
  border: 1px solid var(--border); background: ButtonFace; color: ButtonText; cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
.error { padding: 10px 12px; border-radius: 8px; background: #fee2e2; color: #991b1b; margin: 0 0 16px; }
ul.scopes { padding-left: 20px; margin: 8px 0 0; } ul.scopes li { margin: 4px 0; }
code { font-size: .85em; color: var(--muted); }
dl { display: grid; grid-template-columns: auto minmax(0, 1fr); gap: 4px 12px; margin: 0 0 16px; }
dt { color: var(--muted); } dd { margin: 0; min-width: 0; }
.upstream { margin-top: 20px; display: grid; gap: 10px; }
.upstream p { margin: 0; text-align: center; color: var(--muted); }
a.button { display: block; padding: 10px 14px; border-radius: 8px; border: 1px solid var(--border);
  text-align: center; text-decoration: none; font-weight: 600; background: ButtonFace; color: ButtonText; }
main.wide { width: min(1100px, calc(100% - 32px)); }
nav { display: flex; gap: 8px 16px; align-items: center; margin: 0 0 20px; flex-wrap: wrap; }
nav .who { margin-left: auto; color: var(--muted); min-width: 0; }
nav form { margin: 0; } nav button { flex: none; padding: 4px 10px; font-weight: 400; }
nav form:target button { outline: 2px solid var(--accent); outline-offset: 2px; }
a { color: var(--accent); }
table { width: 100%; border-collapse: collapse; margin: 8px 0 20px; font-size: .92rem; }
th, td { text-align: left; vertical-align: top; padding: 8px 6px; border-bottom: 1px solid var(--border); }
th { color: var(--muted); font-weight: 600; }
td.name { min-width: 12rem; } td.uris { width: 30%; min-width: 10rem; }
td form { margin: 0; } td button { flex: none; padding: 4px 10px; }
button.danger { border-color: #b91c1c; color: #b91c1c; }
.notice { padding: 10px 12px; border-radius: 8px; background: #dcfce7; color: #166534; margin: 0 0 16px; }
.secret { display: block; padding: 12px; border-radius: 8px; border: 1px dashed var(--accent);
  font: 1rem ui-monospace, monospace; word-break: break-all; user-select: all; margin: 8px 0; }
textarea, select { width: 100%; padding: 8px 10px; font: inherit; border: 1px solid var(--border);
  border-radius: 8px; background: Field; color: FieldText; }
fieldset { min-width: 0; border: 1px solid var(--border); border-radius: 8px; margin: 14px 0 0; }
fieldset label { display: inline-flex; gap: 6px; font-weight: 400; margin: 4px 16px 4px 0; }
.muted { color: var(--muted); } .nowrap { white-space: nowrap; }
.tag { font-size: .8em; padding: 1px 6px; border-radius: 6px; border: 1px solid var(--border);
  white-space: nowrap; }
.tag.verified { border-color: #15803d; color: #15803d; }
.tag.unverified { border-color: #b45309; color: #b45309; }
@media (max-width: 1099px) {
  table, tbody, tr, td { display: block; width: 100%; }
  thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%);
    white-space: nowrap; }
  tr { padding: 10px 0; border-bottom: 1px solid var(--border); }
  td, td.name, td.uris { width: 100%; min-width: 0; padding: 2px 0; border: 0; overflow-wrap: anywhere; }
  td.nowrap { white-space: normal; }
  td[data-label]::before { content: attr(data-label); display: block; font-size: .8em;
    font-weight: 600; color: var(--muted); }
  td[data-unit]::after { content: " " attr(data-unit); }
  td button { margin-top: 6px; }
  .tag { white-space: normal; }
}
@media (max-width: 640px) {
  main, main.wide { width: 100%; min-height: 100vh; padding: 20px 16px; border: 0; border-radius: 0;
    box-shadow: none; }
  dl { grid-template-columns: minmax(0, 1fr); gap: 0; }
  dd { margin: 0 0 8px; }
}
"""
_CSS_HASH: Final = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()

PRODUCT_NAME: Final = "Wallet"
"""What the sign-in and consent pages call this service (as the protected resources do: "Wallet
MCP server", "Wallet API")."""

SIGN_OUT_HREF: Final = "/account#sign-out"
"""Where "Not you? Sign out" leads: the account page, whose Sign out button (a POST carrying the
session's CSRF token) it highlights. A button on the consent page itself would be a second form
and need the account pages' CSRF token there."""


_FORM_TARGET: Final = re.compile(
    r"[a-z][a-z0-9+.\-]*:(?://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(?::[0-9]{1,5})?)?"
)
"""An origin as a CSP source expression: `scheme:` or `scheme://host[:port]` (CSP3 §2.3.1)."""


def page_headers(*, form_targets: Iterable[str] = (), secure: bool) -> dict[str, str]:
    """Security headers for an HTML page. `form_targets` are the origins a form on this page (or the
    redirect answering it: Chromium applies form-action to redirects) may lead to.

    A target that is not such an origin is dropped: it comes from a request (a redirect URI), and
    a `;`, a space or a non-latin-1 character would add CSP directives or break the header."""
    origins = (
        target
        for target in form_targets
        if (origin := _FORM_TARGET.fullmatch(target)) is not None
        and (origin["host"] is None or is_valid_host(origin["host"]))
    )
    targets = " ".join(["'self'", *origins])
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src 'self' data:; "
            f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if secure:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    return headers


def document(title: str, body: str, *, wide: bool = False) -> str:
    main = '<main class="wide">' if wide else "<main>"
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{main}{body}</main></body></html>"
    )


def hidden_inputs(fields: dict[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )


@dataclass(frozen=True, slots=True)
class ClientView:
    """What the user is shown about the client asking for access: enough to tell an impostor from
    the real application (anyone can register a client named "Claude")."""

    name: str
    redirect_host: str
    client_id: str
    identity: str = "Unverified: the application registered itself, under a name of its choosing"
    """Who vouches for the name: an administrator, a metadata document's host, or nobody."""
    verified: bool = False


@dataclass(frozen=True, slots=True)
class UpstreamLink:
    """A "Sign in with <name>" button: a link (a GET), so the page keeps exactly one form."""

    name: str
    href: str


def login_page(
    *,
    action: str,
    hidden: dict[str, str],
    client: ClientView,
    error: str | None,
    username: str = "",
    upstream: Sequence[UpstreamLink] = (),
) -> str:
    lead = f"to continue to <strong>{escape(client.name)}</strong>"
    return sign_in_page(
        lead=lead, action=action, hidden=hidden, error=error, username=username, upstream=upstream
    )


def sign_in_page(
    *,
    lead: str,
    action: str,
    hidden: dict[str, str],
    error: str | None,
    username: str = "",
    upstream: Sequence[UpstreamLink] = (),
) -> str:
    """One form (username, password, the hidden fields) and the providers as links. `lead` is
    markup: escape what goes into it."""
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    links = "".join(
        f'<a class="button" href="{escape(link.href)}">Sign in with {escape(link.name)}</a>'
        for link in upstream
    )
    body = (
        f'<p class="brand">{escape(PRODUCT_NAME)}</p>'
        "<h1>Sign in</h1>"
        f'<p class="lead">{lead}</p>'
        f"{alert}"
        f'<form method="post" action="{escape(action)}">'
        f"{hidden_inputs(hidden)}"
        '<label for="username">Username</label>'
        f'<input id="username" name="username" type="text" autocomplete="username" required '
        f'autofocus value="{escape(username)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        '<div class="actions"><button class="primary" type="submit">Sign in</button></div>'
        "</form>" + (f'<div class="upstream"><p>or</p>{links}</div>' if links else "")
    )
    return document("Sign in", body)


def consent_page(
    *,
    action: str,
    hidden: dict[str, str],
    client: ClientView,
    scopes: Sequence[str],
    username: str,
    resource: str,
    approved_before: bool = False,
    accounts: Sequence[tuple[str, str]] | None = None,
    caps: bool = False,
) -> str:
    """`accounts`: (id, label) of the person's accounts, to choose which the app may use (None:
    not offered); `caps`: the app asks to move money, so offer caps per transaction and per day."""
    items = "".join(
        f"<li>{escape(SCOPE_DESCRIPTIONS.get(scope, scope))} <code>{escape(scope)}</code></li>"
        for scope in scopes
    )
    badge = "verified" if client.verified else "unverified"
    before = (
        '<p class="notice" role="status">You allowed this before. It is asked again because the '
        "application cannot prove it is the one you allowed, or it wants to move money.</p>"
        if approved_before
        else ""
    )
    body = (
        f'<p class="brand">{escape(PRODUCT_NAME)}</p>'
        f"<h1>Allow {escape(client.name)} to access your wallet?</h1>"
        f'<p class="lead">Signed in as <strong>{escape(username)}</strong> · '
        f'<a href="{SIGN_OUT_HREF}">Not you? Sign out</a></p>'
        f"{before}"
        f'<form method="post" action="{escape(action)}">'
        f"{hidden_inputs(hidden)}"
        "<dl>"
        f'<dt>Application</dt><dd>{escape(client.name)} <span class="tag {badge}">{badge}</span></dd>'
        f"<dt>Identity</dt><dd>{escape(client.identity)}</dd>"
        f"<dt>Client ID</dt><dd><code>{escape(client.client_id)}</code></dd>"
        f"<dt>Returns to</dt><dd><strong>{escape(client.redirect_host)}</strong></dd>"
        f"<dt>Access to</dt><dd><code>{escape(resource)}</code></dd>"
        "</dl>"
        f'<p>It will be able to:</p><ul class="scopes">{items}</ul>'
        f"{limits_fieldset(accounts, caps)}"
        '<div class="actions">'
        '<button type="submit" name="decision" value="deny">Deny</button>'
        '<button class="primary" type="submit" name="decision" value="approve">Allow</button>'
        "</div></form>"
    )
    return document("Authorize access", body)


DURATIONS: Final = (("forever", "Until I revoke it"), ("1d", "1 day"), ("30d", "30 days"), ("90d", "90 days"))
OVER_CAP_CHOICES: Final = (("refuse", "Refuse the payment"), ("confirm", "Ask me to confirm it instead"))


def limits_fieldset(
    accounts: Sequence[tuple[str, str]] | None,
    caps: bool,
    *,
    chosen: Sequence[str] | None = None,
    cap_per_transaction: str = "",
    cap_per_day: str = "",
    over_cap: str = "refuse",
    duration: str | None = "forever",
) -> str:
    """The limits a person sets for an app: which accounts (every one ticked: also accounts opened
    later), and for an app that moves money a cap per transaction and per day and what happens
    over them; and how long the grant lasts (`duration` None: not offered, as on /account where
    the end date is shown instead). Unticked boxes are not sent: `limits_form` says the
    choice was made."""
    if accounts is None:
        return ""
    boxes = "".join(
        f'<label class="check"><input type="checkbox" name="account:{escape(account_id)}" value="on"'
        f"{' checked' if chosen is None or account_id in chosen else ''}> {escape(label)}</label>"
        for account_id, label in accounts
    )
    parts = [
        '<fieldset class="limits"><legend>Limits for this application</legend>',
        '<input type="hidden" name="limits_form" value="1">',
        "<p>Accounts it may see and use (with every one ticked, also those you open later):</p>",
        boxes or "<p>You have no accounts yet.</p>",
    ]
    if caps:
        options = "".join(
            f'<option value="{value}"{" selected" if value == over_cap else ""}>{label}</option>'
            for value, label in OVER_CAP_CHOICES
        )
        parts.append(
            '<label for="cap_per_transaction">Largest payment '
            "(in the account's currency; empty: no limit)</label>"
            f'<input id="cap_per_transaction" name="cap_per_transaction" inputmode="decimal" '
            f'value="{escape(cap_per_transaction)}" placeholder="e.g. 50">'
            '<label for="cap_per_day">Most it may pay per day (empty: no limit)</label>'
            f'<input id="cap_per_day" name="cap_per_day" inputmode="decimal" value="{escape(cap_per_day)}" '
            'placeholder="e.g. 200">'
            '<label for="over_cap">Over a limit</label>'
            f'<select id="over_cap" name="over_cap">{options}</select>'
        )
    if duration is not None:
        options = "".join(
            f'<option value="{value}"{" selected" if value == duration else ""}>{label}</option>'
            for value, label in DURATIONS
        )
        parts.append(
            '<label for="duration">Allow it for</label>'
            f'<select id="duration" name="duration">{options}</select>'
        )
    parts.append("</fieldset>")
    return "".join(parts)


def error_page(title: str, message: str) -> str:
    body = f'<h1>{escape(title)}</h1><p class="error" role="alert">{escape(message)}</p>'
    body += '<p class="lead">Return to the application and start again.</p>'
    return document(title, body)


def html(content: str, *, status: int = 200, headers: dict[str, str]) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers=headers)
