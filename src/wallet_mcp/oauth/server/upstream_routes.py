"""Signing in with an upstream OpenID provider instead of a password (signin/upstream/,
docs/identity-providers.md): the routes that send the browser there and bring it back.

`GET /oauth/authorize/upstream/<id>?request_id=…` leaves from the login page of a pending request
(links, never a second form) and `GET /oauth/authorize/upstream/<id>/callback` comes back; after
the callback the request continues exactly as after a password sign-in. Both live under the
authorization endpoint's path so that its browser-binding cookie reaches them: the callback must
come from the browser that started the request (login CSRF: RFC 6749 §10.12, RFC 9700 §4.7).
Without `request_id` (`?next=/account`) the same routes sign in to the account pages, bound to
the browser by a cookie of their own. The upstream code is imported on first use only: a
password sign-in never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from wallet_mcp.credentials import opaque
from wallet_mcp.oauth.server.authorize import parse_query
from wallet_mcp.oauth.server.authorize_errors import LocalError, RequestContext
from wallet_mcp.oauth.server.authorize_steps import UPSTREAM_PATH, AuthorizeSteps
from wallet_mcp.storage.auth_requests import PendingAuthorization
from wallet_mcp.storage.connection_log import failed
from wallet_mcp.web import pages
from wallet_mcp.web.cookies import Cookie, CookieJar
from wallet_mcp.web.outcomes import Outcome, Page, Redirect
from wallet_mcp.web.paths import HOME, safe_next

if TYPE_CHECKING:
    from wallet_mcp.config.upstream import IdentityProvider
    from wallet_mcp.signin.upstream.flow import UpstreamSignIn
    from wallet_mcp.storage.upstream_logins import UpstreamLogin

ACCOUNT_SIGN_IN_TTL: Final = 10 * 60
OTHER_BROWSER: Final = "This sign-in was started in another browser."


def _unavailable(provider: IdentityProvider, exc: Exception) -> str:
    return f"Sign-in with {provider.name} is unavailable right now ({exc}). Try again later."


class UpstreamRoutes:
    def __init__(self, steps: AuthorizeSteps, upstream: Callable[[], UpstreamSignIn]) -> None:
        """`upstream`: the upstream sign-in, built on first use."""
        self._steps = steps
        self._upstream = upstream
        self.account_binding_cookie = "wallet_upstream"

    def upstream_start(self, provider_id: str, query: str, cookies: CookieJar) -> Outcome:
        """`GET /oauth/authorize/upstream/<id>?request_id=…`: off to the provider."""
        from wallet_mcp.primitives.fetch import UpstreamUnavailable

        try:
            now = self._steps.clock()
            provider = self._provider(provider_id)
            params = parse_query(query)
            if "request_id" not in params:
                return self._account_start(provider, safe_next(params.get("next")), now)
            pending = self._steps.bound_request(params["request_id"], cookies, now)
            try:
                location = self._upstream().begin(provider, pending, now)
            except UpstreamUnavailable as exc:
                return self._login_again(pending, cookies, _unavailable(provider, exc), status=502, now=now)
            return Redirect(location, status=303)
        except LocalError as exc:
            return exc.page("Cannot sign in")

    def upstream_callback(
        self, provider_id: str, query: str, cookies: CookieJar, source: str = "unknown"
    ) -> Outcome:
        """`GET /oauth/authorize/upstream/<id>/callback?code=…&state=…`: back from the provider."""
        from wallet_mcp.primitives.fetch import UpstreamUnavailable
        from wallet_mcp.signin.upstream.flow import UpstreamRefused

        steps = self._steps
        try:
            now = steps.clock()
            provider = self._provider(provider_id)
            params = parse_query(query)
            flow = self._upstream()
            state = params.get("state", "")
            login = flow.take(state, now)
            if login is None or login.provider_id != provider.id:
                raise LocalError("This sign-in has expired or was already used. Start again from the app.")
            if login.return_to is not None:
                return self._account_callback(provider, login, state, params, cookies, source, now)
            # the browser that started it, and no other (login CSRF: RFC 6749 §10.12)
            if not opaque.matches(cookies.get(steps.binding_cookie) or "", login.browser_hash):
                raise LocalError(OTHER_BROWSER, status=403)
            pending = steps.bound_request(login.request_id, cookies, now)
            client = steps.client(pending.client_id, now)
            try:
                signed_in = flow.complete(
                    provider, login, state, params, now=now, source=source, client_id=client.client_id
                )
            except UpstreamRefused as refused:
                steps.connections.record(
                    failed(
                        client.client_id,
                        "login",
                        "upstream_refused",
                        f"{provider.name}: {refused.reason}",
                        400,
                    )
                )
                return self._login_again(pending, cookies, refused.message, status=400, now=now)
            except UpstreamUnavailable as exc:
                steps.connections.record(
                    failed(
                        client.client_id, "login", "upstream_unavailable", _unavailable(provider, exc), 502
                    )
                )
                return self._login_again(pending, cookies, _unavailable(provider, exc), status=502, now=now)
            context = RequestContext(client=client, redirect_uri=pending.redirect_uri, state=pending.state)
            hidden = self._hidden(pending, cookies)
            return steps.signed_in(context, pending, hidden, signed_in.user, now, how=f"with {provider.name}")
        except LocalError as exc:
            return exc.page("Cannot sign in")

    def _account_start(self, provider: IdentityProvider, return_to: str, now: int) -> Outcome:
        """`GET /oauth/authorize/upstream/<id>?next=/account`: signing in to the account pages
        (docs/account.md), with no authorization request behind it. A fresh cookie binds the
        sign-in to this browser (login CSRF, RFC 6749 §10.12)."""
        from wallet_mcp.primitives.fetch import UpstreamUnavailable

        binding = opaque.new_secret()
        try:
            location = self._upstream().begin_account(provider, opaque.digest(binding), return_to, now)
        except UpstreamUnavailable as exc:
            return Page(pages.error_page("Cannot sign in", _unavailable(provider, exc)), status=502)
        cookie = Cookie(self.account_binding_cookie, binding, UPSTREAM_PATH, ACCOUNT_SIGN_IN_TTL)
        return Redirect(location, status=303, cookies=(cookie,))

    def _account_callback(
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
        from wallet_mcp.primitives.fetch import UpstreamUnavailable
        from wallet_mcp.signin.upstream.flow import UpstreamRefused

        if not opaque.matches(cookies.get(self.account_binding_cookie) or "", login.browser_hash):
            raise LocalError(OTHER_BROWSER, status=403)
        spent = Cookie(self.account_binding_cookie, "", UPSTREAM_PATH, 0)
        try:
            signed_in = self._upstream().complete(
                provider, login, state, params, now=now, source=source, client_id=None
            )
        except UpstreamRefused as refused:
            return Page(pages.error_page("Cannot sign in", refused.message), status=400, cookies=(spent,))
        except UpstreamUnavailable as exc:
            page = pages.error_page("Cannot sign in", _unavailable(provider, exc))
            return Page(page, status=502, cookies=(spent,))
        opened = self._steps.sign_in.open_session(signed_in.user, now)
        return Redirect(login.return_to or HOME, status=303, cookies=(opened.cookie, spent))

    def _provider(self, provider_id: str) -> IdentityProvider:
        provider = self._steps.providers.get(provider_id)
        if provider is None:
            raise LocalError("This sign-in provider is not offered here.", status=404)
        return provider

    def _hidden(self, pending: PendingAuthorization, cookies: CookieJar) -> dict[str, str]:
        """The pages' hidden fields; the binding cookie was checked by `bound_request`."""
        return self._steps.hidden(pending, cookies.get(self._steps.binding_cookie) or "")

    def _login_again(
        self, pending: PendingAuthorization, cookies: CookieJar, message: str, *, status: int, now: int
    ) -> Outcome:
        """The login page again with what went wrong, so the user can try another way."""
        client = self._steps.client(pending.client_id, now)
        page = self._steps.login_page(client, pending, self._hidden(pending, cookies), error=message)
        return Page(page.html, status, page.form_targets)
