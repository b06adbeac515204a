"""The authorization endpoint (RFC 6749 §3.1, §4.1; OAuth 2.1 §4.1; RFC 9207; RFC 8707).

`GET /oauth/authorize` validates the request. Errors are shown on this server's own page unless
the person is signed in here: only then do they go back to the client, to a redirect URI
registered for an enabled client, with `error`, a fixed `error_description` of ours (never text
from the request), `state` and `iss` — so nobody can turn this endpoint into an open redirector
or a phishing relay (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2). A valid request is stored server-side
and the user signs in (login page) and approves (consent page); both pages post back here with the
request id and a CSRF token, from the browser that started the request. Remembered consent skips
the consent page only where `oauth.rules.consent` allows it, and only while the grant is alive
(`oauth.rules.grants`). The response carries `code`, `state` and `iss`.

Instead of a password, the user may sign in with a configured upstream OpenID provider (links on
the login page, never a second form): `GET /oauth/authorize/upstream/<id>?request_id=…` sends the
browser there and `GET /oauth/authorize/upstream/<id>/callback` brings it back (oauth/upstream/).
Both live under this endpoint's path so that the browser-binding cookie reaches them; after the
callback the request continues exactly as after a password sign-in.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from wallet_mcp.config import Settings
from wallet_mcp.credentials import opaque
from wallet_mcp.oauth import client_id_metadata as cimd
from wallet_mcp.oauth import pkce
from wallet_mcp.oauth.errors import InvalidScope, InvalidTarget, TooManyRequests
from wallet_mcp.oauth.limits import Rules
from wallet_mcp.oauth.redirect_uris import redirect_uri_matches
from wallet_mcp.oauth.resources import select_audience
from wallet_mcp.oauth.rules.consent import approved_before, may_skip_consent
from wallet_mcp.oauth.rules.grants import Grant, refusal
from wallet_mcp.oauth.scopes import SUPPORTED_SCOPES, grant_scope, parse_scope
from wallet_mcp.oauth.sign_in import SignIn, SignInRefused
from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.auth_codes import AuthCodeStore, AuthorizationCode
from wallet_mcp.storage.auth_requests import AuthRequestStore, PendingAuthorization
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.consents import ConsentStore
from wallet_mcp.storage.rate_limits import RateLimits
from wallet_mcp.storage.revocations import RevocationList
from wallet_mcp.storage.sessions import LoginSession, SessionStore
from wallet_mcp.storage.transactions import commit
from wallet_mcp.storage.users import UserRecord, UserStore
from wallet_mcp.web import pages
from wallet_mcp.web.cookies import Cookie, CookieJar
from wallet_mcp.web.outcomes import Outcome, Page, Redirect
from wallet_mcp.web.paths import HOME, safe_next

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from wallet_mcp.oauth.upstream.flow import UpstreamSignIn
    from wallet_mcp.oauth.upstream.providers import IdentityProvider
    from wallet_mcp.storage.upstream_logins import UpstreamLogin

REQUEST_TTL: Final = 10 * 60
MAX_STATE: Final = 2048
MAX_QUERY: Final = 8192
ENDPOINT_PATH: Final = "/oauth/authorize"
UPSTREAM_PATH: Final = f"{ENDPOINT_PATH}/upstream"
ACCOUNT_SIGN_IN_TTL: Final = 10 * 60
UNUSABLE_CLIENT: Final = "This application is unknown here, or an administrator has disabled or removed it."
UNUSABLE_DOCUMENT: Final = "The application's metadata document could not be fetched or is not valid."
"""One answer for every failure of a metadata-document fetch: no oracle for what an address said."""
ERROR_DESCRIPTIONS: Final = {
    "invalid_request": "The authorization request is missing a parameter or has an invalid one.",
    "unsupported_response_type": "Only the authorization code flow (response_type=code) is supported.",
    "invalid_scope": "The requested scope is unknown or not available to this application.",
    "invalid_target": "The requested resource is not one this server protects.",
    "access_denied": "The user denied the request.",
    "login_required": "The user must sign in.",
    "consent_required": "The user must approve the request.",
}
"""The only texts an error carries: never anything taken from the request (RFC 9700 §4.11.2)."""

logger = logging.getLogger(__name__)


class LocalError(Exception):
    """An error shown on this server's own page (the redirect URI cannot be trusted yet)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class _Context:
    """A request whose client and redirect URI are known: errors may now redirect."""

    client: ClientRecord
    redirect_uri: str
    state: str | None


class _RedirectError(Exception):
    """An error about a request whose client and redirect URI are known: redirected to the client
    when the person is signed in, shown here otherwise."""

    def __init__(self, context: _Context, error: str) -> None:
        self.description = ERROR_DESCRIPTIONS.get(error, ERROR_DESCRIPTIONS["invalid_request"])
        super().__init__(self.description)
        self.context = context
        self.error = error


def _trusted_redirect(client: ClientRecord) -> bool:
    """Registered or verified by an administrator: its redirect URIs are not anyone's choice."""
    return client.verified or not (client.self_registered or client.metadata_document)


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"


def _with_query(uri: str, params: Mapping[str, str | None]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in params.items() if v is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))


def parse_query(raw: str) -> dict[str, str]:
    """Query parameters; duplicates are kept apart so the caller can decide when to refuse them."""
    if len(raw) > MAX_QUERY:
        raise LocalError("The authorization request is too large.")
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if name in params:
            params[name] = "\0duplicate"
        else:
            params[name] = value
    return {k: v for k, v in params.items() if v != ""}


class AuthorizeEndpoint:
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
        dynamodb: DynamoDBClient,
        revocations: RevocationList,
        fetch_metadata: Callable[[str], cimd.FetchedDocument] | None = None,
        upstream: Callable[[], UpstreamSignIn] | None = None,
    ) -> None:
        self._settings = settings
        self._db = dynamodb
        self._rates = rates
        self._audit = audit
        self._rules = Rules.from_settings(settings.rate_limits)
        self._clients = clients
        self._users = users
        self._sessions = sessions
        self._requests = requests
        self._consents = consents
        self._codes = codes
        self._revocations = revocations
        self._clock = clock
        policy = cimd.FetchPolicy(allow_loopback=settings.allow_loopback_client_metadata)
        self._fetch_metadata = fetch_metadata or (lambda url: cimd.fetch_client_metadata(url, policy))
        self._upstream = upstream
        """Built on first use: a password sign-in never imports the upstream code."""
        self._providers = {p.id: p for p in settings.identity_providers} if upstream else {}
        secure = not settings.is_local
        self._sign_in = SignIn(
            users=users, sessions=sessions, rates=rates, audit=audit, rules=self._rules, secure=secure
        )
        self.session_cookie = self._sign_in.cookie_name
        self.binding_cookie = "wallet_authz"
        self.account_binding_cookie = "wallet_upstream"
        self.secure_cookies = secure

    # --- GET ------------------------------------------------------------------------------------

    def start(self, query: str, cookies: CookieJar) -> Outcome:
        try:
            return self._start(parse_query(query), cookies)
        except LocalError as exc:
            return Page(pages.error_page("Cannot authorize", exc.message), status=exc.status)
        except _RedirectError as exc:
            # RFC 9700 §4.11.2: back to the client only once the person has signed in here; an
            # error on a request nobody signed in for (an attacker's link) is shown on our page.
            # The exception it names, silent authentication (`prompt=none`), answers
            # `login_required` by redirect, and only to a client an administrator vouches for.
            signed_in = self._session(cookies, self._clock()) is not None
            silent = exc.error == "login_required" and _trusted_redirect(exc.context.client)
            if not (signed_in or silent):
                return Page(pages.error_page("Cannot authorize", exc.description), status=400)
            return self._error_redirect(exc, status=302)

    def _start(self, params: dict[str, str], cookies: CookieJar) -> Outcome:
        now = self._clock()
        context = self._context(params, now)
        if any(v == "\0duplicate" for v in params.values()):
            raise _RedirectError(context, "invalid_request")
        if params.get("response_type") != "code":
            raise _RedirectError(context, "unsupported_response_type")
        challenge = params.get("code_challenge")
        # PKCE S256 (RFC 7636, OAuth 2.1 §4.1.1)
        if challenge is None or params.get("code_challenge_method") != "S256":
            raise _RedirectError(context, "invalid_request")
        if not pkce.is_valid_challenge(challenge):
            raise _RedirectError(context, "invalid_request")
        try:
            scope = grant_scope(
                parse_scope(params.get("scope")), context.client.scope, context.client.default_scope
            )
            resource = select_audience(
                params.get("resource"), self._settings.known_resources, self._settings.mcp_resource
            )
        except (InvalidScope, InvalidTarget) as exc:
            raise _RedirectError(context, exc.error) from exc
        prompt = set((params.get("prompt") or "").split())

        session = None if "login" in prompt else self._session(cookies, now)
        if (
            session is not None
            and "consent" not in prompt
            and self._silently_approved(context, scope, resource, session.user_id, now)
        ):
            location = self._issue_code(context, scope, challenge, resource, session, now)
            if location is not None:  # always, without a pending request to lose
                return Redirect(location)
        if "none" in prompt:
            raise _RedirectError(context, "login_required" if session is None else "consent_required")

        binding = cookies.get(self.binding_cookie) or opaque.new_secret()
        csrf = opaque.new_secret()
        pending = PendingAuthorization(
            request_id=secrets.token_urlsafe(16),
            client_id=context.client.client_id,
            redirect_uri=context.redirect_uri,
            scope=scope,
            state=context.state,
            code_challenge=challenge,
            resource=resource,
            csrf_hash=opaque.digest(csrf),
            browser_hash=opaque.digest(binding),
            created_at=now,
            expires_at=now + REQUEST_TTL,
        )
        self._requests.put(pending)
        binding_cookie = Cookie(self.binding_cookie, binding, ENDPOINT_PATH, REQUEST_TTL)
        hidden = {"request_id": pending.request_id, "csrf_token": csrf}
        if session is None:
            page = self._login(context.client, pending, hidden, error=None)
        else:
            page = self._consent(context.client, pending, hidden, session)
        return Page(page.html, page.status, page.form_targets, (binding_cookie,))

    def _context(self, params: dict[str, str], now: int) -> _Context:
        """Client and redirect URI, or a local error page (RFC 6749 §4.1.2.1)."""
        client_id = params.get("client_id")
        if client_id is None or client_id == "\0duplicate":
            raise LocalError("The request has no valid client_id.")
        client = self._resolve_client(client_id, now)
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None or redirect_uri == "\0duplicate":
            raise LocalError("The request has no valid redirect_uri.")
        if not redirect_uri_matches(client.redirect_uris, redirect_uri, client.application_type):
            raise LocalError("The redirect_uri is not registered for this client.")
        if "authorization_code" not in client.grant_types:
            raise LocalError("This client is not allowed to use the authorization code flow.")
        state = params.get("state")
        if state == "\0duplicate" or (state is not None and len(state) > MAX_STATE):
            raise LocalError("The state parameter is invalid.")
        return _Context(client=client, redirect_uri=redirect_uri, state=state)

    def _resolve_client(self, client_id: str, now: int) -> ClientRecord:
        if cimd.is_client_id_metadata_url(client_id):
            return self._metadata_document_client(client_id, now)
        client = self._clients.get(client_id, now=now)
        if client is None:
            raise LocalError(UNUSABLE_CLIENT)
        return client

    def _metadata_document_client(self, url: str, now: int) -> ClientRecord:
        """A CIMD client: the stored record while its document is fresh, else the document fetched
        again — never for a client an administrator disabled or deleted, whose state no fetch
        changes (`ClientStore.save_metadata_document`)."""
        stored = self._clients.get_any(url)
        if stored is not None and (stored.disabled or stored.is_deleted):
            raise LocalError(UNUSABLE_CLIENT)
        if stored is not None and (not stored.metadata_document or (stored.metadata_fresh_until or 0) > now):
            return stored
        try:
            # whoever starts a request picks the URL: fetches per host are bounded
            self._rates.hit(self._rules.metadata_fetch_host, cimd.fetch_host(url), now)
        except TooManyRequests as exc:
            raise LocalError(
                "Too many sign-ins for applications of this host just now. Try again in a minute.", status=429
            ) from exc
        try:
            fetched = self._fetch_metadata(url)
            metadata = cimd.validate_client_metadata(url, fetched.document)
        except cimd.ClientMetadataError as exc:
            logger.info("client metadata document refused", extra={"reason": str(exc)})
            raise LocalError(UNUSABLE_DOCUMENT) from exc
        record = ClientRecord(
            client_id=url,
            client_name=metadata.client_name,
            token_endpoint_auth_method="none",
            grant_types=metadata.grant_types,
            redirect_uris=metadata.redirect_uris,
            # the user's consent gates each scope; the document's scope is what to ask for by
            # default. An administrator may narrow `scope` later; a fetch never widens it again.
            scope=SUPPORTED_SCOPES,
            default_scope=metadata.scope,
            created_at=now,
            application_type=metadata.application_type,
            metadata_document=True,
            client_uri=metadata.client_uri,
            logo_uri=metadata.logo_uri,
            # fetched again after its cache lifetime; the record itself outlives that so that the
            # token endpoint still knows the client when the code is exchanged
            metadata_fresh_until=now + fetched.cache_seconds,
            expires_at=now + max(fetched.cache_seconds, 3600),
        )
        saved = self._clients.save_metadata_document(record)
        if saved is None:  # disabled or deleted meanwhile
            raise LocalError(UNUSABLE_CLIENT)
        return saved

    def _silently_approved(
        self, context: _Context, scope: tuple[str, ...], resource: str, user_id: str, now: int
    ) -> bool:
        """Remembered consent may stand in for the page (`oauth.rules.consent`) and the grant is
        alive (`oauth.rules.grants`, on a consistent read of the person's entries)."""
        consent = self._consents.get(user_id, context.client.client_id)
        if not may_skip_consent(context.client, context.redirect_uri, consent, scope, resource):
            return False
        entries = self._revocations.entries(
            jti="-", client_id=context.client.client_id, user_ids=[user_id], now=now
        )
        grant = Grant(context.client.client_id, user_id, frozenset(scope), now)
        return refusal(grant, entries, context.client) is None

    # --- POST -----------------------------------------------------------------------------------

    def submit(self, form: Mapping[str, str], cookies: CookieJar, source: str = "unknown") -> Outcome:
        try:
            return self._submit(form, cookies, source)
        except LocalError as exc:
            return Page(pages.error_page("Cannot authorize", exc.message), status=exc.status)
        except _RedirectError as exc:
            return self._error_redirect(exc, status=303)

    def _submit(self, form: Mapping[str, str], cookies: CookieJar, source: str) -> Outcome:
        now = self._clock()
        pending = self._requests.get(form.get("request_id", ""), now=now)
        if pending is None:
            raise LocalError(
                "This sign-in request has expired or was already used. Start again from the app."
            )
        csrf = form.get("csrf_token", "")
        binding = cookies.get(self.binding_cookie) or ""
        if not opaque.matches(csrf, pending.csrf_hash) or not opaque.matches(binding, pending.browser_hash):
            raise LocalError("This form was not submitted from the page this server showed.", status=403)
        client = self._clients.get(pending.client_id, now=now)
        if client is None:
            raise LocalError(UNUSABLE_CLIENT)
        context = _Context(client=client, redirect_uri=pending.redirect_uri, state=pending.state)
        hidden = {"request_id": pending.request_id, "csrf_token": csrf}

        if "username" in form or "password" in form:
            return self._login_submit(form, context, pending, hidden, now, source)
        session = self._session(cookies, now)
        if session is None:
            return self._login(client, pending, hidden, error="Your session has ended. Sign in again.")
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            raise LocalError("The form is incomplete.")
        if decision == "deny":
            if not self._requests.consume(pending.request_id):
                raise LocalError("This sign-in request was already used. Start again from the app.")
            raise _RedirectError(context, "access_denied")
        self._consents.grant(
            session.user_id,
            client.client_id,
            pending.scope,
            pending.resource,
            order=SUPPORTED_SCOPES,
            now=now,
        )
        self._audit.record(
            AuditEvent(
                "consent_granted",
                subject=session.user_id,
                client_id=client.client_id,
                source=source,
                details={"scope": " ".join(pending.scope)},
            )
        )
        location = self._issue_code(
            context, pending.scope, pending.code_challenge, pending.resource, session, now, pending.request_id
        )
        if location is None:
            raise LocalError("This sign-in request was already used. Start again from the app.")
        return Redirect(location, status=303)

    def _login_submit(
        self,
        form: Mapping[str, str],
        context: _Context,
        pending: PendingAuthorization,
        hidden: dict[str, str],
        now: int,
        source: str,
    ) -> Outcome:
        try:
            user = self._sign_in.authenticate(
                form.get("username", ""),
                form.get("password", ""),
                source=source,
                client_id=context.client.client_id,
                now=now,
            )
        except SignInRefused as refused:
            page = self._login(
                context.client,
                pending,
                hidden,
                error=refused.message,
                username=form.get("username", "")[:256],
            )
            return Page(page.html, refused.status, page.form_targets, retry_after=refused.retry_after)
        return self._signed_in(context, pending, hidden, user, now)

    def _signed_in(
        self,
        context: _Context,
        pending: PendingAuthorization,
        hidden: dict[str, str],
        user: UserRecord,
        now: int,
    ) -> Outcome:
        """After a sign-in (password or upstream): the consent page, or the code if already consented."""
        opened = self._sign_in.open_session(user, now)
        session, cookie = opened.session, opened.cookie
        if self._silently_approved(context, pending.scope, pending.resource, user.user_id, now):
            location = self._issue_code(
                context,
                pending.scope,
                pending.code_challenge,
                pending.resource,
                session,
                now,
                pending.request_id,
            )
            if location is None:
                raise LocalError("This sign-in request was already used. Start again from the app.")
            return Redirect(location, status=303, cookies=(cookie,))
        page = self._consent(context.client, pending, hidden, session)
        return Page(page.html, page.status, page.form_targets, (cookie,))

    # --- upstream identity providers ---------------------------------------------------------------

    def upstream_start(self, provider_id: str, query: str, cookies: CookieJar) -> Outcome:
        """`GET /oauth/authorize/upstream/<id>?request_id=…`: off to the provider."""
        from wallet_mcp.oauth.upstream.fetch import UpstreamUnavailable

        try:
            now = self._clock()
            provider = self._provider(provider_id)
            params = parse_query(query)
            if "request_id" not in params:
                return self._account_upstream_start(provider, safe_next(params.get("next")), now)
            pending = self._bound_request(params["request_id"], cookies, now)
            try:
                location = self._upstream_flow().begin(provider, pending, now)
            except UpstreamUnavailable as exc:
                message = f"Sign-in with {provider.name} is unavailable right now ({exc}). Try again later."
                return self._login_again(pending, message, status=502, now=now)
            return Redirect(location, status=303)
        except LocalError as exc:
            return Page(pages.error_page("Cannot sign in", exc.message), status=exc.status)

    def upstream_callback(
        self, provider_id: str, query: str, cookies: CookieJar, source: str = "unknown"
    ) -> Outcome:
        """`GET /oauth/authorize/upstream/<id>/callback?code=…&state=…`: back from the provider."""
        from wallet_mcp.oauth.upstream.fetch import UpstreamUnavailable
        from wallet_mcp.oauth.upstream.flow import UpstreamRefused

        try:
            now = self._clock()
            provider = self._provider(provider_id)
            params = parse_query(query)
            flow = self._upstream_flow()
            state = params.get("state", "")
            login = flow.take(state, now)
            if login is None or login.provider_id != provider.id:
                raise LocalError("This sign-in has expired or was already used. Start again from the app.")
            if login.return_to is not None:
                return self._account_upstream_callback(provider, login, state, params, cookies, source, now)
            # the browser that started it, and no other (login CSRF: RFC 6749 §10.12)
            if not opaque.matches(cookies.get(self.binding_cookie) or "", login.browser_hash):
                raise LocalError("This sign-in was started in another browser.", status=403)
            pending = self._bound_request(login.request_id, cookies, now)
            client = self._clients.get(pending.client_id, now=now)
            if client is None:
                raise LocalError(UNUSABLE_CLIENT)
            try:
                signed_in = flow.complete(
                    provider, login, state, params, now=now, source=source, client_id=client.client_id
                )
            except UpstreamRefused as refused:
                return self._login_again(pending, refused.message, status=400, now=now)
            except UpstreamUnavailable as exc:
                message = f"Sign-in with {provider.name} is unavailable right now ({exc}). Try again later."
                return self._login_again(pending, message, status=502, now=now)
            context = _Context(client=client, redirect_uri=pending.redirect_uri, state=pending.state)
            return self._signed_in(context, pending, self._rekeyed(pending), signed_in.user, now)
        except LocalError as exc:
            return Page(pages.error_page("Cannot sign in", exc.message), status=exc.status)

    def _account_upstream_start(self, provider: IdentityProvider, return_to: str, now: int) -> Outcome:
        """`GET /oauth/authorize/upstream/<id>?next=/account`: signing in to the account pages
        (docs/account.md), with no authorization request behind it. A fresh cookie binds the
        sign-in to this browser (login CSRF, RFC 6749 §10.12)."""
        from wallet_mcp.oauth.upstream.fetch import UpstreamUnavailable

        binding = opaque.new_secret()
        try:
            location = self._upstream_flow().begin_account(provider, opaque.digest(binding), return_to, now)
        except UpstreamUnavailable as exc:
            message = f"Sign-in with {provider.name} is unavailable right now ({exc}). Try again later."
            return Page(pages.error_page("Cannot sign in", message), status=502)
        cookie = Cookie(self.account_binding_cookie, binding, UPSTREAM_PATH, ACCOUNT_SIGN_IN_TTL)
        return Redirect(location, status=303, cookies=(cookie,))

    def _account_upstream_callback(
        self,
        provider: IdentityProvider,
        login: UpstreamLogin,
        state: str,
        params: Mapping[str, str],
        cookies: CookieJar,
        source: str,
        now: int,
    ) -> Outcome:
        """Back from the provider for the account pages: our session, then the page asked for."""
        from wallet_mcp.oauth.upstream.fetch import UpstreamUnavailable
        from wallet_mcp.oauth.upstream.flow import UpstreamRefused

        if not opaque.matches(cookies.get(self.account_binding_cookie) or "", login.browser_hash):
            raise LocalError("This sign-in was started in another browser.", status=403)
        spent = Cookie(self.account_binding_cookie, "", UPSTREAM_PATH, 0)
        try:
            signed_in = self._upstream_flow().complete(
                provider, login, state, params, now=now, source=source, client_id=None
            )
        except UpstreamRefused as refused:
            page = pages.error_page("Cannot sign in", refused.message)
            return Page(page, status=400, cookies=(spent,))
        except UpstreamUnavailable as exc:
            message = f"Sign-in with {provider.name} is unavailable right now ({exc}). Try again later."
            return Page(pages.error_page("Cannot sign in", message), status=502, cookies=(spent,))
        opened = self._sign_in.open_session(signed_in.user, now)
        return Redirect(login.return_to or HOME, status=303, cookies=(opened.cookie, spent))

    def _provider(self, provider_id: str) -> IdentityProvider:
        provider = self._providers.get(provider_id)
        if provider is None:
            raise LocalError("This sign-in provider is not offered here.", status=404)
        return provider

    def _upstream_flow(self) -> UpstreamSignIn:
        assert self._upstream is not None  # no providers without it (__init__)
        return self._upstream()

    def _bound_request(self, request_id: str, cookies: CookieJar, now: int) -> PendingAuthorization:
        """The pending request, if this browser started it."""
        pending = self._requests.get(request_id, now=now) if 0 < len(request_id) <= 64 else None
        if pending is None:
            raise LocalError(
                "This sign-in request has expired or was already used. Start again from the app."
            )
        if not opaque.matches(cookies.get(self.binding_cookie) or "", pending.browser_hash):
            raise LocalError("This sign-in request was started in another browser.", status=403)
        return pending

    def _rekeyed(self, pending: PendingAuthorization) -> dict[str, str]:
        """Hidden fields with a new CSRF token: the one the login page carried never came back."""
        csrf = opaque.new_secret()
        if not self._requests.rekey(
            pending.request_id, csrf_hash=opaque.digest(csrf), browser_hash=pending.browser_hash
        ):
            raise LocalError("This sign-in request was already used. Start again from the app.")
        return {"request_id": pending.request_id, "csrf_token": csrf}

    def _login_again(self, pending: PendingAuthorization, message: str, *, status: int, now: int) -> Outcome:
        """The login page again with what went wrong, so the user can try another way."""
        client = self._clients.get(pending.client_id, now=now)
        if client is None:
            raise LocalError(UNUSABLE_CLIENT)
        page = self._login(client, pending, self._rekeyed(pending), error=message)
        return Page(page.html, status, page.form_targets)

    # --- shared -----------------------------------------------------------------------------------

    def _session(self, cookies: CookieJar, now: int) -> LoginSession | None:
        return self._sign_in.current(cookies, now)

    def _view(self, client: ClientRecord, redirect_uri: str) -> pages.ClientView:
        parts = urlsplit(redirect_uri)
        host = (
            parts.netloc
            if parts.scheme in ("http", "https")
            else f"{parts.scheme}: (an application on your device)"
        )
        if client.verified:
            identity = "Verified by this server's administrator"
        elif client.metadata_document:
            identity = (
                f"Described by its metadata document at {urlsplit(client.client_id).netloc}; not verified"
            )
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

    def _login(
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
            client=self._view(client, pending.redirect_uri),
            error=error,
            username=username,
            upstream=tuple(
                pages.UpstreamLink(
                    name=provider.name,
                    href=f"{UPSTREAM_PATH}/{provider.id}?{urlencode({'request_id': pending.request_id})}",
                )
                for provider in self._providers.values()
            ),
        )
        return Page(html, form_targets=(_origin(pending.redirect_uri),))

    def _consent(
        self,
        client: ClientRecord,
        pending: PendingAuthorization,
        hidden: dict[str, str],
        session: LoginSession,
    ) -> Page:
        consent = self._consents.get(session.user_id, client.client_id)
        html = pages.consent_page(
            action=ENDPOINT_PATH,
            hidden=hidden,
            client=self._view(client, pending.redirect_uri),
            scopes=pending.scope,
            username=session.username,
            resource=pending.resource,
            approved_before=approved_before(consent, pending.scope, pending.resource),
        )
        return Page(html, form_targets=(_origin(pending.redirect_uri),))

    def _issue_code(
        self,
        context: _Context,
        scope: tuple[str, ...],
        challenge: str,
        resource: str,
        session: LoginSession,
        now: int,
        request_id: str | None = None,
    ) -> str | None:
        """Store a new code and answer where to send the browser with it.

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
            expires_at=now + self._settings.auth_code_ttl,
        )
        if request_id is None:
            self._codes.put(record)
        elif commit(self._db, [self._requests.consume_action(request_id), self._codes.put_action(record)]):
            return None
        return _with_query(
            context.redirect_uri, {"code": code, "state": context.state, "iss": self._settings.issuer}
        )

    def _error_redirect(self, exc: _RedirectError, *, status: int) -> Redirect:
        """RFC 6749 §4.1.2.1 with RFC 9207 §2: `iss` on error responses too."""
        location = _with_query(
            exc.context.redirect_uri,
            {
                "error": exc.error,
                "error_description": exc.description,
                "state": exc.context.state,
                "iss": self._settings.issuer,
            },
        )
        return Redirect(location, status=status)
