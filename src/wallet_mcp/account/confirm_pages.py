"""The HTML of `/account/confirm` (one money movement to approve or decline) and of the
confirmations listed on /account. Same rules as `account/pages`: everything interpolated is
escaped, no script, the one stylesheet, every form carries the session's CSRF token; one column
that reads on a phone.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from wallet_mcp.account.pages import Viewer, _nav, when
from wallet_mcp.wallet.confirmations import Confirmation
from wallet_mcp.wallet.money import format_money
from wallet_mcp.web.pages import document, hidden_inputs

_STATUS = {
    "pending": "Waiting for you",
    "approved": "Approved, not yet used",
    "declined": "Declined",
    "used": "Approved and recorded",
    "expired": "Expired",
}


def status_of(confirmation: Confirmation, now: int) -> str:
    if confirmation.status in ("pending", "approved") and not confirmation.is_live(now):
        return "Expired"
    return _STATUS[confirmation.status]


def _amount(confirmation: Confirmation) -> str:
    op = confirmation.operation
    return format_money(op.amount_minor, op.currency)


def confirm_page(
    viewer: Viewer,
    confirmation: Confirmation,
    *,
    op_id: str,
    client_name: str,
    client_verified: bool = False,
    now: int,
    notice: str | None = None,
    error: str | None = None,
    step_up: bool = False,
) -> str:
    """`step_up`: approving asks for the password again (a large payment)."""
    op = confirmation.operation
    live = confirmation.status == "pending" and confirmation.is_live(now)
    opening = op.tool == "createAccount"  # an administrator requires new accounts confirmed too
    details = (
        '<dl class="confirmation">'
        f"<dt>{'Opening balance' if opening else 'Amount'}</dt>"
        f'<dd class="amount"><strong>{escape(_amount(confirmation))}</strong></dd>'
        f"<dt>{'New account' if opening else 'From account'}</dt><dd>{escape(op.account_name)}</dd>"
        f"<dt>Description</dt><dd>{escape(op.description)}</dd>"
        f"<dt>{'Type' if opening else 'Category'}</dt><dd>{escape(op.category)}</dd>"
        f"<dt>Requested by</dt><dd>{escape(client_name)}"
        f"{'' if client_verified else ' <em>(a name the application gave itself: not verified)</em>'}</dd>"
        f"<dt>Asked at</dt><dd>{when(confirmation.created_at)}</dd>"
        f"<dt>Status</dt><dd>{escape(status_of(confirmation, now))}</dd>"
        "</dl>"
    )
    notice_html = f'<p class="notice" role="status">{escape(notice)}</p>' if notice else ""
    notice_html += f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    password = (
        '<label for="password">Your password (needed to approve a payment this large)</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password">'
        if step_up
        else ""
    )
    if live:
        fields = {"csrf_token": viewer.csrf_token, "op": op_id}
        actions = (
            '<form method="post" action="/account/confirm">'
            f"{hidden_inputs(fields)}{password}"
            '<div class="actions">'
            '<button type="submit" name="decision" value="approve">'
            f"{'Approve new account' if opening else 'Approve payment'}</button>"
            '<button class="danger" type="submit" name="decision" value="decline">Decline</button>'
            "</div></form>"
            f'<p class="lead">Open until {when(confirmation.expires_at)}. Only approve a payment you '
            "asked for: the application cannot do this step for you.</p>"
        )
    else:
        actions = '<p class="lead">Nothing more to do here.</p>'
    body = (
        f"{_nav(viewer)}<h1>Confirm a payment</h1>"
        f'<p class="lead">{escape(client_name)} asks to record this payment in your wallet.</p>'
        f"{notice_html}{details}{actions}"
    )
    return document("Confirm a payment", body)


def unknown_page(viewer: Viewer) -> str:
    body = (
        f"{_nav(viewer)}<h1>No such confirmation</h1>"
        '<p class="error" role="alert">There is no payment waiting for your confirmation at this '
        f"address for <strong>{escape(viewer.username)}</strong>. If an application asked another "
        "account, sign out and sign in as that account.</p>"
    )
    return document("No such confirmation", body)


def threshold_form(csrf_token: str, chosen: int, maximum: int, *, error: str | None = None) -> str:
    """The person's "confirm debits over" (US cents), within the administrator's maximum."""
    if maximum <= 0:
        return (
            '<p class="lead">Every payment an application asks for needs your confirmation '
            "(your administrator allows no threshold).</p>"
        )
    current = (
        f"Payments over {format_money(chosen, 'USD')} need your confirmation; smaller US-dollar ones do not."
        if chosen > 0
        else "Every payment needs your confirmation."
    )
    error_html = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    value = f"{chosen // 100}.{chosen % 100:02d}"
    return (
        f'<p class="lead">{escape(current)} Payments in other currencies always do.</p>{error_html}'
        '<form method="post" action="/account/confirmations/threshold">'
        f"{hidden_inputs({'csrf_token': csrf_token})}"
        '<label for="threshold">Confirm payments over (USD, 0 for every payment, at most '
        f"{escape(format_money(maximum, 'USD'))})</label>"
        f'<input id="threshold" name="threshold" inputmode="decimal" value="{escape(value)}" required>'
        '<div class="actions"><button type="submit">Save</button></div></form>'
    )


def confirmations_section(
    confirmations: Sequence[Confirmation], names: dict[str, str], now: int, *, settings: str = ""
) -> str:
    """Pending and recent confirmations, newest first, for /account; `settings`: the threshold form."""
    if not confirmations:
        return (
            f"<h2>Payment confirmations</h2>{settings}"
            '<p class="lead">No payment has asked for your confirmation.</p>'
        )
    rows = "".join(
        "<tr>"
        f'<td class="nowrap" data-label="Asked">{when(c.created_at)}</td>'
        f'<td data-label="Amount">{escape(_amount(c))}</td>'
        f'<td data-label="Account">{escape(c.operation.account_name)}</td>'
        f'<td data-label="Description">{escape(c.operation.description)}</td>'
        f'<td data-label="Application">{escape(names.get(c.client_id, c.client_id))}</td>'
        f'<td data-label="Status">{escape(status_of(c, now))}</td>'
        "</tr>"
        for c in confirmations
    )
    return (
        f"<h2>Payment confirmations</h2>{settings}"
        '<p class="lead">Payments applications asked to record, and what became of them. A pending one '
        "is approved at the address the application showed you.</p>"
        "<table><thead><tr><th>Asked</th><th>Amount</th><th>Account</th>"
        "<th>Description</th><th>Application</th><th>Status</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
