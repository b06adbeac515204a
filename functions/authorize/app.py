"""The OAuth authorization endpoint: login and consent pages, authorization codes, and the sign-in
with an upstream identity provider (one module per route under `wallet_mcp.oauth.server`)."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

import functools
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Request
from fastapi.responses import Response

from wallet_mcp import aws
from wallet_mcp.compose import Deployment
from wallet_mcp.config import settings
from wallet_mcp.oauth.server.authorize import AuthorizeStart
from wallet_mcp.oauth.server.authorize_steps import AuthorizeSteps
from wallet_mcp.oauth.server.consent import AuthorizeSubmit
from wallet_mcp.oauth.server.upstream_routes import UpstreamRoutes
from wallet_mcp.observability import correlated, traced
from wallet_mcp.primitives.errors import OAuthError
from wallet_mcp.primitives.forms import parse_form
from wallet_mcp.web import pages
from wallet_mcp.web.app import create_app
from wallet_mcp.web.cookies import CookieJar
from wallet_mcp.web.lambda_adapter import lambda_adapter
from wallet_mcp.web.outcomes import Outcome, render

if TYPE_CHECKING:
    from wallet_mcp.signin.upstream.flow import UpstreamSignIn

deployment = Deployment(settings())
SETTINGS = deployment.settings
logger = Logger()
stores = deployment.stores


@functools.cache
def upstream() -> UpstreamSignIn:
    """The upstream sign-in (docs/identity-providers.md), imported and built on its first request."""
    from wallet_mcp.signin.upstream.flow import build_upstream_sign_in

    return build_upstream_sign_in(
        SETTINGS, logins=stores.upstream_logins, links=stores.identity_links, audit=stores.audit
    )


steps = AuthorizeSteps(
    SETTINGS,
    clients=stores.clients,
    users=stores.users,
    sessions=stores.sessions,
    requests=stores.auth_requests,
    consents=stores.consents,
    codes=stores.auth_codes,
    rates=stores.rate_limits,
    audit=stores.audit,
    clock=deployment.clock,
    database=stores.database,
    revocations=stores.revocations,
    connections=stores.connection_log,
    providers=SETTINGS.identity_providers,
    pushed=stores.pushed_requests,
    wallet=stores.wallet if stores.has("wallet") else None,
)
start = AuthorizeStart(steps)
submit = AuthorizeSubmit(steps)
upstream_routes = UpstreamRoutes(steps, upstream)
app = create_app("wallet-mcp authorization endpoint", realm=SETTINGS.issuer)


def _render(outcome: Outcome) -> Response:
    return render(outcome, secure=steps.secure_cookies)


def _unavailable(exc: Exception) -> Response:
    """A failing dependency: an HTML page, 503 with Retry-After; the request is still pending."""
    if not aws.is_transient(exc):
        raise exc
    logger.warning("dependency unavailable", extra={"error": type(exc).__name__})
    headers = {**pages.page_headers(secure=steps.secure_cookies), "Retry-After": "1"}
    page = pages.error_page("Temporarily unavailable", "Something we depend on is not answering. Try again.")
    return pages.html(page, status=503, headers=headers)


@app.get("/oauth/authorize")
async def authorize(request: Request) -> Response:
    try:
        return _render(start.start(request.url.query, CookieJar(request.cookies)))
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(exc)


@app.post("/oauth/authorize")
async def authorize_submit(request: Request) -> Response:
    try:
        form = parse_form(await request.body(), request.headers.get("content-type"))
    except OAuthError as exc:
        page = pages.error_page("Cannot authorize", exc.description)
        return pages.html(
            page, status=exc.status_code, headers=pages.page_headers(secure=steps.secure_cookies)
        )
    source = request.client.host if request.client else "unknown"
    try:
        return _render(submit.submit(form, CookieJar(request.cookies), source))
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(exc)


@app.get("/oauth/authorize/upstream/{provider}")
async def upstream_start(provider: str, request: Request) -> Response:
    try:
        return _render(
            upstream_routes.upstream_start(provider, request.url.query, CookieJar(request.cookies))
        )
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(exc)


@app.get("/oauth/authorize/upstream/{provider}/callback")
async def upstream_callback(provider: str, request: Request) -> Response:
    source = request.client.host if request.client else "unknown"
    try:
        return _render(
            upstream_routes.upstream_callback(provider, request.url.query, CookieJar(request.cookies), source)
        )
    except (ClientError, BotoCoreError) as exc:
        return _unavailable(exc)


lambda_handler = traced(
    correlated(
        logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
            lambda_adapter(app)
        )
    )
)

coldstart.loaded()
