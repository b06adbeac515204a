"""The steps of an authorization request that more than one route takes (RFC 6749 §4.1).

The GET that starts a request (`authorize.py`), the POST of its login and consent forms
(`consent.py`) and the return from an upstream provider (`upstream_routes.py`) share them: the
browser binding and the forms' CSRF token, the login and consent pages, remembered consent, and
issuing the code, and the connection-log steps they end with (`storage.connection_log`). Built
once per cold start with the stores they need.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final
from urllib.parse import urlencode, urlsplit

from wallet_mcp.config import Settings
from wallet_mcp.credentials import opaque
from wallet_mcp.limits import Rules
from wallet_mcp.oauth.rules.consent import approved_before, may_skip_consent
from wallet_mcp.oauth.rules.grants import Grant, refusal
from wallet_mcp.oauth.server.authorize_errors import EXPIRED, SPENT, LocalError, RequestContext, with_query
from wallet_mcp.primitives.scopes import MONEY_MOVING_SCOPES
from wallet_mcp.signin import csrf
from wallet_mcp.signin.password import SignIn
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.storage.auth_codes import AuthCodeStore, AuthorizationCode
from wallet_mcp.storage.auth_requests import AuthRequestStore, PendingAuthorization
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.connection_log import ConnectionLog, ConnectionStep, succeeded
from wallet_mcp.storage.consents import ConsentStore
from wallet_mcp.storage.database import Database
from wallet_mcp.storage.pushed_requests import PushedRequests
from wallet_mcp.storage.rate_limits import RateLimits
from wallet_mcp.storage.revocations import RevocationList
from wallet_mcp.storage.sessions import LoginSession, SessionStore
from wallet_mcp.storage.users import UserRecord, UserStore
from wallet_mcp.wallet.store import WalletStore
from wallet_mcp.web import pages
from wallet_mcp.web.cookies import CookieJar
from wallet_mcp.web.outcomes import Outcome, Page, Redirect

if TYPE_CHECKING:
    from wallet_mcp.config.upstream import IdentityProvider

ENDPOINT_PATH: Final = "/oauth/authorize"
UPSTREAM_PATH: Final = f"{ENDPOINT_PATH}/upstream"
UNUSABLE_CLIENT: Final = "This application is unknown here, or an administrator has disabled or removed it."


class AuthorizeSteps:
    def __init__(
        self,
        settings: Settings,
        *,
        clients: ClientStore,
        users: UserStore,
        sessions: SessionStore,
        requests: AuthRequestStore,
        consents: ConsentStore,
        codes: AuthCodeStore,
        rates: RateLimits,
        audit: AuditLog,
        clock: Callable[[], int],
        database: Database,
        revocations: RevocationList,
        connections: ConnectionLog,
        providers: Sequence[IdentityProvider] = (),
        pushed: PushedRequests | None = None,
        wallet: WalletStore | None = None,
    ) -> None:
        """`providers`: the upstream OpenID providers the login page offers (`upstream_routes.py`);
        `pushed`: the requests clients pushed (RFC 9126), None where `request_uri` is not served."""
        self.settings = settings
        self.pushed = pushed
        self.wallet = wallet
        """The person's accounts, for the limits of the consent page (None: not offered)."""
        self.connections = connections
        self.clock = clock
        self.clients = clients
        self.requests = requests
        self.consents = consents
        self.rates = rates
        self.audit = audit
        self.rules = Rules.from_settings(settings.rate_limits)
        self.providers = {p.id: p for p in providers}
        self.secure_cookies = not settings.is_local
        self.sign_in = SignIn(
            users=users,
            sessions=sessions,
            rates=rates,
            audit=audit,
            rules=self.rules,
            secure=self.secure_cookies,
        )
        self.binding_cookie = "wallet_authz"
        self._database = database
        self._codes = codes
        self._revocations = revocations

    def session(self, cookies: CookieJar, now: int) -> LoginSession | None:
        return self.sign_in.current(cookies, now)

    def client(self, client_id: str, now: int) -> ClientRecord:
        """The pending request's client, unless an administrator disabled or removed it meanwhile."""
        client = self.clients.get(client_id, now=now)
        if client is None:
            detail = (
                "unknown client_id: never registered here, expired unused, or disabled or deleted "
                "by an administrator (the client must register again)"
            )
            raise LocalError(UNUSABLE_CLIENT, error="invalid_client", detail=detail)
        return client

    # --- the browser that started the request ---------------------------------------------------

    def bound_request(self, request_id: str, cookies: CookieJar, now: int) -> PendingAuthorization:
        """The pending request, if this browser started it (login CSRF: RFC 6749 §10.12)."""
        pending = self.requests.get(request_id, now=now) if 0 < len(request_id) <= 64 else None
        if pending is None:
            raise LocalError(EXPIRED)
        if not opaque.matches(cookies.get(self.binding_cookie) or "", pending.browser_hash):
            raise LocalError("This sign-in request was started in another browser.", status=403)
        return pending

    def hidden(self, pending: PendingAuthorization, binding: str) -> dict[str, str]:
        """The forms' hidden fields: the request id and its CSRF token, derived from the browser
        binding the request is bound to (`signin.csrf`)."""
        return {
            "request_id": pending.request_id,
            "csrf_token": csrf.token(binding, "authorize", pending.request_id),
        }

    def form_is_genuine(
        self, pending: PendingAuthorization, form_token: str | None, binding: str | None
    ) -> bool:
        """Posted from a page this server showed, by the browser that started the request."""
        return opaque.matches(binding or "", pending.browser_hash) and csrf.verify(
            binding, form_token, "authorize", pending.request_id
        )

    # --- pages ----------------------------------------------------------------------------------

    def login_page(
        self,
        client: ClientRecord,
        pending: PendingAuthorization,
        hidden: dict[str, str],
        *,
        error: str | None,
        username: str = "",
    ) -> Page:
        html = pages.login_page(
            action=ENDPOINT_PATH,
            hidden=hidden,
            client=client_view(client, pending.redirect_uri),
            error=error,
            username=username,
            upstream=tuple(
                pages.UpstreamLink(
                    name=provider.name,
                    href=f"{UPSTREAM_PATH}/{provider.id}?{urlencode({'request_id': pending.request_id})}",
                )
                for provider in self.providers.values()
            ),
        )
        return Page(html, form_targets=(_origin(pending.redirect_uri),))

    def consent_page(
        self,
        client: ClientRecord,
        pending: PendingAuthorization,
        hidden: dict[str, str],
        session: LoginSession,
    ) -> Page:
        consent = self.consents.get(session.user_id, client.client_id)
        html = pages.consent_page(
            action=ENDPOINT_PATH,
            hidden=hidden,
            client=client_view(client, pending.redirect_uri),
            scopes=pending.scope,
            username=session.username,
            resource=pending.resource,
            approved_before=approved_before(consent, pending.scope, pending.resource),
            accounts=self.account_choices(session.user_id),
            caps=bool(set(pending.scope) & MONEY_MOVING_SCOPES),
        )
        return Page(html, form_targets=(_origin(pending.redirect_uri),))

    def account_choices(self, user_id: str) -> list[tuple[str, str]] | None:
        """(id, label) of the person's accounts, for the limits they choose (None: not offered)."""
        if self.wallet is None:
            return None
        return [
            (a.account_id, f"{a.name} ({a.account_type}, {a.currency})")
            for a in self.wallet.accounts(user_id)
        ]

    # --- consent and the code -------------------------------------------------------------------

    def silently_approved(
        self, context: RequestContext, scope: tuple[str, ...], resource: str, user_id: str, now: int
    ) -> bool:
        """Remembered consent may stand in for the page (`oauth.rules.consent`) and the grant is
        alive (`oauth.rules.grants`, on a consistent read of the person's entries)."""
        consent = self.consents.get(user_id, context.client.client_id)
        if not may_skip_consent(context.client, context.redirect_uri, consent, scope, resource, now=now):
            return False
        entries = self._revocations.entries(
            jti="-", client_id=context.client.client_id, user_ids=[user_id], now=now
        )
        grant = Grant(context.client.client_id, user_id, frozenset(scope), now)
        assert consent is not None  # may_skip_consent needs one
        return refusal(grant, entries, context.client, expires_at=consent.limits.expires_at, now=now) is None

    def signed_in(
        self,
        context: RequestContext,
        pending: PendingAuthorization,
        hidden: dict[str, str],
        user: UserRecord,
        now: int,
        *,
        how: str,
    ) -> Outcome:
        """After a sign-in (password or upstream, `how`): the consent page, or the code if already
        consented."""
        opened = self.sign_in.open_session(user, now)
        session, cookie = opened.session, opened.cookie
        client_id = context.client.client_id
        signed_in = succeeded(client_id, "login", f"signed in as {user.username} {how}")
        if self.silently_approved(context, pending.scope, pending.resource, user.user_id, now):
            location = self.issue_pending_code(context, pending, session, now)
            self.connections.record(
                signed_in, remembered_consent(client_id, 303), self.redirected_with_code(context, 303)
            )
            return Redirect(location, status=303, cookies=(cookie,))
        self.connections.record(signed_in)
        page = self.consent_page(context.client, pending, hidden, session)
        return Page(page.html, page.status, page.form_targets, (cookie,))

    def redirected_with_code(self, context: RequestContext, status: int) -> ConnectionStep:
        """The connection-log step of a code sent back (never the code itself)."""
        return succeeded(
            context.client.client_id,
            "authorize",
            f"redirected to {_without_query(context.redirect_uri)} with a code"
            f"{'' if context.state is not None else ' (the request had no state)'}",
            status,
        )

    def issue_pending_code(
        self, context: RequestContext, pending: PendingAuthorization, session: LoginSession, now: int
    ) -> str:
        """`issue_code` for a pending request, which it consumes; LocalError if already used."""
        location = self.issue_code(
            context,
            pending.scope,
            pending.code_challenge,
            pending.resource,
            session,
            now,
            pending.request_id,
            dpop_jkt=pending.dpop_jkt,
        )
        if location is None:
            raise LocalError(SPENT, detail="the authorization request was already used")
        return location

    def issue_code(
        self,
        context: RequestContext,
        scope: tuple[str, ...],
        challenge: str,
        resource: str,
        session: LoginSession,
        now: int,
        request_id: str | None = None,
        *,
        dpop_jkt: str | None = None,
    ) -> str | None:
        """Store a new code and answer where to send the browser with it (`code`, `state` and
        `iss`: RFC 6749 §4.1.2, RFC 9207 §2). `dpop_jkt`: the DPoP key the code is bound to (RFC
        9449 §10), which the token request must prove.

        With a pending request, the request is consumed in the same transaction: a request yields
        one code at most, and a failure leaves it unspent so the user can submit again. None: the
        request was already used.
        """
        code = opaque.new_secret(nbytes=32)
        record = AuthorizationCode(
            code_hash=opaque.digest(code),
            client_id=context.client.client_id,
            redirect_uri=context.redirect_uri,
            code_challenge=challenge,
            scope=scope,
            resource=resource,
            user_id=session.user_id,
            auth_time=session.auth_time,
            issued_at=now,
            expires_at=now + self.settings.auth_code_ttl,
            dpop_jkt=dpop_jkt,
        )
        if request_id is None:
            self._codes.put(record)
        elif (
            self._database.commit([self.requests.consume_action(request_id), self._codes.put_action(record)])
            is not None
        ):
            return None
        return with_query(
            context.redirect_uri, {"code": code, "state": context.state, "iss": self.settings.issuer}
        )


def client_view(client: ClientRecord, redirect_uri: str) -> pages.ClientView:
    """Who is asking, as the login and consent pages show it: never more trust than was checked."""
    parts = urlsplit(redirect_uri)
    if parts.scheme in ("http", "https"):
        host = parts.netloc
    else:
        # a private-use scheme (RFC 8252 §7.1): any app on the device may claim it, so say so
        target = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
        host = f"{target} (an application on your device that handles {parts.scheme}: links)"
    if client.verified:
        identity = "Verified by this server's administrator"
    elif client.metadata_document:
        identity = f"Described by its metadata document at {urlsplit(client.client_id).netloc}; not verified"
    elif client.self_registered:
        identity = "Unverified: self-registered, under a name of its own choosing"
    else:
        identity = "Registered by this server's administrator; not verified"
    return pages.ClientView(
        name=client.client_name,
        redirect_host=host,
        client_id=client.client_id,
        identity=identity,
        verified=client.verified,
    )


def remembered_consent(client_id: str, status: int) -> ConnectionStep:
    return succeeded(client_id, "consent", "approved before: remembered consent, no page shown", status)


def _without_query(uri: str) -> str:
    """A redirect URI as the log shows it: what it may carry after `?` is the client's business."""
    return uri.split("?", 1)[0].split("#", 1)[0]


def _origin(uri: str) -> str:
    """The redirect URI's origin: where the pages' forms may send the browser (CSP form-action)."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"
