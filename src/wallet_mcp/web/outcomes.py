"""What a page handler decides (a page or a redirect, with cookies) and how it goes out over HTTP."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.responses import RedirectResponse, Response

from wallet_mcp.web import pages
from wallet_mcp.web.cookies import Cookie


@dataclass(frozen=True, slots=True)
class Page:
    html: str
    status: int = 200
    form_targets: tuple[str, ...] = ()
    cookies: tuple[Cookie, ...] = ()
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    location: str
    status: int = 302
    cookies: tuple[Cookie, ...] = ()


Outcome = Page | Redirect


def render(outcome: Outcome, *, secure: bool) -> Response:
    """The HTTP response: pages with the security headers of `pages.page_headers`, redirects that
    are never cached and send no referrer, cookies HttpOnly, SameSite=Lax and (deployed) Secure."""
    response: Response
    if isinstance(outcome, Page):
        headers = pages.page_headers(form_targets=outcome.form_targets, secure=secure)
        if outcome.retry_after is not None:
            headers["Retry-After"] = str(outcome.retry_after)
        response = pages.html(outcome.html, status=outcome.status, headers=headers)
    else:
        response = RedirectResponse(outcome.location, status_code=outcome.status)
        response.headers.update({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
    for cookie in outcome.cookies:
        response.set_cookie(
            cookie.name,
            cookie.value,
            max_age=cookie.max_age,
            path=cookie.path,
            secure=secure,
            httponly=cookie.http_only,
            samesite="lax",
        )
    return response
