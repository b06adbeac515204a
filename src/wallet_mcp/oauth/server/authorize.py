"""`GET /oauth/authorize`: an authorization request starts (RFC 6749 §3.1, §4.1.1; OAuth 2.1 §4.1;
RFC 7636; RFC 8707).

The request is validated here. Errors are shown on this server's own page unless the person is
signed in here: only then do they go back to the client (`authorize_errors.py`), so nobody can
turn this endpoint into an open redirector or a phishing relay (RFC 6749 §4.1.2.1, RFC 9700
§4.11.2). A valid request is stored server-side, bound to this browser by a cookie, and answered
with the login page (no session) or the consent page; both post back to `consent.py` with the
request id and a CSRF token derived from that cookie (`signin.csrf`). Remembered consent skips
the consent page only where `oauth.rules.consent` allows it, and only while the grant is alive.
The client is a registered one or, when `client_id` is a URL, one described by its metadata
document, fetched and validated here (draft-ietf-oauth-client-id-metadata-document).

Every request naming a client is a step of the connection log: the fetch of a metadata document
(`discovery`), and the request itself (`authorize`) — refused, and how (our page or the client's
redirect URI), or valid, and which page or redirect followed.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Final
from urllib.parse import parse_qsl

from wallet_mcp.credentials import opaque
from wallet_mcp.oauth.server import client_id_metadata as cimd
from wallet_mcp.oauth.server.authorize_errors import LocalError, RedirectError, RequestContext
from wallet_mcp.oauth.server.authorize_steps import (
    ENDPOINT_PATH,
    UNUSABLE_CLIENT,
    AuthorizeSteps,
    remembered_consent,
)
from wallet_mcp.primitives import dpop, pkce
from wallet_mcp.primitives.errors import InvalidScope, InvalidTarget, TooManyRequests
from wallet_mcp.primitives.redirect_uris import redirect_uri_matches
from wallet_mcp.primitives.resources import select_audience
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES, grant_scope, parse_scope
from wallet_mcp.signin import csrf
from wallet_mcp.storage.auth_requests import PendingAuthorization
from wallet_mcp.storage.clients import ClientRecord
from wallet_mcp.storage.connection_log import failed, succeeded
from wallet_mcp.web import pages
from wallet_mcp.web.cookies import Cookie, CookieJar
from wallet_mcp.web.outcomes import Outcome, Page, Redirect

REQUEST_TTL: Final = 10 * 60
MAX_STATE: Final = 2048
MAX_QUERY: Final = 8192
DUPLICATE: Final = "\0duplicate"
BAD_DPOP_JKT: Final = "dpop_jkt is not a base64url JWK SHA-256 thumbprint (RFC 9449 §10)"
UNUSABLE_DOCUMENT: Final = "The application's metadata document could not be fetched or is not valid."
"""One answer for every failure of a metadata-document fetch: no oracle for what an address said."""

logger = logging.getLogger(__name__)


def parse_query(raw: str) -> dict[str, str]:
    """Query parameters; duplicates are kept apart so the caller can decide when to refuse them."""
    if len(raw) > MAX_QUERY:
        raise LocalError("The authorization request is too large.")
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        params[name] = DUPLICATE if name in params else value
    return {k: v for k, v in params.items() if v != ""}


def _trusted_redirect(client: ClientRecord) -> bool:
    """Registered or verified by an administrator: its redirect URIs are not anyone's choice."""
    return client.verified or not (client.self_registered or client.metadata_document)


class AuthorizeStart:
    def __init__(
        self, steps: AuthorizeSteps, *, fetch_metadata: Callable[[str], cimd.FetchedDocument] | None = None
    ) -> None:
        self._steps = steps
        self._settings = steps.settings
        policy = cimd.FetchPolicy(allow_loopback=steps.settings.allow_loopback_client_metadata)
        self._fetch_metadata = fetch_metadata or (lambda url: cimd.fetch_client_metadata(url, policy))

    def start(self, query: str, cookies: CookieJar) -> Outcome:
        params: dict[str, str] = {}
        try:
            params = parse_query(query)
            return self._start(params, cookies)
        except LocalError as exc:
            client_id = params.get("client_id")
            if client_id is not None and client_id != DUPLICATE:
                self._steps.connections.record(
                    failed(client_id, exc.step or "authorize", exc.error, exc.detail, exc.status)
                )
            return exc.page("Cannot authorize")
        except RedirectError as exc:
            # RFC 9700 §4.11.2: back to the client only once the person has signed in here; an
            # error on a request nobody signed in for (an attacker's link) is shown on our page.
            # The exception it names, silent authentication (`prompt=none`), answers
            # `login_required` by redirect, and only to a client an administrator vouches for.
            signed_in = self._steps.session(cookies, self._steps.clock()) is not None
            silent = exc.error == "login_required" and _trusted_redirect(exc.context.client)
            outcome: Outcome
            if not (signed_in or silent):
                outcome = Page(pages.error_page("Cannot authorize", exc.description), status=400)
                where = "shown on this server's page (nobody signed in here: never redirected)"
            else:
                outcome = exc.redirect(self._settings.issuer, status=302)
                where = f"redirected to {exc.context.redirect_uri.split('?', 1)[0]} with the error"
            status = outcome.status
            client_id = exc.context.client.client_id
            self._steps.connections.record(
                failed(client_id, "authorize", exc.error, f"{exc.detail}; {where}", status)
            )
            return outcome

    def _pushed(self, params: dict[str, str], now: int) -> tuple[dict[str, str], bool]:
        """RFC 9126 §4: a `request_uri` stands for the parameters its client pushed, taken once;
        the `client_id` sent beside it must be the pushing client's. Other parameters sent beside
        it are ignored (only the pushed ones count)."""
        request_uri = params.get("request_uri")
        if request_uri is None:
            return params, False
        client_id = params.get("client_id")
        if client_id is None or client_id == DUPLICATE or request_uri == DUPLICATE:
            raise LocalError("The request has no valid client_id.")
        pushed = self._steps.pushed.take(request_uri, client_id, now=now) if self._steps.pushed else None
        if pushed is None:
            raise LocalError(
                "This authorization request has expired or was already used. "
                "Start again from the application.",
                error="invalid_request_uri",
                detail="request_uri unknown, expired, already used or pushed by another client (RFC 9126 §4)",
            )
        return {**pushed, "client_id": client_id}, True

    def _start(self, params: dict[str, str], cookies: CookieJar) -> Outcome:
        steps, now = self._steps, self._steps.clock()
        params, pushed = self._pushed(params, now)
        context = self._context(params, now)
        # RFC 9126 §5 and §6: the deployment, or this client, accepts pushed requests only
        if not pushed and (
            self._settings.require_pushed_authorization_requests
            or context.client.require_pushed_authorization_requests
        ):
            raise RedirectError(
                context, "invalid_request", "authorization requests must be pushed first (PAR, RFC 9126)"
            )
        repeated = sorted(name for name, value in params.items() if value == DUPLICATE)
        if repeated:
            raise RedirectError(
                context, "invalid_request", f"repeated parameter: {', '.join(repeated)[:100]}"
            )
        if params.get("response_type") != "code":
            detail = (
                f"response_type {params.get('response_type', '(missing)')[:40]!r}: only code is supported"
            )
            raise RedirectError(context, "unsupported_response_type", detail)
        challenge = params.get("code_challenge")
        # PKCE S256 (RFC 7636, OAuth 2.1 §4.1.1)
        if challenge is None or params.get("code_challenge_method") != "S256":
            raise RedirectError(context, "invalid_request", "PKCE required: code_challenge with S256")
        if not pkce.is_valid_challenge(challenge):
            raise RedirectError(context, "invalid_request", "code_challenge is not a valid S256 challenge")
        dpop_jkt = params.get("dpop_jkt")
        if dpop_jkt is not None and not dpop.is_thumbprint(dpop_jkt):
            raise RedirectError(context, "invalid_request", BAD_DPOP_JKT)
        try:
            scope = grant_scope(
                parse_scope(params.get("scope")), context.client.scope, context.client.default_scope
            )
            resource = select_audience(
                params.get("resource"),
                self._settings.known_resources,
                self._settings.mcp_resource,
                self._settings.resource_aliases,
            )
        except (InvalidScope, InvalidTarget) as exc:
            asked = params.get("resource" if isinstance(exc, InvalidTarget) else "scope")
            detail = f"{exc.description} (asked for {asked[:200]})" if asked else exc.description
            raise RedirectError(context, exc.error, detail) from exc
        prompt = set((params.get("prompt") or "").split())

        session = None if "login" in prompt else steps.session(cookies, now)
        if (
            session is not None
            and "consent" not in prompt
            and steps.silently_approved(context, scope, resource, session.user_id, now)
        ):
            location = steps.issue_code(context, scope, challenge, resource, session, now, dpop_jkt=dpop_jkt)
            if location is not None:  # always, without a pending request to lose
                steps.connections.record(
                    remembered_consent(context.client.client_id, 302),
                    steps.redirected_with_code(context, 302),
                )
                return Redirect(location)
        if "none" in prompt:
            raise RedirectError(context, "login_required" if session is None else "consent_required")

        # the browser binding: this browser's secret, which the forms' CSRF token derives from
        binding = csrf.browser_secret(cookies.get(steps.binding_cookie))
        pending = PendingAuthorization(
            request_id=secrets.token_urlsafe(16),
            client_id=context.client.client_id,
            redirect_uri=context.redirect_uri,
            scope=scope,
            state=context.state,
            code_challenge=challenge,
            resource=resource,
            browser_hash=opaque.digest(binding),
            created_at=now,
            expires_at=now + REQUEST_TTL,
            dpop_jkt=dpop_jkt,
        )
        steps.requests.put(pending)
        binding_cookie = Cookie(steps.binding_cookie, binding, ENDPOINT_PATH, REQUEST_TTL)
        hidden = steps.hidden(pending, binding)
        if session is None:
            page = steps.login_page(context.client, pending, hidden, error=None)
            shown = "login page shown"
        else:
            page = steps.consent_page(context.client, pending, hidden, session)
            shown = f"consent page shown to {session.username}"
        steps.connections.record(
            succeeded(
                context.client.client_id,
                "authorize",
                f"valid request for {resource} ({' '.join(scope)}); {shown}",
                page.status,
            )
        )
        return Page(page.html, page.status, page.form_targets, (binding_cookie,))

    def _context(self, params: dict[str, str], now: int) -> RequestContext:
        """Client and redirect URI, or a local error page (RFC 6749 §4.1.2.1)."""
        client_id = params.get("client_id")
        if client_id is None or client_id == DUPLICATE:
            raise LocalError("The request has no valid client_id.")
        client = self._resolve_client(client_id, now)
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None or redirect_uri == DUPLICATE:
            detail = "redirect_uri missing or repeated (this server requires it)"
            raise LocalError("The request has no valid redirect_uri.", detail=detail)
        if not redirect_uri_matches(client.redirect_uris, redirect_uri, client.application_type):
            # RFC 6749 §4.1.2.1: never redirected to; the log says which one was asked for
            detail = f"redirect_uri {redirect_uri[:200]} is not registered for this client"
            raise LocalError("The redirect_uri is not registered for this client.", detail=detail)
        if "authorization_code" not in client.grant_types:
            raise LocalError(
                "This client is not allowed to use the authorization code flow.",
                error="unauthorized_client",
                detail="the client is not registered for the authorization_code grant",
            )
        state = params.get("state")
        if state == DUPLICATE or (state is not None and len(state) > MAX_STATE):
            detail = f"state repeated or longer than {MAX_STATE} characters"
            raise LocalError("The state parameter is invalid.", detail=detail)
        return RequestContext(client=client, redirect_uri=redirect_uri, state=state)

    def _resolve_client(self, client_id: str, now: int) -> ClientRecord:
        if cimd.is_client_id_metadata_url(client_id):
            return self._metadata_document_client(client_id, now)
        return self._steps.client(client_id, now)

    def _metadata_document_client(self, url: str, now: int) -> ClientRecord:
        """A CIMD client: the stored record while its document is fresh, else the document fetched
        again — never for a client an administrator disabled or deleted, whose state no fetch
        changes (`ClientStore.save_metadata_document`)."""
        clients = self._steps.clients
        stored = clients.get_any(url)
        if stored is not None and (stored.disabled or stored.is_deleted):
            detail = f"{'deleted' if stored.is_deleted else 'disabled'} by an administrator"
            raise LocalError(UNUSABLE_CLIENT, error="invalid_client", detail=detail)
        if stored is not None and (not stored.metadata_document or (stored.metadata_fresh_until or 0) > now):
            return stored
        try:
            # whoever starts a request picks the URL: fetches per host are bounded
            self._steps.rates.hit(self._steps.rules.metadata_fetch_host, cimd.fetch_host(url), now)
        except TooManyRequests as exc:
            raise LocalError(
                "Too many sign-ins for applications of this host just now. Try again in a minute.",
                status=429,
                error="slow_down",
                detail="too many metadata document fetches from this host in the last minute; not fetched",
                step="discovery",
            ) from exc
        try:
            fetched = self._fetch_metadata(url)
            metadata = cimd.validate_client_metadata(url, fetched.document)
        except cimd.ClientMetadataError as exc:
            logger.info("client metadata document refused", extra={"reason": str(exc)})
            # the person sees one answer for every failure; the administrator sees which
            raise LocalError(
                UNUSABLE_DOCUMENT,
                error="invalid_client_metadata",
                detail=f"metadata document refused: {exc}",
                step="discovery",
            ) from exc
        record = ClientRecord(
            client_id=url,
            client_name=metadata.client_name,
            token_endpoint_auth_method=metadata.token_endpoint_auth_method,
            jwks=json.dumps(metadata.jwks, separators=(",", ":")) if metadata.jwks else None,
            jwks_uri=metadata.jwks_uri,
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
        saved = clients.save_metadata_document(record)
        if saved is None:  # disabled or deleted meanwhile
            raise LocalError(
                UNUSABLE_CLIENT, error="invalid_client", detail="disabled or deleted by an administrator"
            )
        self._steps.connections.record(
            succeeded(
                url,
                "discovery",
                f"metadata document fetched and valid; cached for {fetched.cache_seconds} s",
                client_name=saved.client_name,
            )
        )
        return saved
