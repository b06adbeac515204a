"""The HTML of the signed-in pages: /account (connected apps) and /admin (clients, users' grants).

Same rules as `pages`: everything interpolated is escaped, no script, the one stylesheet, and
every form carries the session's CSRF token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any, Final
from urllib.parse import quote, urlencode

from wallet_mcp.account.grants import ConnectedApp
from wallet_mcp.oauth.rules.lifetimes import KINDS, LABELS, MINIMUMS, Kind, Lifetimes
from wallet_mcp.oauth.server.registration import GRANT_TYPES
from wallet_mcp.primitives.scopes import SCOPE_DESCRIPTIONS, SUPPORTED_SCOPES
from wallet_mcp.storage.clients import ClientRecord
from wallet_mcp.storage.connection_log import UNREGISTERED, LoggedStep
from wallet_mcp.storage.consents import Limits
from wallet_mcp.storage.personal_tokens import PersonalToken
from wallet_mcp.storage.users import UserRecord
from wallet_mcp.web import pages
from wallet_mcp.web.pages import UpstreamLink, document, hidden_inputs

UPSTREAM_START = "/oauth/authorize/upstream/"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking, for the navigation bar and the forms."""

    username: str
    is_admin: bool
    csrf_token: str


def when(epoch: int | None) -> str:
    if epoch is None:
        return "—"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _when(epoch: int | None) -> str:
    """`when` in a table cell: it may wrap before the time, never inside the date."""
    date, _, time = when(epoch).partition(" ")
    return f'<span class="nowrap">{date}</span> {time}' if time else date


def plural(count: int, noun: str) -> str:
    """`noun` as it follows `count`: "1 session", "2 sessions", "0 sessions"."""
    return noun if count == 1 else f"{noun}s"


def _nav(viewer: Viewer) -> str:
    admin = '<a href="/admin">Clients</a><a href="/admin/users">Users</a>' if viewer.is_admin else ""
    return (
        f'<nav><a href="/account">Connected apps</a>{admin}'
        f'<span class="who">Signed in as <strong>{escape(viewer.username)}</strong></span>'
        '<form id="sign-out" method="post" action="/account/sign-out">'
        f"{hidden_inputs({'csrf_token': viewer.csrf_token})}"
        '<button type="submit">Sign out</button></form></nav>'
    )


def nav(viewer: Viewer) -> str:
    """The navigation bar, for the admin pages built beside this module."""
    return _nav(viewer)


def _alerts(notice: str | None, error: str | None) -> str:
    out = f'<p class="notice" role="status">{escape(notice)}</p>' if notice else ""
    return out + (f'<p class="error" role="alert">{escape(error)}</p>' if error else "")


def _scopes(scope: Iterable[str]) -> str:
    return " ".join(
        f'<span class="tag" title="{escape(SCOPE_DESCRIPTIONS.get(s, s))}">{escape(s)}</span>' for s in scope
    )


def sign_in_page(
    *,
    csrf_token: str,
    next_path: str,
    error: str | None,
    username: str = "",
    upstream: Sequence[tuple[str, str]] = (),
) -> str:
    """`upstream`: (id, name) of the configured OpenID providers, offered as links (GETs), so the
    page keeps one form."""
    query = urlencode({"next": next_path})
    links = [UpstreamLink(name, f"{UPSTREAM_START}{quote(pid)}?{query}") for pid, name in upstream]
    return pages.sign_in_page(
        lead="to manage the apps connected to your wallet",
        action="/account",
        hidden={"csrf_token": csrf_token, "next": next_path},
        error=error,
        username=username,
        upstream=links,
    )


def until_text(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def limits_summary(limits: Limits) -> str:
    """The limits the person set for an app, in one line."""
    chosen = limits.accounts
    parts = ["all accounts" if chosen is None else f"{len(chosen)} {plural(len(chosen), 'chosen account')}"]
    if limits.cap_per_transaction:
        parts.append(f"at most {limits.cap_per_transaction} per payment")
    if limits.cap_per_day:
        parts.append(f"at most {limits.cap_per_day} per day")
    if limits.cap_per_transaction or limits.cap_per_day:
        parts.append("ask me over a limit" if limits.over_cap == "confirm" else "refused over a limit")
    parts.append(
        f"until {until_text(limits.expires_at)}" if limits.expires_at is not None else "until revoked"
    )
    return ", ".join(parts)


def _limits_cell(app: ConnectedApp, limits_href: str | None) -> str:
    if app.limits is None:
        return ""
    link = (
        f' <a href="{escape(limits_href)}?{urlencode({"client_id": app.client_id})}" '
        f'aria-label="Limits of {escape(app.client_name)}">Change</a>'
        if limits_href
        else ""
    )
    return f'<br><span class="muted">Limits: {escape(limits_summary(app.limits))}</span>{link}'


def grants_table(
    apps: Sequence[ConnectedApp], *, action: str, hidden: dict[str, str], limits_href: str | None = None
) -> str:
    """`limits_href`: where the person changes an app's limits (None: not offered here)."""
    if not apps:
        return '<p class="muted">No applications have access.</p>'
    rows = "".join(
        "<tr>"
        f'<td class="name"><strong>{escape(app.client_name)}</strong><br><code>{escape(app.client_id)}</code>'
        f"{'' if app.client_exists else ' <span class=tag>deleted</span>'}"
        f"{' <span class=tag>acts on your wallet as its owner</span>' if app.acts_as_owner else ''}"
        f"{''.join(f' <span class=tag>granted by {escape(name)}</span>' for name in app.granted_by)}</td>"
        f'<td data-label="Scopes">{_scopes(app.scope) or "<span class=muted>none remembered</span>"}'
        f"{_limits_cell(app, limits_href)}</td>"
        f'<td data-label="Granted">{_when(app.granted_at)}</td>'
        f'<td data-label="Last used">{_when(app.last_used_at)}</td>'
        # the number alone (under its column's header); stacked on a narrow screen, its noun follows
        f'<td data-unit="{plural(app.active_refresh_tokens, "active session")}">'
        f"{app.active_refresh_tokens}</td>"
        f'<td><form method="post" action="{escape(action)}">'
        f"{hidden_inputs({**hidden, 'client_id': app.client_id})}"
        f'<button class="danger" type="submit" aria-label="Revoke {escape(app.client_name)}">Revoke</button>'
        "</form></td></tr>"
        for app in apps
    )
    return (
        "<table><thead><tr><th>Application</th><th>Scopes</th><th>Granted</th><th>Last used</th>"
        f"<th>Active sessions</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _token_status(token: PersonalToken, now: int) -> str:
    if token.revoked:
        return "revoked"
    return "active" if token.usable(now) else "expired"


def tokens_table(tokens: Sequence[PersonalToken], *, action: str, hidden: dict[str, str], now: int) -> str:
    if not tokens:
        return '<p class="muted">No personal access tokens.</p>'
    rows = "".join(
        "<tr>"
        f'<td class="name"><strong>{escape(t.name)}</strong><br><code>{escape(t.token_id)}</code></td>'
        f'<td data-label="Scopes">{_scopes(t.scope)}</td>'
        f'<td data-label="Status">{_token_status(t, now)}</td>'
        f'<td data-label="Created">{_when(t.created_at)}</td>'
        f'<td data-label="Last used">{_when(t.last_used_at)}</td>'
        f'<td data-label="Expires">{_when(t.expires_at) if t.expires_at else "never"}</td>'
        "<td>"
        + (
            f'<form method="post" action="{escape(action)}">'
            f"{hidden_inputs({**hidden, 'token_id': t.token_id})}"
            f'<button class="danger" type="submit" aria-label="Revoke {escape(t.name)}">Revoke</button>'
            "</form>"
            if t.usable(now)
            else ""
        )
        + "</td></tr>"
        for t in tokens
    )
    return (
        "<table><thead><tr><th>Token</th><th>Scopes</th><th>Status</th><th>Created</th>"
        f"<th>Last used</th><th>Expires</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
    )


def account_page(
    viewer: Viewer,
    apps: Sequence[ConnectedApp],
    tokens: Sequence[PersonalToken] = (),
    *,
    now: int = 0,
    notice: str | None = None,
    extra: str = "",
    activity: Sequence[dict[str, Any]] = (),
) -> str:
    """`extra`: HTML of further sections (already escaped), e.g. the payment confirmations;
    `activity`: the apps' recent tool calls."""
    hidden = {"csrf_token": viewer.csrf_token}
    body = (
        f"{_nav(viewer)}<h1>Connected apps</h1>"
        '<p class="lead">Applications you have allowed to use your wallet. Revoking one ends its '
        "access at once; it must ask you again to come back.</p>"
        f"{_alerts(notice, None)}"
        f"{grants_table(apps, action='/account/revoke', hidden=hidden, limits_href='/account/limits')}"
        "<h2>Personal access tokens</h2>"
        '<p class="lead">Tokens an administrator made for your scripts to call the wallet API. '
        "Revoking one stops it at once.</p>"
        f"{tokens_table(tokens, action='/account/tokens/revoke', hidden=hidden, now=now)}"
        f"{extra}"
        "<h2>Activity of your apps</h2>"
        '<p class="lead">Each tool an application called on your wallet, and what became of it.</p>'
        f"{activity_table(activity, names={app.client_id: app.client_name for app in apps})}"
    )
    return document("Connected apps", body, wide=True)


def forbidden_page(viewer: Viewer) -> str:
    body = (
        f"{_nav(viewer)}<h1>Administrators only</h1>"
        '<p class="error" role="alert">Your account cannot manage clients.</p>'
    )
    return document("Administrators only", body, wide=True)


def not_found_page(viewer: Viewer, what: str) -> str:
    body = f'{_nav(viewer)}<h1>Not found</h1><p class="error" role="alert">{escape(what)}</p>'
    return document("Not found", body, wide=True)


# --- /admin ----------------------------------------------------------------------------------------


def _client_kind(client: ClientRecord) -> str:
    if client.metadata_document:
        return "metadata document"
    kind = "confidential" if client.is_confidential else "public"
    return kind + (" · registered" if client.self_registered or client.expires_at is not None else "")


def _client_tags(client: ClientRecord) -> str:
    tags = [
        name
        for name, present in (
            ("deleted", client.is_deleted),
            ("disabled", client.disabled and not client.is_deleted),
            ("verified", client.verified),
        )
        if present
    ]
    return "".join(f" <span class=tag>{name}</span>" for name in tags)


def _client_link(client: ClientRecord) -> str:
    href = "/admin/client?" + urlencode({"client_id": client.client_id})
    return f'<a href="{escape(href)}">{escape(client.client_name)}</a>'


def clients_page(
    viewer: Viewer,
    clients: Sequence[ClientRecord],
    *,
    next_after: str | None = None,
    limit: int = 50,
    notice: str | None = None,
) -> str:
    rows = "".join(
        "<tr>"
        f'<td class="name">{_client_link(c)}<br><code>{escape(c.client_id)}</code>{_client_tags(c)}</td>'
        f'<td data-label="Type">{escape(_client_kind(c))}</td>'
        f'<td class="uris" data-label="Redirect URIs">'
        f"{'<br>'.join(escape(u) for u in c.redirect_uris) or '—'}</td>"
        f'<td data-label="Grants">{"<br>".join(_grant_label(g) for g in c.grant_types)}</td>'
        f'<td data-label="Scopes">{_scopes(c.scope)}</td>'
        f'<td data-label="Created">{_when(c.created_at)}</td>'
        f'<td data-label="Last used">{_when(c.last_used_at)}</td>'
        "</tr>"
        for c in clients
    )
    body = (
        f"{_nav(viewer)}<h1>Clients</h1>"
        f"{_alerts(notice, None)}"
        '<p><a href="/admin/clients/new">New confidential client</a> · '
        '<a href="/admin/connections">Recent connection failures</a> · '
        '<a href="/admin/enterprise">Enterprise identity providers</a></p>'
        "<table><thead><tr><th>Client</th><th>Type</th><th>Redirect URIs</th><th>Grants</th>"
        f"<th>Scopes</th><th>Created</th><th>Last used</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    if next_after is not None:
        href = "/admin?" + urlencode({"after": next_after, "limit": str(limit)})
        body += f'<p><a rel="next" href="{escape(href)}">Next page</a></p>'
    return document("Clients", body, wide=True)


def _settings_fields(
    *,
    name: str,
    redirect_uris: Sequence[str],
    grant_types: Sequence[str],
    scope: Sequence[str],
    owner: str,
    auth_method: str,
) -> str:
    grants = "".join(
        f'<label><input type="checkbox" name="grant_types" value="{g}"'
        f"{' checked' if g in grant_types else ''}>{g}</label>"
        for g in GRANT_TYPES
    )
    scopes = "".join(
        f'<label title="{escape(SCOPE_DESCRIPTIONS[s])}"><input type="checkbox" name="scope" value="{s}"'
        f"{' checked' if s in scope else ''}>{s}</label>"
        for s in SUPPORTED_SCOPES
    )
    methods = "".join(
        f'<option value="{m}"{" selected" if m == auth_method else ""}>{m}</option>'
        for m in ("client_secret_basic", "client_secret_post")
    )
    return (
        '<label for="client_name">Name</label>'
        '<input id="client_name" name="client_name" type="text" required maxlength="100" '
        f'value="{escape(name)}">'
        '<label for="redirect_uris">Redirect URIs (one per line)</label>'
        '<textarea id="redirect_uris" name="redirect_uris" rows="3">'
        f"{escape(chr(10).join(redirect_uris))}</textarea>"
        f"<fieldset><legend>Grant types</legend>{grants}</fieldset>"
        f"<fieldset><legend>Scopes it may be granted</legend>{scopes}</fieldset>"
        '<label for="token_endpoint_auth_method">Client authentication</label>'
        f'<select id="token_endpoint_auth_method" name="token_endpoint_auth_method">{methods}</select>'
        '<label for="owner">Owner (whose wallet client-credentials tokens act on)</label>'
        f'<input id="owner" name="owner" type="text" value="{escape(owner)}">'
    )


def new_client_page(
    viewer: Viewer,
    *,
    error: str | None = None,
    form: Mapping[str, str] | None = None,
    multi: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The creation form; after an error, filled with what was submitted."""
    form, multi = form or {}, multi
    fields = _settings_fields(
        name=form.get("client_name", ""),
        redirect_uris=form.get("redirect_uris", "").splitlines(),
        grant_types=multi["grant_types"] if multi else ("authorization_code", "refresh_token"),
        scope=multi["scope"] if multi else SUPPORTED_SCOPES,
        owner=form.get("owner", ""),
        auth_method=form.get("token_endpoint_auth_method", "client_secret_basic"),
    )
    body = (
        f"{_nav(viewer)}<h1>New confidential client</h1>"
        f"{_alerts(None, error)}"
        '<form method="post" action="/admin/clients">'
        f"{hidden_inputs({'csrf_token': viewer.csrf_token})}{fields}"
        '<div class="actions"><button class="primary" type="submit">Create client</button></div></form>'
    )
    return document("New client", body, wide=True)


def secret_block(client: ClientRecord, secret: str, *, created: bool) -> str:
    what = "created" if created else "has a new secret"
    return (
        f'<p class="notice" role="status">{escape(client.client_name)} {what}. Copy the secret now: '
        "it is not stored and will not be shown again.</p>"
        f"<dl><dt>client_id</dt><dd><code>{escape(client.client_id)}</code></dd>"
        '<dt>client_secret</dt><dd><output class="secret" id="client-secret">'
        f"{escape(secret)}</output></dd></dl>"
    )


def client_page(
    viewer: Viewer,
    client: ClientRecord,
    *,
    owner: str | None,
    history: Sequence[dict[str, object]],
    attempts: Sequence[LoggedStep] | None = (),
    bounds: Lifetimes,
    tool_calls: Sequence[dict[str, Any]] = (),
    lifetimes_sent: Mapping[str, str] | None = None,
    notice: str | None = None,
    error: str | None = None,
    secret: str | None = None,
    created: bool = False,
) -> str:
    """`bounds`: the deployment's token lifetimes; `lifetimes_sent`: a refused lifetimes form."""
    csrf = {"csrf_token": viewer.csrf_token, "client_id": client.client_id}

    def action_button(action: str, label: str, css: str = "") -> str:
        return (
            '<form method="post" action="/admin/client">'
            f"{hidden_inputs({**csrf, 'action': action})}"
            f'<button type="submit"{f" class={css}" if css else ""}>{label}</button></form>'
        )

    actions = []
    if not client.is_deleted:
        if client.uses_secret:
            actions.append(action_button("rotate_secret", "Rotate secret"))
        actions.append(
            action_button("unverify", "Stop vouching for it")
            if client.verified
            else action_button("verify", "Mark verified")
        )
        if "client_credentials" in client.grant_types:
            actions.append(
                action_button("refuse_debits", "Stop allowing payments")
                if client.debits_allowed
                else action_button("allow_debits", "Allow payments")
            )
        actions.append(
            action_button("allow_unpushed", "Stop requiring PAR")
            if client.require_pushed_authorization_requests
            else action_button("require_par", "Require PAR")
        )
        actions.append(
            action_button("allow_bearer", "Stop requiring DPoP")
            if client.dpop_bound_access_tokens
            else action_button("require_dpop", "Require DPoP")
        )
        actions.append(
            action_button("enable", "Enable")
            if client.disabled
            else action_button("disable", "Disable", "danger")
        )
        actions.append(action_button("delete", "Delete", "danger"))
    details = (
        f"<dl><dt>client_id</dt><dd><code>{escape(client.client_id)}</code></dd>"
        f"<dt>Type</dt><dd>{escape(_client_kind(client))}</dd>"
        f"<dt>Status</dt><dd>{_status(client)}</dd>"
        f"<dt>Identity</dt><dd>{'verified by an administrator' if client.verified else 'unverified'}</dd>"
        f"<dt>Authentication</dt><dd>{escape(client.token_endpoint_auth_method)}</dd>"
        f"{_keys_shown(client)}"
        f"<dt>Owner</dt><dd>{escape(owner or '—')}</dd>"
        f"<dt>Payments without a person</dt><dd>{_debits(client)}</dd>"
        f"<dt>Pushed authorization requests (PAR)</dt>"
        f"<dd>{'required' if client.require_pushed_authorization_requests else 'optional'}</dd>"
        f"<dt>DPoP-bound tokens</dt><dd>{'required' if client.dpop_bound_access_tokens else 'optional'}</dd>"
        f"<dt>Created</dt><dd>{when(client.created_at)}</dd>"
        f"<dt>Last used</dt><dd>{when(client.last_used_at)}</dd>"
        f"<dt>Expires unused</dt><dd>{when(client.expires_at)}</dd></dl>"
    )
    if client.is_deleted:
        edit = '<p class="muted">Deleted: nothing can bring it back.</p>'
    elif client.metadata_document:
        scopes = "".join(
            f'<label title="{escape(SCOPE_DESCRIPTIONS[s])}"><input type="checkbox" name="scope" value="{s}"'
            f"{' checked' if s in client.scope else ''}>{s}</label>"
            for s in SUPPORTED_SCOPES
        )
        edit = (
            '<h2>Settings</h2><p class="muted">Described by its metadata document: only what this server '
            "allows it is set here, and no fetch of the document changes it.</p>"
            '<form method="post" action="/admin/client">'
            f"{hidden_inputs({**csrf, 'action': 'update_scope'})}"
            f"<fieldset><legend>Scopes it may be granted</legend>{scopes}</fieldset>"
            '<div class="actions"><button class="primary" type="submit">Save changes</button></div></form>'
        )
    else:
        fields = _settings_fields(
            name=client.client_name,
            redirect_uris=client.redirect_uris,
            grant_types=client.grant_types,
            scope=client.scope,
            owner=owner or "",
            auth_method=client.token_endpoint_auth_method,
        )
        edit = (
            '<h2>Settings</h2><form method="post" action="/admin/client">'
            f"{hidden_inputs({**csrf, 'action': 'update'})}{fields}"
            '<div class="actions"><button class="primary" type="submit">Save changes</button></div></form>'
        )
    body = (
        f"{_nav(viewer)}<h1>{escape(client.client_name)}</h1>"
        f"{secret_block(client, secret, created=created) if secret else ''}"
        f"{_alerts(notice, error)}{details}"
        f'<div class="actions">{"".join(actions)}</div>{edit}{_keys_form(client, csrf)}'
        f"{_lifetimes(client, bounds, csrf, lifetimes_sent)}{_attempts(attempts)}{_history(history)}"
        "<h2>Tool calls</h2>"
        f"{activity_table(tool_calls, names={}, who='Person')}"
    )
    return document(client.client_name, body, wide=True)


def _debits(client: ClientRecord) -> str:
    if "client_credentials" not in client.grant_types:
        return "— (acts only for a signed-in person)"
    if client.debits_allowed:
        return "allowed: its client-credentials tokens may ask for debits, each confirmed by its owner"
    return "refused: its client-credentials tokens may not move money"


def _keys_shown(client: ClientRecord) -> str:
    if client.jwks_uri:
        return f"<dt>Keys</dt><dd>fetched from <code>{escape(client.jwks_uri)}</code></dd>"
    if client.jwks:
        count = len(json.loads(client.jwks).get("keys", []))
        return f"<dt>Keys</dt><dd>{count} public {plural(count, 'key')} registered</dd>"
    return ""


def _keys_form(client: ClientRecord, csrf: dict[str, str]) -> str:
    """`private_key_jwt` (RFC 7523 §2.2): the client's public keys instead of a secret."""
    if client.is_deleted or client.metadata_document or not client.is_confidential:
        return ""
    return (
        '<h2 id="client-keys">Keys instead of a secret</h2>'
        '<p class="muted">The client signs each token request with its private key (private_key_jwt); '
        "saving keys removes its secret. Give either the public keys or the URL that serves them.</p>"
        '<form method="post" action="/admin/client">'
        f"{hidden_inputs({**csrf, 'action': 'set_keys'})}"
        '<label for="jwks">Public keys (JWK Set JSON)</label>'
        f'<textarea id="jwks" name="jwks" rows="4">{escape(client.jwks or "")}</textarea>'
        '<label for="jwks_uri">or the https URL of its JWK Set (jwks_uri)</label>'
        f'<input id="jwks_uri" name="jwks_uri" type="url" value="{escape(client.jwks_uri or "")}">'
        '<div class="actions"><button type="submit">Save keys</button></div></form>'
    )


def duration(seconds: int) -> str:
    """Seconds as a person reads them: 5400 → "1 h 30 min", 2592000 → "30 days"."""
    parts = []
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min"), (1, "s")):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {plural(count, unit) if unit == 'day' else unit}")
    return " ".join(parts) or "0 s"


def _lifetime(client: ClientRecord, bounds: Lifetimes, kind: Kind) -> str:
    """What the client's tokens get: its own value, or the deployment's (the default)."""
    own: int | None = getattr(client, kind)
    issued = Lifetimes.of(client, bounds).get(kind)
    if own is None:
        return f"default ({issued} s / {duration(issued)})"
    shown = f"{own} s ({duration(own)})"
    if own != issued:  # the deployment's bound was lowered after it was set
        shown += f", issued as {issued} s ({duration(issued)}): this deployment's bound"
    return shown


def _lifetimes(
    client: ClientRecord, bounds: Lifetimes, csrf: dict[str, str], sent: Mapping[str, str] | None
) -> str:
    """The client's token lifetimes, and the form that sets or clears each (oauth.rules.lifetimes)."""
    if client.is_deleted:
        return ""
    effective = "".join(
        f"<dt>{LABELS[kind]}</dt><dd>{escape(_lifetime(client, bounds, kind))}</dd>" for kind in KINDS
    )
    fields = []
    for kind in KINDS:
        own = getattr(client, kind)
        value = sent.get(kind, "") if sent is not None else ("" if own is None else str(own))
        lower, upper = MINIMUMS[kind], bounds.get(kind)
        allowed = f"{lower} s to {upper} s" if lower <= upper else f"this deployment's {upper} s only"
        fields.append(
            f'<label for="{kind}">{LABELS[kind]} ({allowed})</label>'
            f'<input id="{kind}" name="{kind}" type="text" inputmode="numeric" autocomplete="off" '
            f'maxlength="16" placeholder="default: {upper}" value="{escape(value[:16])}">'
        )
    return (
        '<h2 id="token-lifetimes">Token lifetimes</h2>'
        f"<dl>{effective}</dl>"
        '<p class="muted">Shorter than this deployment\'s, never longer. A number of seconds, or one with '
        "a unit (15m, 12h, 30d); empty for the deployment's. New values apply to every token issued "
        "from now on; a shorter refresh lifetime also to refresh tokens already issued, at their next "
        "refresh (past the family lifetime, the person signs in again). Access tokens already issued "
        "keep their expiry.</p>"
        '<form method="post" action="/admin/client">'
        f"{hidden_inputs({**csrf, 'action': 'set_lifetimes'})}{''.join(fields)}"
        '<div class="actions"><button class="primary" type="submit">Save lifetimes</button></div></form>'
    )


def _status(client: ClientRecord) -> str:
    if client.is_deleted:
        return "deleted"
    return "disabled" if client.disabled else "enabled"


CONFIRMATIONS: dict[str, tuple[str, str, str]] = {
    "rotate_secret": (
        "Rotate the secret of {name}?",
        "The current secret stops working at once: whatever uses it fails until it is given the new one, "
        "which is shown once, on the next page.",
        "Yes, rotate the secret",
    ),
    "delete": (
        "Delete {name}?",
        "The registration is removed and every token the client holds stops working: its access tokens "
        "are cut off and its refresh tokens can no longer be redeemed. Users who connected it see it marked "
        "deleted among their apps. This cannot be undone; disabling the client can be.",
        "Yes, delete the client",
    ),
}
"""The client actions that cannot be taken back: each asks first, on a page of its own."""


def confirm_client_action_page(viewer: Viewer, client: ClientRecord, action: str) -> str:
    title, consequence, label = CONFIRMATIONS[action]
    back = "/admin/client?" + urlencode({"client_id": client.client_id})
    fields = {
        "csrf_token": viewer.csrf_token,
        "client_id": client.client_id,
        "action": action,
        "confirm": "yes",
    }
    body = (
        f"{_nav(viewer)}<h1>{escape(title.format(name=client.client_name))}</h1>"
        f"<p>{escape(consequence)}</p>"
        f"<dl><dt>client_id</dt><dd><code>{escape(client.client_id)}</code></dd></dl>"
        f'<form method="post" action="/admin/client">{hidden_inputs(fields)}'
        f'<div class="actions"><button class="danger" type="submit">{escape(label)}</button>'
        f'<a class="button" href="{escape(back)}">Cancel</a></div></form>'
    )
    return document(title.format(name=client.client_name), body)


DECISIONS: Final = {
    "allowed": "allowed",
    "confirmed": "confirmed by you",
    "asked": "asked for your confirmation",
    "declined": "declined by you",
    "refused_scope": "refused: not allowed (scope)",
    "refused_account": "refused: an account you did not choose",
    "refused_cap_per_transaction": "refused: over your limit per payment",
    "refused_cap_per_day": "refused: over your limit per day",
    "refused_confirmation": "refused: no valid confirmation",
    "refused_machine_client": "refused: machine client may not pay",
    "refused_grant": "refused: access ended",
    "refused": "refused",
    "failed": "failed",
    "started": "started: what came of it was not recorded",
}


def activity_table(
    events: Sequence[dict[str, Any]], *, names: Mapping[str, str], who: str = "Application"
) -> str:
    """Tool calls from the audit trail (`tool_called`), newest first. `who`: the column naming
    the application (a person's page) or the person (an application's page)."""
    if not events:
        return '<p class="muted">No tool calls recorded.</p>'
    rows = []
    for e in events:
        d = e["details"]
        party = (
            names.get(str(e.get("client_id")), str(e.get("client_id")))
            if who == "Application"
            else str(e.get("subject", ""))
        )
        money = " ".join(str(d[k]) for k in ("amount", "openingBalance", "currency") if k in d)
        decision = DECISIONS.get(str(d.get("decision")), str(d.get("decision")))
        rows.append(
            "<tr>"
            f'<td data-label="When">{_when_precisely(int(e["at"]))}</td>'
            f'<td data-label="{who}">{escape(party)}</td>'
            f'<td data-label="Tool"><code>{escape(str(d.get("tool", "")))}</code></td>'
            f'<td data-label="Account"><code>{escape(str(d.get("accountId", "")))}</code></td>'
            f'<td data-label="Amount">{escape(money)}</td>'
            f'<td data-label="Decision">{escape(decision)}</td>'
            f'<td data-label="Result">{escape(str(d.get("result", "")))}</td>'
            "</tr>"
        )
    return (
        f"<table><thead><tr><th>When</th><th>{who}</th><th>Tool</th><th>Account</th><th>Amount</th>"
        f"<th>Decision</th><th>Result</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _history(history: Sequence[dict[str, object]]) -> str:
    events = "".join(
        f'<tr><td class="nowrap" data-label="When">{when(int(str(e["at"])) // 1000)}</td>'
        f'<td data-label="Event">{escape(str(e["event"]))}</td>'
        f'<td data-label="Details"><code>{escape(json.dumps(e.get("details") or {}, sort_keys=True))}'
        "</code></td></tr>"
        for e in history
    )
    return (
        "<h2>Recent events</h2><table><thead><tr><th>When</th><th>Event</th><th>Details</th></tr></thead>"
        f"<tbody>{events}</tbody></table>"
    )


# --- connection diagnostics (storage/connection_log.py) -------------------------------------------


def _when_precisely(epoch_ms: int) -> str:
    """To the second, in a table cell: it may wrap before the time, never inside the date."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return f'<span class="nowrap">{moment:%Y-%m-%d}</span> {moment:%H:%M:%S} UTC'


def _outcome(step: LoggedStep) -> str:
    return f"<strong>{escape(step.outcome)}</strong>" if step.failed else "ok"


def _step_cells(step: LoggedStep) -> str:
    """When, step, outcome, HTTP status, description and request id of one logged step."""
    correlation = f"<code>{escape(step.request_id)}</code>" if step.request_id else "—"
    return (
        f'<td data-label="When">{_when_precisely(step.at_ms)}</td>'
        f'<td data-label="Step">{escape(step.step)}</td>'
        f'<td data-label="Outcome">{_outcome(step)}</td>'
        f'<td data-label="HTTP status">{step.status or "—"}</td>'
        f'<td class="uris" data-label="What happened">{escape(step.description)}</td>'
        f'<td data-label="Request id">{correlation}</td>'
    )


_STEP_HEADINGS = (
    "<th>When</th><th>Step</th><th>Outcome</th><th>HTTP status</th><th>What happened</th><th>Request id</th>"
)
_UNREADABLE = '<p class="error" role="alert">The connection log cannot be read just now. Try again.</p>'


def _attempts(attempts: Sequence[LoggedStep] | None) -> str:
    """The client's recent connection attempts, newest first: each step and how it ended."""
    lead = (
        "<h2>Connection attempts</h2>"
        '<p class="muted">Each step of this client\'s recent attempts to connect, newest first: '
        "registration, the authorization request, sign-in, consent, each token request and its first "
        "MCP call with each access token. Kept for a short while; never a secret.</p>"
    )
    if attempts is None:
        return lead + _UNREADABLE
    if not attempts:
        return lead + '<p class="muted">No connection attempts recorded recently.</p>'
    rows = "".join(f"<tr>{_step_cells(step)}</tr>" for step in attempts)
    return lead + f"<table><thead><tr>{_STEP_HEADINGS}</tr></thead><tbody>{rows}</tbody></table>"


def _failed_client(step: LoggedStep) -> str:
    name = f"<strong>{escape(step.client_name)}</strong><br>" if step.client_name else ""
    if step.client_id == UNREGISTERED:
        return f'{name}<span class="muted">registration refused: no client id issued</span>'
    href = "/admin/client?" + urlencode({"client_id": step.client_id})
    return f'{name}<a href="{escape(href)}"><code>{escape(step.client_id)}</code></a>'


def connection_failures_page(viewer: Viewer, failures: Sequence[LoggedStep] | None) -> str:
    """`/admin/connections`: the recent failed steps of every client, newest first."""
    if failures is None:
        listing = _UNREADABLE
    elif not failures:
        listing = '<p class="muted">No failed connection steps recorded recently.</p>'
    else:
        rows = "".join(
            f'<tr><td class="name" data-label="Client">{_failed_client(step)}</td>{_step_cells(step)}</tr>'
            for step in failures
        )
        listing = (
            f"<table><thead><tr><th>Client</th>{_STEP_HEADINGS}</tr></thead><tbody>{rows}</tbody></table>"
        )
    body = (
        f"{_nav(viewer)}<h1>Recent connection failures</h1>"
        '<p class="lead">Steps of any client\'s attempts to connect that failed, newest first: '
        "what the client or the person was told, and the request id to find in the logs. A step "
        "before the client authenticated is filed under the client id the request named.</p>"
        f"{listing}"
    )
    return document("Recent connection failures", body, wide=True)


def user_grants_page(
    viewer: Viewer,
    *,
    username: str,
    user: UserRecord | None,
    apps: Sequence[ConnectedApp] = (),
    tokens: Sequence[PersonalToken] = (),
    history: Sequence[dict[str, object]] = (),
    now: int = 0,
    notice: str | None = None,
) -> str:
    search = (
        '<form method="get" action="/admin/users"><label for="username">Username</label>'
        f'<input id="username" name="username" type="text" value="{escape(username)}">'
        '<div class="actions"><button type="submit">Show user</button></div></form>'
    )
    result = ""
    if username and user is None:
        result = f'<p class="error" role="alert">No user named {escape(username)}.</p>'
    elif user is not None:
        hidden = {"csrf_token": viewer.csrf_token, "username": user.username}
        if user.disabled:
            status = (
                '<form method="post" action="/admin/users/enable">'
                f"{hidden_inputs(hidden)}"
                '<label for="reason">Reason (kept in the audit trail)</label>'
                '<input id="reason" name="reason" type="text" maxlength="500">'
                '<div class="actions"><button type="submit">Enable</button></div></form>'
            )
        else:
            status = (
                '<form method="post" action="/admin/users/disable">'
                f"{hidden_inputs(hidden)}"
                '<label for="reason">Reason (kept in the audit trail)</label>'
                '<input id="reason" name="reason" type="text" maxlength="500">'
                '<p class="muted">Disabling ends their sessions, every app\'s access and their personal '
                "access tokens at once, and refuses their sign-in until enabled again.</p>"
                '<div class="actions"><button class="danger" type="submit">Disable</button></div></form>'
            )
        result = (
            f"<h2>{escape(user.username)}</h2>"
            f"<dl><dt>User id</dt><dd><code>{escape(user.user_id)}</code></dd>"
            f"<dt>Status</dt><dd>{'disabled' if user.disabled else 'enabled'}</dd>"
            f"<dt>Roles</dt><dd>{escape(' '.join(user.roles) or '—')}</dd></dl>{status}"
            "<h2>Connected apps</h2>"
            + grants_table(apps, action="/admin/users/revoke", hidden=hidden)
            + "<h2>Personal access tokens</h2>"
            + tokens_table(tokens, action="/admin/users/tokens/revoke", hidden=hidden, now=now)
            + _history(history)
        )
    body = f"{_nav(viewer)}<h1>Users</h1>{_alerts(notice, None)}{search}{result}"
    return document("Users", body, wide=True)


_GRANT_TYPE_URN = "urn:ietf:params:oauth:grant-type:"


def _grant_label(grant_type: str) -> str:
    """A grant type as a list shows it: an IETF grant-type URN by its last part (`jwt-bearer`),
    the whole URN in its title, so one long word never widens the table."""
    if grant_type.startswith(_GRANT_TYPE_URN):
        return f'<span title="{escape(grant_type)}">{escape(grant_type.removeprefix(_GRANT_TYPE_URN))}</span>'
    return escape(grant_type)
