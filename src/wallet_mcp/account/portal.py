"""The signed-in pages, independent of the HTTP framework: each method takes what the request
carried and returns what to send (a page or a redirect, with cookies).

Sign-in is the authorization endpoint's (`SignIn`: the same session cookie, lockout and audit),
so a user signed in there is signed in here. Every form carries a CSRF token (`signin.csrf`): the
sign-in form one derived from a cookie of its own (login CSRF, RFC 6749 §10.12), the forms of a
signed-in page the session's; and a POST whose `Origin` is another site is refused before anything
else. The user (and role)
is read again on every request, so a disabled user or a removed admin role takes effect at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlencode, urlsplit

from wallet_mcp.account import confirm_pages as confirm_view
from wallet_mcp.account import pages as view
from wallet_mcp.account.client_admin import ClientAdmin, ClientNotFound, ClientSettings, InvalidClientForm
from wallet_mcp.account.enterprise import EnterpriseAdmin, enterprise_page
from wallet_mcp.account.grants import Grants
from wallet_mcp.oauth.rules.revocation import Actor, Revoker
from wallet_mcp.primitives.forms import PageForm
from wallet_mcp.signin import csrf
from wallet_mcp.signin.password import SignIn, SignInRefused
from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.users import UserRecord, UserStore
from wallet_mcp.wallet.confirmations import ConfirmationStore, effective_threshold
from wallet_mcp.web import pages
from wallet_mcp.web.cookies import Cookie, CookieJar
from wallet_mcp.web.outcomes import Outcome, Page, Redirect
from wallet_mcp.web.paths import safe_next

ADMIN_ROLE: Final = "admin"
LOGIN_CSRF_TTL: Final = 3600
"""How long the sign-in page's cookie (the secret its form's CSRF token is derived from) lives."""
CLIENT_GROUPS: Final = ("grant_types", "scope")
MAX_CONFIRMATIONS_LISTED: Final = 20
MAX_REASON: Final = 500
MAX_ACTIVITY_READ: Final = 100
"""Audit events read for /account's activity (the tool calls among them are shown)."""
_NOTICES: Final = {
    "revoked": "Access revoked. The application must ask you again before it can use your wallet.",
    "deleted": "Client deleted.",
    "threshold": "Saved. It applies to the next payment an application asks for.",
    "limits": "Limits saved. They apply to the application's next call, with the tokens it already holds.",
    "token_revoked": "Personal access token revoked. It stopped working at once.",
    "disabled": "User disabled. Their sessions, grants and personal access tokens have ended.",
    "enabled": "User enabled. They may sign in again; nothing they had before comes back.",
    "idp_cut_off": "Identity provider cut off. Every grant it made has ended; new ones are refused.",
    "idp_linked": "Linked. The identity provider's grants for that subject now reach that user's wallet.",
    "idp_restored": "Identity provider restored. New grants are honoured; nothing from before comes back.",
}


@dataclass(frozen=True, slots=True)
class Visitor:
    """A request's signed-in user, or None, and the CSRF token of its forms."""

    user: UserRecord
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.user.roles

    @property
    def viewer(self) -> view.Viewer:
        return view.Viewer(self.user.username, self.is_admin, self.csrf_token)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a form submission says it comes from: its `Origin` and `Sec-Fetch-Site` headers."""

    origin: str | None = None
    fetch_site: str | None = None

    def foreign(self, own_origin: str) -> bool:
        """True when the browser says another site sent it. A page with `Referrer-Policy:
        no-referrer` (ours) makes browsers send `Origin: null`, so "null" proves nothing either
        way; Fetch Metadata (`Sec-Fetch-Site`) does, where the browser sends it."""
        if self.fetch_site is not None and self.fetch_site not in ("same-origin", "none"):
            return True
        return self.origin not in (None, "null", own_origin)


class Refused(Exception):
    """A request refused with a plain page (a forged form, a foreign origin)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AccountPortal:
    def __init__(
        self,
        *,
        issuer: str,
        sign_in: SignIn,
        users: UserStore,
        grants: Grants,
        admin: ClientAdmin,
        revoker: Revoker,
        audit: AuditLog,
        clock: Callable[[], int],
        upstream: Sequence[tuple[str, str]] = (),
        confirmations: ConfirmationStore | None = None,
        confirmation_threshold_max: int = 0,
        enterprise: EnterpriseAdmin | None = None,
    ) -> None:
        """`upstream`: (id, name) of the OpenID providers the sign-in page offers;
        `confirmations`: the person's payment confirmations, listed on /account."""
        self._confirmations = confirmations
        self._enterprise = enterprise
        self.confirmation_threshold_max = confirmation_threshold_max
        self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
        self._sign_in = sign_in
        self._users = users
        self._grants = grants
        self._admin = admin
        self._revoker = revoker
        self._audit = audit
        self._clock = clock
        self._upstream = tuple(upstream)
        self.secure = sign_in.secure
        self.login_cookie = "__Host-wallet_login" if sign_in.secure else "wallet_login"

    # --- who is asking ------------------------------------------------------------------------

    def visitor(self, cookies: CookieJar) -> Visitor | None:
        session = self._sign_in.current(cookies, self._clock())
        if session is None:
            return None
        user = self._users.get(session.username)
        if user is None or user.disabled or user.user_id != session.user_id:
            return None
        return Visitor(user, self._sign_in.csrf_token(cookies))

    def check_post(self, sent_from: Provenance, cookies: CookieJar, form: Mapping[str, str]) -> Visitor:
        """The signed-in visitor behind a form submission, or Refused."""
        if sent_from.foreign(self._origin):
            raise Refused(403, "This form was submitted from another site.")
        visitor = self.visitor(cookies)
        if visitor is None:
            raise Refused(401, "Your session has ended. Sign in again.")
        if not self._sign_in.csrf_ok(cookies, form.get("csrf_token")):
            raise Refused(403, "This form was not submitted from the page this server showed.")
        return visitor

    def _require_admin(self, visitor: Visitor) -> None:
        if not visitor.is_admin:
            raise Refused(403, "Administrators only.")

    # --- /account -------------------------------------------------------------------------------

    def account(
        self, cookies: CookieJar, query: Mapping[str, str], *, threshold_error: str | None = None
    ) -> Outcome:
        visitor = self.visitor(cookies)
        if visitor is None:
            return self._sign_in_page(safe_next(query.get("next")), cookies, error=None)
        apps = self._grants.connected_apps(visitor.user.user_id, now=self._clock())
        tokens = self._grants.personal_tokens(visitor.user.user_id)
        notice = _NOTICES.get(query.get("done", "")) or None
        extra = ""
        if self._confirmations is not None:
            listed = self._confirmations.of_user(visitor.user.user_id)[:MAX_CONFIRMATIONS_LISTED]
            names = {app.client_id: app.client_name for app in apps}
            chosen = effective_threshold(
                self._confirmations.threshold(visitor.user.user_id), self.confirmation_threshold_max
            )
            settings = confirm_view.threshold_form(
                visitor.csrf_token, chosen, self.confirmation_threshold_max, error=threshold_error
            )
            extra = confirm_view.confirmations_section(listed, names, self._clock(), settings=settings)
        activity = self._audit.of(visitor.user.user_id, limit=MAX_ACTIVITY_READ, event="tool_called")
        page = view.account_page(
            visitor.viewer, apps, tokens, now=self._clock(), notice=notice, extra=extra, activity=activity
        )
        return Page(page, status=400 if threshold_error else 200)

    def submit_sign_in(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        if sent_from.foreign(self._origin):
            raise Refused(403, "This form was submitted from another site.")
        next_path = safe_next(form.get("next"))
        if not csrf.verify(cookies.get(self.login_cookie), form.get("csrf_token"), "sign-in"):
            # a form another site posted, or one whose cookie expired: the same answer
            message = "The sign-in form expired. Sign in again."
            return self._sign_in_page(next_path, cookies, error=message, status=400)
        try:
            user = self._sign_in.authenticate(
                form.get("username", ""),
                form.get("password", ""),
                source=source,
                client_id=None,
                now=self._clock(),
            )
        except SignInRefused as refused:
            page = self._sign_in_page(
                next_path,
                cookies,
                error=refused.message,
                username=form.get("username", "")[:256],
                status=refused.status,
            )
            return Page(page.html, page.status, cookies=page.cookies, retry_after=refused.retry_after)
        opened = self._sign_in.open_session(user, self._clock())
        spent = Cookie(self.login_cookie, "", "/", 0)
        return Redirect(next_path, status=303, cookies=(opened.cookie, spent))

    def sign_out(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        visitor = self.check_post(sent_from, cookies, form)
        cleared = self._sign_in.close(cookies)
        self._audit.record(AuditEvent("signed_out", subject=visitor.user.user_id, source=source))
        return Redirect("/account", status=303, cookies=(cleared,))

    def revoke_own(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        visitor = self.check_post(sent_from, cookies, form)
        client_id = form.get("client_id", "")
        if not client_id:
            raise Refused(400, "The form is incomplete.")
        user_id = visitor.user.user_id
        self._grants.withdraw(user_id, client_id, Actor(user_id, source))
        return Redirect("/account?done=revoked", status=303)

    def revoke_own_token(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        visitor = self.check_post(sent_from, cookies, form)
        token_id = form.get("token_id", "")
        user_id = visitor.user.user_id
        if not token_id or not self._grants.revoke_personal_token(user_id, token_id, Actor(user_id, source)):
            raise Refused(404, "You have no such personal access token.")
        return Redirect("/account?done=token_revoked", status=303)

    def _sign_in_page(
        self, next_path: str, cookies: CookieJar, *, error: str | None, username: str = "", status: int = 200
    ) -> Page:
        """The sign-in form, its CSRF token derived from the browser's sign-in cookie (set anew)."""
        secret = csrf.browser_secret(cookies.get(self.login_cookie))
        html = view.sign_in_page(
            csrf_token=csrf.token(secret, "sign-in"),
            next_path=next_path,
            error=error,
            username=username,
            upstream=self._upstream,
        )
        return Page(html, status, cookies=(Cookie(self.login_cookie, secret, "/", LOGIN_CSRF_TTL),))

    # --- /admin ---------------------------------------------------------------------------------

    def _admin_visitor(self, cookies: CookieJar, here: str) -> Visitor | Outcome:
        visitor = self.visitor(cookies)
        if visitor is None:
            return Redirect("/account?" + urlencode({"next": here}), status=303)
        if not visitor.is_admin:
            return Page(view.forbidden_page(visitor.viewer), status=403)
        return visitor

    def clients(self, cookies: CookieJar, query: Mapping[str, str]) -> Outcome:
        visitor = self._admin_visitor(cookies, "/admin")
        if not isinstance(visitor, Visitor):
            return visitor
        notice = _NOTICES.get(query.get("done", "")) or None
        try:
            limit = int(query.get("limit", "") or 50)
        except ValueError:
            limit = 50
        clients, after = self._admin.page(after=query.get("after") or None, limit=limit)
        return Page(view.clients_page(visitor.viewer, clients, next_after=after, limit=limit, notice=notice))

    def new_client(self, cookies: CookieJar) -> Outcome:
        visitor = self._admin_visitor(cookies, "/admin/clients/new")
        if not isinstance(visitor, Visitor):
            return visitor
        return Page(view.new_client_page(visitor.viewer))

    def create_client(
        self, form: PageForm, cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        visitor = self.check_post(sent_from, cookies, form.fields)
        self._require_admin(visitor)
        try:
            wanted = ClientSettings.from_form(form.fields, form.groups, self._users)
            created = self._admin.create(wanted, actor=visitor.user.user_id, source=source, now=self._clock())
        except InvalidClientForm as exc:
            html = view.new_client_page(
                visitor.viewer, error=exc.message, form=form.fields, multi=form.groups
            )
            return Page(html, status=400)
        return self._client_page(
            visitor, created.record.client_id, secret=created.client_secret, created=True
        )

    def client(self, cookies: CookieJar, query: Mapping[str, str]) -> Outcome:
        client_id = query.get("client_id", "")
        visitor = self._admin_visitor(cookies, "/admin/client?" + urlencode({"client_id": client_id[:400]}))
        if not isinstance(visitor, Visitor):
            return visitor
        return self._client_page(visitor, client_id)

    def client_action(
        self, form: PageForm, cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        visitor = self.check_post(sent_from, cookies, form.fields)
        self._require_admin(visitor)
        client_id = form.fields.get("client_id", "")
        action = form.fields.get("action", "")
        actor = visitor.user.user_id
        try:
            if action in view.CONFIRMATIONS and form.fields.get("confirm") != "yes":
                record = self._admin.get(client_id)  # nothing changes until the admin confirms
                return Page(view.confirm_client_action_page(visitor.viewer, record, action))
            match action:
                case "rotate_secret":
                    secret = self._admin.rotate_secret(client_id, actor=actor, source=source)
                    return self._client_page(visitor, client_id, secret=secret)
                case "disable" | "enable":
                    self._admin.set_disabled(client_id, action == "disable", actor=actor, source=source)
                    return self._client_page(visitor, client_id, notice=f"Client {action}d.")
                case "delete":
                    self._admin.delete(client_id, actor=actor, source=source)
                    return Redirect("/admin?done=deleted", status=303)
                case "update":
                    wanted = ClientSettings.from_form(form.fields, form.groups, self._users)
                    self._admin.update(client_id, wanted, actor=actor, source=source)
                    return self._client_page(visitor, client_id, notice="Changes saved.")
                case "set_keys":
                    self._admin.set_keys(client_id, form.fields, actor=actor, source=source)
                    return self._client_page(
                        visitor, client_id, notice="Keys saved: the client signs its requests."
                    )
                case "update_scope":
                    self._admin.narrow(client_id, form.groups.get("scope", ()), actor=actor, source=source)
                    return self._client_page(visitor, client_id, notice="Changes saved.")
                case "verify" | "unverify":
                    self._admin.set_verified(client_id, action == "verify", actor=actor, source=source)
                    notice = "Client marked verified." if action == "verify" else "Client no longer verified."
                    return self._client_page(visitor, client_id, notice=notice)
                case "require_par" | "allow_unpushed" | "require_dpop" | "allow_bearer":
                    name: Literal["require_pushed_authorization_requests", "dpop_bound_access_tokens"] = (
                        "require_pushed_authorization_requests"
                        if action in ("require_par", "allow_unpushed")
                        else "dpop_bound_access_tokens"
                    )
                    required = action in ("require_par", "require_dpop")
                    self._admin.set_requirement(client_id, name, required, actor=actor, source=source)
                    return self._client_page(visitor, client_id, notice="Changes saved.")
                case "allow_debits" | "refuse_debits":
                    allowed = action == "allow_debits"
                    self._admin.set_debits_allowed(client_id, allowed, actor=actor, source=source)
                    notice = (
                        "Its client-credentials tokens may now ask for payments, each confirmed by its owner."
                        if allowed
                        else "Its client-credentials tokens may no longer ask for payments."
                    )
                    return self._client_page(visitor, client_id, notice=notice)
                case "set_lifetimes":
                    try:
                        self._admin.set_lifetimes(client_id, form.fields, actor=actor, source=source)
                    except InvalidClientForm as exc:  # shown with what was sent, to correct, not retype
                        return self._client_page(
                            visitor, client_id, error=exc.message, lifetimes_sent=form.fields, status=400
                        )
                    return self._client_page(visitor, client_id, notice="Token lifetimes saved.")
                case _:
                    raise Refused(400, "Unknown action.")
        except InvalidClientForm as exc:
            return self._client_page(visitor, client_id, error=exc.message, status=400)
        except ClientNotFound:
            return Page(view.not_found_page(visitor.viewer, "No such client."), status=404)

    def _client_page(self, visitor: Visitor, client_id: str, *, status: int = 200, **shown: object) -> Page:
        try:
            record = self._admin.get(client_id)
        except ClientNotFound:
            return Page(view.not_found_page(visitor.viewer, "No such client."), status=404)
        html = view.client_page(
            visitor.viewer,
            record,
            owner=self._admin.owner_name(record),
            history=self._admin.history(record.client_id),
            attempts=self._admin.connection_attempts(record.client_id),
            bounds=self._admin.bounds,
            tool_calls=self._admin.tool_calls(record.client_id),
            **shown,  # type: ignore[arg-type]
        )
        return Page(html, status)

    def connection_failures(self, cookies: CookieJar) -> Outcome:
        """`/admin/connections`: the recent failed connection steps of every client."""
        visitor = self._admin_visitor(cookies, "/admin/connections")
        if not isinstance(visitor, Visitor):
            return visitor
        return Page(view.connection_failures_page(visitor.viewer, self._admin.recent_failures()))

    def user_grants(self, cookies: CookieJar, query: Mapping[str, str]) -> Outcome:
        username = query.get("username", "").strip()[:256]
        here = "/admin/users" + ("?" + urlencode({"username": username}) if username else "")
        visitor = self._admin_visitor(cookies, here)
        if not isinstance(visitor, Visitor):
            return visitor
        notice = _NOTICES.get(query.get("done", "")) or None
        return Page(self._user_page(visitor, username, notice=notice))

    def _user_page(self, visitor: Visitor, username: str, *, notice: str | None = None) -> str:
        user = self._users.get(username) if username else None
        if user is None:
            return view.user_grants_page(visitor.viewer, username=username, user=None, notice=notice)
        return view.user_grants_page(
            visitor.viewer,
            username=user.username,
            user=user,
            apps=self._grants.connected_apps(user.user_id, now=self._clock()),
            tokens=self._grants.personal_tokens(user.user_id),
            history=self._audit.of(user.user_id, limit=20),
            now=self._clock(),
            notice=notice,
        )

    def _admin_user_post(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance
    ) -> tuple[Visitor, UserRecord]:
        visitor = self.check_post(sent_from, cookies, form)
        self._require_admin(visitor)
        user = self._users.get(form.get("username", "")[:256])
        if user is None:
            raise Refused(404, "No such user.")
        return visitor, user

    def _back_to_user(self, user: UserRecord, done: str) -> Redirect:
        return Redirect("/admin/users?" + urlencode({"username": user.username, "done": done}), status=303)

    def revoke_user_grant(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        visitor, user = self._admin_user_post(form, cookies, sent_from)
        client_id = form.get("client_id", "")
        if not client_id:
            raise Refused(400, "The form is incomplete.")
        self._grants.withdraw(user.user_id, client_id, Actor(visitor.user.user_id, source))
        return self._back_to_user(user, "revoked")

    def revoke_user_token(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        visitor, user = self._admin_user_post(form, cookies, sent_from)
        actor = Actor(visitor.user.user_id, source)
        if not self._grants.revoke_personal_token(user.user_id, form.get("token_id", ""), actor):
            raise Refused(404, "That user has no such personal access token.")
        return self._back_to_user(user, "token_revoked")

    def disable_user(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        """Disable a person: sign-in refused, sessions, grants and personal tokens ended at once."""
        visitor, user = self._admin_user_post(form, cookies, sent_from)
        reason = " ".join(form.get("reason", "").split())[:MAX_REASON]
        if user.user_id == visitor.user.user_id:
            raise Refused(400, "You cannot disable your own account.")
        self._revoker.end_user(user, Actor(visitor.user.user_id, source, reason or None))
        return self._back_to_user(user, "disabled")

    def enable_user(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        visitor, user = self._admin_user_post(form, cookies, sent_from)
        reason = " ".join(form.get("reason", "").split())[:MAX_REASON]
        self._revoker.restore_user(user, Actor(visitor.user.user_id, source, reason or None))
        return self._back_to_user(user, "enabled")

    # --- /admin/enterprise: the trusted enterprise IdPs --------------------------------------------

    def enterprise_idps(self, cookies: CookieJar, query: Mapping[str, str]) -> Outcome:
        visitor = self._admin_visitor(cookies, "/admin/enterprise")
        if not isinstance(visitor, Visitor):
            return visitor
        overview = self._enterprise.overview() if self._enterprise is not None else []
        notice = _NOTICES.get(query.get("done", "")) or None
        return Page(enterprise_page(view.nav(visitor.viewer), overview, visitor.csrf_token, notice))

    def enterprise_action(
        self, form: Mapping[str, str], cookies: CookieJar, sent_from: Provenance, source: str
    ) -> Outcome:
        """Cut an enterprise IdP off (all its grants end at once) or restore it."""
        visitor = self.check_post(sent_from, cookies, form)
        self._require_admin(visitor)
        idp_id = form.get("idp", "")
        if self._enterprise is None or not self._enterprise.known(idp_id):
            raise Refused(404, "No such identity provider.")
        actor = Actor(visitor.user.user_id, source)
        match form.get("action"):
            case "cut_off":
                self._enterprise.cut_off(idp_id, actor)
                done = "idp_cut_off"
            case "restore":
                self._enterprise.restore(idp_id, actor)
                done = "idp_restored"
            case "link":
                problem = self._enterprise.link(
                    idp_id, form.get("subject", ""), form.get("username", ""), actor
                )
                if problem is not None:
                    raise Refused(400, problem)
                done = "idp_linked"
            case _:
                raise Refused(400, "The form is incomplete.")
        return Redirect("/admin/enterprise?" + urlencode({"done": done}), status=303)


def refused_page(exc: Refused) -> Page:
    title = "Sign in again" if exc.status == 401 else "Cannot continue"
    html = pages.error_page(title, exc.message)
    return Page(html, status=exc.status)
