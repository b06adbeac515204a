"""`/account/confirm?op=<id>`: the person approves or declines one money movement an application
asked for (mcp_server/confirmation.py), in their own browser, signed in.

Only the person's session can decide, and only for their own wallet: the confirmation is looked up
in the signed-in user's partition, so another user's session finds nothing (the same answer as an
unknown id: it does not say that the id exists). No session: the sign-in page, then back here.
The decision is a POST with the session's CSRF token (signin/csrf.py), refused from another site;
it moves pending → approved | declined under a DynamoDB condition, only while the confirmation is
live, and each decision goes to the audit trail.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import urlencode

from wallet_mcp.account import confirm_pages as view
from wallet_mcp.account.portal import AccountPortal, Provenance, Refused, Visitor
from wallet_mcp.signin.password import SignIn, SignInRefused
from wallet_mcp.storage.audit import AuditEvent, AuditLog, Event
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.wallet.confirmations import Confirmation, ConfirmationStore, Decision, needs_step_up
from wallet_mcp.web.cookies import CookieJar
from wallet_mcp.web.outcomes import Outcome, Page, Redirect

PATH: Final = "/account/confirm"
_AMOUNT: Final = re.compile(r"([0-9]{1,7})(?:\.([0-9]{1,2}))?")
_DECISIONS: Final[dict[str, Decision]] = {"approve": "approved", "decline": "declined"}


class ConfirmationPages:
    def __init__(
        self,
        portal: AccountPortal,
        store: ConfirmationStore,
        clients: ClientStore,
        audit: AuditLog,
        *,
        sign_in: SignIn,
        step_up_over: int,
        clock: Callable[[], int],
    ) -> None:
        """`sign_in`: checks the password again to approve a payment over `step_up_over` (US
        cents; any amount in another currency), with the sign-in's lockout and audit."""
        self._sign_in = sign_in
        self._step_up_over = step_up_over
        self._portal = portal
        self._store = store
        self._clients = clients
        self._audit = audit
        self._clock = clock

    def show(self, cookies: CookieJar, query: Mapping[str, str]) -> Outcome:
        op_id = query.get("op", "")
        visitor = self._portal.visitor(cookies)
        if visitor is None:
            here = f"{PATH}?{urlencode({'op': op_id[:128]})}"
            return Redirect("/account?" + urlencode({"next": here}), status=303)
        found = self._store.get(visitor.user.user_id, op_id) if op_id else None
        if found is None:
            return Page(view.unknown_page(visitor.viewer), status=404)
        return Page(self._page(visitor, found, op_id))

    def decide(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        visitor = self._portal.check_post(sent_from, cookies, form)
        op_id = form.get("op", "")
        decision = _DECISIONS.get(form.get("decision", ""))
        if decision is None or not op_id:
            raise Refused(400, "The form is incomplete.")
        user_id = visitor.user.user_id
        found = self._store.get(user_id, op_id)
        if found is None:
            return Page(view.unknown_page(visitor.viewer), status=404)
        now = self._clock()
        if not found.is_live(now):
            expired = self._event("confirmation_expired", found, source, {"where": "confirmation page"})
            self._store.expire(user_id, found.op_digest, now=now, also=[self._audit.put_action(expired)])
            notice = "This confirmation expired; nothing was recorded. Ask the application again."
            return Page(self._page(visitor, self._reread(found, op_id), op_id, notice=notice), status=409)
        if decision == "approved" and self._needs_step_up(found):
            try:
                # the same check as signing in: lockout after repeated failures, each one audited
                self._sign_in.authenticate(
                    visitor.user.username,
                    form.get("password", ""),
                    source=source,
                    client_id=found.client_id,
                    now=now,
                )
            except SignInRefused as refused:
                page = self._page(visitor, found, op_id, error=f"Not approved: {refused.message}")
                return Page(page, status=refused.status, retry_after=refused.retry_after)
        name: Event = "confirmation_approved" if decision == "approved" else "confirmation_declined"
        event = self._event(name, found, source, {"where": "confirmation page"})
        # the decision and its audit event commit together: the trail never claims what did not happen
        if not self._store.decide(
            user_id, found.op_digest, decision, now=now, also=[self._audit.put_action(event)]
        ):
            notice = "This confirmation was already decided."
            return Page(self._page(visitor, self._reread(found, op_id), op_id, notice=notice), status=409)
        notice = (
            "Approved. Go back to the application: it records the payment when it asks again."
            if decision == "approved"
            else "Declined. Nothing will be recorded."
        )
        return Page(self._page(visitor, self._reread(found, op_id), op_id, notice=notice))

    def set_threshold(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        """The person's "confirm debits over" (USD), never above the administrator's maximum."""
        visitor = self._portal.check_post(sent_from, cookies, form)
        maximum = self._portal.confirmation_threshold_max
        raw = form.get("threshold", "").strip().removeprefix("$")
        match = _AMOUNT.fullmatch(raw)
        cents = int(match[1]) * 100 + int((match[2] or "").ljust(2, "0")) if match else None
        if cents is None or cents > maximum:
            limit = f"${maximum // 100}.{maximum % 100:02d}"
            message = f"Enter an amount in dollars from 0 to {limit}, like 25 or 25.50."
            return self._portal.account(cookies, {}, threshold_error=message)
        user_id = visitor.user.user_id
        self._store.set_threshold(user_id, cents, now=self._clock())
        self._audit.record(
            AuditEvent(
                "confirmation_threshold_set",
                subject=user_id,
                source=source,
                details={"confirm_over": cents, "currency": "USD", "maximum": maximum},
            )
        )
        return Redirect("/account?done=threshold", status=303)

    def _reread(self, found: Confirmation, op_id: str) -> Confirmation:
        return self._store.get(found.user_id, op_id) or found

    def _needs_step_up(self, found: Confirmation) -> bool:
        op = found.operation
        return needs_step_up(op.amount_minor, op.currency, over_minor=self._step_up_over)

    def _page(
        self,
        visitor: Visitor,
        found: Confirmation,
        op_id: str,
        *,
        notice: str | None = None,
        error: str | None = None,
    ) -> str:
        client = self._clients.get(found.client_id, now=self._clock())
        name = client.client_name if client else found.client_id
        return view.confirm_page(
            visitor.viewer,
            found,
            op_id=op_id,
            client_name=name,
            client_verified=client is not None and client.verified,
            now=self._clock(),
            notice=notice,
            error=error,
            step_up=self._needs_step_up(found),
        )

    @staticmethod
    def _event(event: Event, found: Confirmation, source: str, extra: dict[str, object]) -> AuditEvent:
        op = found.operation
        return AuditEvent(
            event,
            subject=found.user_id,
            client_id=found.client_id,
            source=source,
            details={
                "operation": found.op_digest[:16],
                "tool": op.tool,
                "account_id": op.account_id,
                "amount": op.amount_minor,
                "currency": op.currency,
                "token": found.token_id,
                **extra,
            },
        )
