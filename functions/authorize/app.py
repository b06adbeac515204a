"""The OAuth authorization endpoint: login and consent pages, authorization codes."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

import functools
import time
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Request
from fastapi.responses import Response
from mangum import Mangum

from wallet_mcp import aws
from wallet_mcp.config import settings
from wallet_mcp.oauth.authorize_endpoint import AuthorizeEndpoint
from wallet_mcp.oauth.errors import OAuthError
from wallet_mcp.oauth.forms import parse_form
from wallet_mcp.observability import traced
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.storage.auth_codes import AuthCodeStore
from wallet_mcp.storage.auth_requests import AuthRequestStore
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.storage.consents import ConsentStore
from wallet_mcp.storage.rate_limits import RateLimits
from wallet_mcp.storage.revocations import RevocationList
from wallet_mcp.storage.sessions import SessionStore
from wallet_mcp.storage.users import UserStore
from wallet_mcp.web import pages
from wallet_mcp.web.app import create_app
from wallet_mcp.web.cookies import CookieJar
from wallet_mcp.web.outcomes import Outcome, render

if TYPE_CHECKING:
    from wallet_mcp.oauth.upstream.flow import UpstreamSignIn

SETTINGS = settings()
logger = Logger()
db = aws.dynamodb()
audit = AuditLog(db, SETTINGS.tables.require("audit"))


@functools.cache
def upstream() -> UpstreamSignIn:
    """The upstream sign-in (docs/identity-providers.md), imported and built on its first request."""
    from wallet_mcp.oauth.upstream.flow import build_upstream_sign_in

    return build_upstream_sign_in(
        SETTINGS,
        db,
        auth_requests_table=SETTINGS.tables.require("auth_requests"),
        users_table=SETTINGS.tables.require("users"),
        audit=audit,
    )


endpoint = AuthorizeEndpoint(
    SETTINGS,
    clients=ClientStore(db, SETTINGS.tables.require("clients")),
    users=UserStore(db, SETTINGS.tables.require("users")),
    sessions=SessionStore(db, SETTINGS.tables.require("sessions")),
    requests=AuthRequestStore(db, SETTINGS.tables.require("auth_requests")),
    consents=ConsentStore(db, SETTINGS.tables.require("consents")),
    codes=AuthCodeStore(db, SETTINGS.tables.require("auth_codes")),
    rates=RateLimits(db, SETTINGS.tables.require("rate_limits")),
    audit=audit,
    clock=lambda: int(time.time()),
    dynamodb=db,
    revocations=RevocationList(db, SETTINGS.tables.require("revoked_tokens")),
    upstream=upstream,
)
app = create_app("wallet-mcp authorization endpoint", realm=SETTINGS.issuer)


def _render(outcome: Outcome) -> Response:
    return render(outcome, secure=endpoint.secure_cookies)


def _unavailable(exc: Exception) -> Response:
    """A failing dependency: an HTML page, 503 with Retry-After; the request is still pending."""
    if not aws.is_transient(exc):
        raise exc
    logger.warning("dependency unavailable", extra={"error": type(exc).__name__})
    headers = {**pages.page_headers(secure=endpoint.secure_cookies), "Retry-After": "1"}
    page = pages.error_page("Temporarily unavailable", "Something we depend on is not answering. Try again.")
    return pages.html(page, status=503, headers=headers)


@app.get("/oauth/authorize")
async def authorize(request: Request) -> Response:
    try:
        return _render(endpoint.start(request.url.query, CookieJar(request.cookies)))
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(exc)


@app.post("/oauth/authorize")
async def authorize_submit(request: Request) -> Response:
    try:
        form = parse_form(await request.body(), request.headers.get("content-type"))
    except OAuthError as exc:
        page = pages.error_page("Cannot authorize", exc.description)
        return pages.html(
            page, status=exc.status_code, headers=pages.page_headers(secure=endpoint.secure_cookies)
        )
    source = request.client.host if request.client else "unknown"
    try:
        return _render(endpoint.submit(form, CookieJar(request.cookies), source))
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(exc)


@app.get("/oauth/authorize/upstream/{provider}")
async def upstream_start(provider: str, request: Request) -> Response:
    try:
        return _render(endpoint.upstream_start(provider, request.url.query, CookieJar(request.cookies)))
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(exc)


@app.get("/oauth/authorize/upstream/{provider}/callback")
async def upstream_callback(provider: str, request: Request) -> Response:
    source = request.client.host if request.client else "unknown"
    try:
        return _render(
            endpoint.upstream_callback(provider, request.url.query, CookieJar(request.cookies), source)
        )
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(exc)


lambda_handler = traced(
    logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
        Mangum(app, lifespan="off")
    )
)

coldstart.loaded()
