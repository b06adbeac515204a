"""`/account/limits?client_id=…`: the limits a person set for one application at consent, shown
and changed (issue 18).

The same fields as the consent page (`web.pages.limits_fieldset`, read by
`oauth.server.consent.chosen_limits`), on the person's own consent record: a POST with the
session's CSRF token (`AccountPortal.check_post`), refused from another site. The record is read
on every call the application makes to the wallet, so the change applies to its next call, with
the tokens it already holds. Each change goes to the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape
from typing import Final
from urllib.parse import urlencode

from wallet_mcp.account.pages import until_text
from wallet_mcp.account.portal import AccountPortal, Provenance, Refused, Visitor
from wallet_mcp.oauth.server.authorize_errors import LocalError
from wallet_mcp.oauth.server.consent import chosen_limits, limits_details
from wallet_mcp.primitives.scopes import MONEY_MOVING_SCOPES
from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.storage.consents import Consent, ConsentStore, Limits
from wallet_mcp.wallet.store import WalletStore
from wallet_mcp.web.cookies import CookieJar
from wallet_mcp.web.outcomes import Outcome, Page, Redirect
from wallet_mcp.web.pages import document, hidden_inputs, limits_fieldset

PATH: Final = "/account/limits"
KEEP: Final = "keep"


class LimitPages:
    def __init__(
        self,
        portal: AccountPortal,
        consents: ConsentStore,
        clients: ClientStore,
        wallet: WalletStore,
        audit: AuditLog,
        *,
        clock: Callable[[], int],
    ) -> None:
        self._portal = portal
        self._consents = consents
        self._clients = clients
        self._wallet = wallet
        self._audit = audit
        self._clock = clock

    def show(self, cookies: CookieJar, query: Mapping[str, str]) -> Outcome:
        client_id = query.get("client_id", "")[:256]
        visitor = self._portal.visitor(cookies)
        if visitor is None:
            here = f"{PATH}?{urlencode({'client_id': client_id})}"
            return Redirect("/account?" + urlencode({"next": here}), status=303)
        consent = self._consents.get(visitor.user.user_id, client_id) if client_id else None
        if consent is None:
            raise Refused(404, "You have not allowed such an application.")
        return Page(self._page(visitor, consent))

    def submit(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        visitor = self._portal.check_post(sent_from, cookies, form)
        user_id, client_id = visitor.user.user_id, form.get("client_id", "")
        consent = self._consents.get(user_id, client_id) if client_id else None
        if consent is None:
            raise Refused(404, "You have not allowed such an application.")
        now = self._clock()
        keep = form.get("duration", KEEP) == KEEP
        try:
            limits = chosen_limits(
                {**form, "duration": "forever"} if keep else form,
                self._accounts(user_id),
                moves_money=_moves_money(consent),
                now=now,
            )
        except LocalError as exc:  # a value the page never offers, or a cap that is not an amount
            return Page(self._page(visitor, consent, error=exc.message), status=400)
        if keep:
            limits = Limits(
                accounts=limits.accounts,
                cap_per_transaction=limits.cap_per_transaction,
                cap_per_day=limits.cap_per_day,
                over_cap=limits.over_cap,
                expires_at=consent.limits.expires_at,
            )
        if not self._consents.set_limits(user_id, client_id, limits, now=now):
            raise Refused(404, "You have not allowed such an application.")
        self._audit.record(
            AuditEvent(
                "limits_changed",
                subject=user_id,
                client_id=client_id,
                source=source,
                details=limits_details(limits),
            )
        )
        return Redirect("/account?done=limits", status=303)

    def _accounts(self, user_id: str) -> list[tuple[str, str]]:
        return [
            (a.account_id, f"{a.name} ({a.account_type}, {a.currency})")
            for a in self._wallet.accounts(user_id)
        ]

    def _page(self, visitor: Visitor, consent: Consent, *, error: str | None = None) -> str:
        client = self._clients.get(consent.client_id, now=self._clock())
        name = client.client_name if client else consent.client_id
        limits = consent.limits
        ends = (
            f"This access ends on {until_text(limits.expires_at)}."
            if limits.expires_at is not None
            else "This access lasts until you revoke it."
        )
        fieldset = limits_fieldset(
            self._accounts(visitor.user.user_id),
            _moves_money(consent),
            chosen=limits.accounts,
            cap_per_transaction=limits.cap_per_transaction or "",
            cap_per_day=limits.cap_per_day or "",
            over_cap=limits.over_cap,
            duration=None,
        )
        alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
        body = (
            f"<h1>Limits for {escape(name)}</h1>"
            f'<p class="lead">{escape(ends)} Changes apply to its next call.</p>{alert}'
            f'<form method="post" action="{PATH}">'
            f"{hidden_inputs({'csrf_token': visitor.csrf_token, 'client_id': consent.client_id})}"
            f"{fieldset}"
            '<label for="duration">Access lasts</label><select id="duration" name="duration">'
            f'<option value="{KEEP}" selected>As it is</option>'
            '<option value="1d">1 more day</option><option value="30d">30 more days</option>'
            '<option value="90d">90 more days</option><option value="forever">Until I revoke it</option>'
            "</select>"
            '<div class="actions"><a class="button" href="/account">Cancel</a>'
            '<button class="primary" type="submit">Save</button></div></form>'
        )
        return document("Limits", body)


def _moves_money(consent: Consent) -> bool:
    return bool(set(consent.scope) & MONEY_MOVING_SCOPES)
