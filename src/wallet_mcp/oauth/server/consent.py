"""`POST /oauth/authorize`: the login and consent forms of a pending request (RFC 6749 §4.1.1,
§4.1.2).

A submission counts only with the id of a pending request, from the browser that started it
(its binding cookie) and with the CSRF token derived from that cookie (`signin.csrf`): otherwise
403, and nothing is signed in or issued (login CSRF: RFC 6749 §10.12, RFC 9700 §4.7). The login
form signs the person in, then shows the consent page (or issues the code if consent is
remembered); the consent form records the decision and issues the code, or answers
`access_denied` (RFC 6749 §4.1.2.1). The request is consumed with the code it yields.

Each submission is a step of the connection log (`login` or `consent`, and `authorize` for the
redirect back): never the username typed nor the password, only whether and why it failed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

from wallet_mcp.oauth.server.authorize_errors import (
    EXPIRED,
    SPENT,
    LocalError,
    RedirectError,
    RequestContext,
)
from wallet_mcp.oauth.server.authorize_steps import AuthorizeSteps
from wallet_mcp.primitives.scopes import MONEY_MOVING_SCOPES, SUPPORTED_SCOPES
from wallet_mcp.signin.password import SignInRefused
from wallet_mcp.storage.audit import AuditEvent
from wallet_mcp.storage.auth_requests import PendingAuthorization
from wallet_mcp.storage.connection_log import ConnectionStep, Step, failed, succeeded
from wallet_mcp.storage.consents import OVER_CAP, Limits
from wallet_mcp.web.cookies import CookieJar
from wallet_mcp.web.outcomes import Outcome, Page, Redirect


class AuthorizeSubmit:
    def __init__(self, steps: AuthorizeSteps) -> None:
        self._steps = steps

    def submit(self, form: Mapping[str, str], cookies: CookieJar, source: str = "unknown") -> Outcome:
        steps, now = self._steps, self._steps.clock()
        step: Step = "login" if "username" in form or "password" in form else "consent"
        pending = steps.requests.get(form.get("request_id", ""), now=now)
        try:
            if pending is None:
                raise LocalError(EXPIRED)
            return self._submit(form, pending, cookies, source, now)
        except LocalError as exc:
            if pending is not None:  # else: no request, so no client to file it under
                steps.connections.record(
                    failed(pending.client_id, exc.step or step, exc.error, exc.detail, exc.status)
                )
            return exc.page("Cannot authorize")
        except RedirectError as exc:
            redirect = exc.redirect(steps.settings.issuer, status=303)
            client_id = exc.context.client.client_id
            where = exc.context.redirect_uri.split("?", 1)[0]
            logged: list[ConnectionStep] = []
            if exc.error == "access_denied":
                logged.append(failed(client_id, "consent", exc.error, "the person denied the request", 303))
            logged.append(
                failed(client_id, "authorize", exc.error, f"redirected to {where} with the error", 303)
            )
            steps.connections.record(*logged)
            return redirect

    def _submit(
        self,
        form: Mapping[str, str],
        pending: PendingAuthorization,
        cookies: CookieJar,
        source: str,
        now: int,
    ) -> Outcome:
        steps = self._steps
        binding = cookies.get(steps.binding_cookie)
        if binding is None or not steps.form_is_genuine(pending, form.get("csrf_token"), binding):
            raise LocalError(
                "This form was not submitted from the page this server showed.",
                status=403,
                detail="form refused: not from the browser that started the request, or a wrong CSRF token",
            )
        client = steps.client(pending.client_id, now)
        context = RequestContext(client=client, redirect_uri=pending.redirect_uri, state=pending.state)
        hidden = steps.hidden(pending, binding)

        if "username" in form or "password" in form:
            return self._login_submit(form, context, pending, hidden, now, source)
        session = steps.session(cookies, now)
        if session is None:
            page = steps.login_page(client, pending, hidden, error="Your session has ended. Sign in again.")
            steps.connections.record(
                failed(
                    client.client_id,
                    "consent",
                    "login_required",
                    "session ended; login page shown again",
                    200,
                )
            )
            return page
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            raise LocalError("The form is incomplete.", detail="consent form without a decision")
        if decision == "deny":
            if not steps.requests.consume(pending.request_id):
                raise LocalError(SPENT, detail="the authorization request was already used")
            raise RedirectError(context, "access_denied")
        previous = steps.consents.get(session.user_id, client.client_id)
        limits = chosen_limits(
            form,
            steps.account_choices(session.user_id) if "limits_form" in form else None,
            moves_money=bool(set(pending.scope) & MONEY_MOVING_SCOPES),
            now=now,
            previous=previous.limits if previous else None,
        )
        steps.consents.grant(
            session.user_id,
            client.client_id,
            pending.scope,
            pending.resource,
            order=SUPPORTED_SCOPES,
            now=now,
            limits=limits,
        )
        steps.audit.record(
            AuditEvent(
                "consent_granted",
                subject=session.user_id,
                client_id=client.client_id,
                source=source,
                details={"scope": " ".join(pending.scope), **limits_details(limits)},
            )
        )
        location = steps.issue_pending_code(context, pending, session, now)
        steps.connections.record(
            succeeded(
                client.client_id, "consent", f"approved by {session.username}: {' '.join(pending.scope)}", 303
            ),
            steps.redirected_with_code(context, 303),
        )
        return Redirect(location, status=303)

    def _login_submit(
        self,
        form: Mapping[str, str],
        context: RequestContext,
        pending: PendingAuthorization,
        hidden: dict[str, str],
        now: int,
        source: str,
    ) -> Outcome:
        steps = self._steps
        try:
            user = steps.sign_in.authenticate(
                form.get("username", ""),
                form.get("password", ""),
                source=source,
                client_id=context.client.client_id,
                now=now,
            )
        except SignInRefused as refused:
            username = form.get("username", "")[:256]
            page = steps.login_page(context.client, pending, hidden, error=refused.message, username=username)
            # what the person was told, never what they typed
            steps.connections.record(
                failed(context.client.client_id, "login", _refusal(refused), refused.message, refused.status)
            )
            return Page(page.html, refused.status, page.form_targets, retry_after=refused.retry_after)
        return steps.signed_in(context, pending, hidden, user, now, how="with a password")


_AMOUNT = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
DURATIONS: Final = {"forever": None, "1d": 86400, "30d": 30 * 86400, "90d": 90 * 86400}
BAD_CAP: Final = "A limit must be an amount such as 50 or 12.50, or left empty for none."


def chosen_limits(
    form: Mapping[str, str],
    accounts: Sequence[tuple[str, str]] | None,
    *,
    moves_money: bool,
    now: int,
    previous: Limits | None = None,
) -> Limits:
    """The limits the person chose on the form (`accounts`: theirs, when the form offered them;
    an id that is not one of theirs is ignored; every one ticked: all accounts, also later ones).
    Caps only for an app that asks to move money: otherwise the caps set before stay (`previous`),
    since a request for reading alone does not show them. `LocalError` for a value no page offers."""
    chosen: tuple[str, ...] | None = None
    if accounts is not None:
        ids = [account_id for account_id, _ in accounts]
        ticked = tuple(a for a in ids if form.get(f"account:{a}") == "on")
        chosen = None if len(ticked) == len(ids) else ticked
    kept = previous or Limits()
    caps: list[str | None] = [kept.cap_per_transaction, kept.cap_per_day]
    over: str = kept.over_cap
    if moves_money:
        caps = [None, None]
        for i, name in enumerate(("cap_per_transaction", "cap_per_day")):
            raw = form.get(name, "").strip()
            if raw:
                if not _AMOUNT.match(raw) or Decimal(raw) <= 0:
                    raise LocalError(BAD_CAP, detail=f"consent form: {name} is not an amount")
                caps[i] = raw
        over = form.get("over_cap", "refuse")
        if over not in OVER_CAP:
            raise LocalError("The form is incomplete.", detail="consent form: unknown over_cap choice")
    duration = form.get("duration", "forever")
    if duration not in DURATIONS:
        raise LocalError("The form is incomplete.", detail="consent form: unknown duration")
    seconds = DURATIONS[duration]
    return Limits(
        accounts=chosen,
        cap_per_transaction=caps[0],
        cap_per_day=caps[1],
        over_cap="confirm" if over == "confirm" else "refuse",
        expires_at=now + seconds if seconds is not None else None,
    )


def limits_details(limits: Limits) -> dict[str, str]:
    """What the audit trail keeps of the limits chosen."""
    details: dict[str, str] = {}
    if limits.accounts is not None:
        details["accounts"] = " ".join(limits.accounts) or "(none)"
    for name in ("cap_per_transaction", "cap_per_day"):
        value = getattr(limits, name)
        if value is not None:
            details[name] = value
    if limits.cap_per_transaction or limits.cap_per_day:
        details["over_cap"] = limits.over_cap
    if limits.expires_at is not None:
        details["expires_at"] = str(limits.expires_at)
    return details


def _refusal(refused: SignInRefused) -> str:
    """The connection log's outcome of a refused sign-in."""
    if refused.retry_after:
        return "locked_out"
    return "account_disabled" if refused.status == 403 else "invalid_credentials"
