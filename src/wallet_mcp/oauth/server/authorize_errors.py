"""Errors of the authorization endpoint, and where each one may go (RFC 6749 §4.1.2.1).

Until the client and its redirect URI are validated, an error is shown on this server's own page
(`LocalError`): the redirect URI cannot be trusted yet. After, an error (`RedirectError`) may go
back to the client with `error`, a fixed `error_description` of ours (never text from the
request), `state` and `iss` (RFC 9207 §2) — but only once the person has signed in here, which
the routes decide (RFC 9700 §4.11.2).

Both carry, for the connection log only (never shown to the person nor sent to the client), the
error code the step ended with and what exactly was wrong (`detail`): which redirect URI, which
scope, why a metadata document was refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from wallet_mcp.storage.clients import ClientRecord
from wallet_mcp.storage.connection_log import Step
from wallet_mcp.web import pages
from wallet_mcp.web.outcomes import Page, Redirect

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
SPENT: Final = "This sign-in request was already used. Start again from the app."
EXPIRED: Final = "This sign-in request has expired or was already used. Start again from the app."


class LocalError(Exception):
    """An error shown on this server's own page (the redirect URI cannot be trusted yet).

    `error`, `detail` and `step` are for the connection log: the code the step ended with, what
    was wrong in the administrator's words (default: `message`), and the step when it is not the
    one the route is taking (a metadata document refused is `discovery`)."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        *,
        error: str = "invalid_request",
        detail: str | None = None,
        step: Step | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error
        self.detail = detail or message
        self.step = step

    def page(self, title: str) -> Page:
        return Page(pages.error_page(title, self.message), status=self.status)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """A request whose client and redirect URI are known: errors may now redirect."""

    client: ClientRecord
    redirect_uri: str
    state: str | None


class RedirectError(Exception):
    """An error about a request whose client and redirect URI are known: redirected to the client
    when the person is signed in, shown here otherwise."""

    def __init__(self, context: RequestContext, error: str, detail: str | None = None) -> None:
        """`detail`: what exactly was wrong, for the connection log (the client gets the fixed
        description of `error`)."""
        self.description = ERROR_DESCRIPTIONS.get(error, ERROR_DESCRIPTIONS["invalid_request"])
        super().__init__(self.description)
        self.context = context
        self.error = error
        self.detail = detail or self.description

    def redirect(self, issuer: str, *, status: int) -> Redirect:
        """RFC 6749 §4.1.2.1 with RFC 9207 §2: `iss` on error responses too."""
        location = with_query(
            self.context.redirect_uri,
            {
                "error": self.error,
                "error_description": self.description,
                "state": self.context.state,
                "iss": issuer,
            },
        )
        return Redirect(location, status=status)


def with_query(uri: str, params: Mapping[str, str | None]) -> str:
    """`uri` with `params` added to the query it already has (RFC 6749 §3.1.2: it is kept)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in params.items() if v is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))
