"""The first administrator, without AWS credentials: `/admin/bootstrap` (docs/operations.md
§ The first administrator).

The operator runs `wallet-mcp admin bootstrap-token` anywhere (it needs no AWS access): it prints a
random token and its SHA-256 (`credentials.opaque.digest`, the at-rest form of every opaque
credential here). Only the digest goes into the deployment (`BootstrapAdminTokenSha256`),
so neither the template, the stack's parameters nor the function's environment hold anything that
opens the page. Whoever presents the token on the page creates one administrator, once: the account
and a marker item are written in one transaction whose condition fails if the marker exists, so two
submissions racing each other cannot both succeed. Failed tokens count against the address like
failed sign-ins (the same rule), and the form carries the sign-in form's CSRF scheme.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from html import escape
from typing import Final

from wallet_mcp.account.portal import LOGIN_CSRF_TTL, Provenance, Refused
from wallet_mcp.credentials import opaque
from wallet_mcp.credentials.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, hash_password
from wallet_mcp.primitives.errors import TooManyRequests
from wallet_mcp.signin import csrf
from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.database import Database
from wallet_mcp.storage.rate_limits import RateLimits, Rule
from wallet_mcp.storage.users import UserRecord, UserStore, is_valid_username, normalize_username
from wallet_mcp.web import pages
from wallet_mcp.web.cookies import Cookie, CookieJar
from wallet_mcp.web.outcomes import Outcome, Page, Redirect

PATH: Final = "/admin/bootstrap"
CSRF_CONTEXT: Final = "admin-bootstrap"


class AdminBootstrap:
    def __init__(
        self,
        *,
        users: UserStore,
        audit: AuditLog,
        database: Database,
        rates: RateLimits,
        failures: Rule,
        digest: str,
        issuer: str,
        secure: bool,
        clock: Callable[[], int],
    ) -> None:
        self._users = users
        self._audit = audit
        self._database = database
        self._rates = rates
        self._failures = failures
        self._digest = digest.strip().lower()
        self._issuer = issuer
        self._clock = clock
        self._cookie = "__Host-wallet_bootstrap" if secure else "wallet_bootstrap"

    def show(self, cookies: CookieJar) -> Outcome:
        unavailable = self._unavailable()
        return unavailable or self._form(cookies)

    def submit(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        unavailable = self._unavailable()
        if unavailable is not None:
            return unavailable
        if sent_from.foreign(self._issuer):
            raise Refused(403, "This form was submitted from another site.")
        if not csrf.verify(cookies.get(self._cookie), form.get("csrf_token"), "sign-in", CSRF_CONTEXT):
            return self._form(cookies, error="The form expired. Enter the token again.", status=400)
        now = self._clock()
        try:
            self._failures.check(self._rates.count(self._rates.read(self._failures, source, now)), now)
        except TooManyRequests as exc:
            page = self._form(cookies, error=str(exc.description).capitalize() + ".", status=429)
            return Page(page.html, 429, cookies=page.cookies, retry_after=exc.retry_after)
        presented = form.get("token", "").strip()
        if not presented or not opaque.matches(presented, self._digest):
            self._rates.record(self._failures, source, now)
            return self._form(cookies, error="That bootstrap token is not valid.", status=403)
        username = normalize_username(form.get("username", ""))
        password = form.get("password", "")
        problem = _problem(username, password, form.get("password_again", ""))
        if problem is not None:
            return self._form(cookies, error=problem, status=400, username=username[:64])
        admin = UserRecord(
            username=username,
            user_id=str(uuid.uuid4()),
            password_hash=hash_password(password),
            created_at=now,
            roles=("admin",),
        )
        event = AuditEvent(
            "user_created", subject=admin.user_id, source=source, details={"by": "bootstrap", "admin": True}
        )
        lost = self._database.commit(
            [
                self._users.spend_bootstrap_action(admin, now),
                self._users.create_action(admin),
                self._audit.put_action(event),
            ]
        )
        if lost == 0:
            return _spent()
        if lost is not None:
            return self._form(cookies, error="That username is taken.", status=400, username=username)
        spent = Cookie(self._cookie, "", "/", 0)
        return Redirect("/admin", status=303, cookies=(spent,))

    def _unavailable(self) -> Page | None:
        if not self._digest:
            return Page(
                pages.error_page("Not found", "No administrator bootstrap is configured here."), status=404
            )
        if self._users.bootstrap_spent():
            return _spent()
        return None

    def _form(
        self, cookies: CookieJar, *, error: str | None = None, status: int = 200, username: str = ""
    ) -> Page:
        secret = csrf.browser_secret(cookies.get(self._cookie))
        alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
        body = (
            f'<p class="brand">{escape(pages.PRODUCT_NAME)}</p>'
            "<h1>Create the first administrator</h1>"
            '<p class="lead">Paste the token <code>wallet-mcp admin bootstrap-token</code> printed '
            "(its digest is this deployment's <code>BootstrapAdminTokenSha256</code>). It works once.</p>"
            f"{alert}"
            f'<form method="post" action="{PATH}">'
            f"{pages.hidden_inputs({'csrf_token': csrf.token(secret, 'sign-in', CSRF_CONTEXT)})}"
            '<label for="token">Bootstrap token</label>'
            '<input id="token" name="token" type="password" autocomplete="off" required autofocus>'
            '<label for="username">Administrator username</label>'
            f'<input id="username" name="username" type="text" autocomplete="username" required '
            f'maxlength="64" value="{escape(username)}">'
            '<label for="password">Password</label>'
            f'<input id="password" name="password" type="password" autocomplete="new-password" required '
            f'minlength="{MIN_PASSWORD_LENGTH}">'
            '<label for="password_again">Password again</label>'
            '<input id="password_again" name="password_again" type="password" autocomplete="new-password" '
            "required>"
            '<div class="actions"><button class="primary" type="submit">Create administrator</button></div>'
            "</form>"
        )
        page = pages.document("Create the first administrator", body)
        return Page(page, status, cookies=(Cookie(self._cookie, secret, "/", LOGIN_CSRF_TTL),))


def _problem(username: str, password: str, again: str) -> str | None:
    if not is_valid_username(username):
        return "A username is 1-64 of a-z, 0-9 and . _ @ + - (starting with a letter or digit)."
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        return f"The password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters."
    if password != again:
        return "The two passwords differ."
    return None


def _spent() -> Page:
    message = "The administrator bootstrap was used already. Sign in at /admin."
    return Page(pages.error_page("Already used", message), status=410)
