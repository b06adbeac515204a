"""Connected apps (/account) for every user, client administration (/admin) for admins."""

from __future__ import annotations

from wallet_mcp import coldstart  # isort: skip  (first: the GC rests while the rest loads)

from collections.abc import Awaitable, Callable

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Request
from fastapi.responses import Response

from wallet_mcp import aws
from wallet_mcp.account.bootstrap import PATH as BOOTSTRAP_PATH
from wallet_mcp.account.bootstrap import AdminBootstrap
from wallet_mcp.account.client_admin import ClientAdmin
from wallet_mcp.account.confirm import ConfirmationPages
from wallet_mcp.account.enterprise import EnterpriseAdmin
from wallet_mcp.account.grants import Grants
from wallet_mcp.account.limits import LimitPages
from wallet_mcp.account.portal import CLIENT_GROUPS, AccountPortal, Provenance, Refused, refused_page
from wallet_mcp.compose import Deployment
from wallet_mcp.config import settings
from wallet_mcp.oauth.rules.lifetimes import Lifetimes
from wallet_mcp.observability import correlated, traced
from wallet_mcp.primitives.errors import OAuthError
from wallet_mcp.primitives.forms import PageForm, parse_page_form
from wallet_mcp.signin.password import SignIn
from wallet_mcp.web import pages
from wallet_mcp.web.app import create_app
from wallet_mcp.web.cookies import CookieJar
from wallet_mcp.web.lambda_adapter import lambda_adapter
from wallet_mcp.web.outcomes import Outcome, Page, render

deployment = Deployment(settings())
SETTINGS = deployment.settings
logger = Logger()
stores = deployment.stores
clock = deployment.clock
revoker = deployment.revoker
sign_in = SignIn(
    users=stores.users,
    sessions=stores.sessions,
    rates=stores.rate_limits,
    audit=stores.audit,
    rules=deployment.rate_rules,
    secure=not SETTINGS.is_local,
)
portal = AccountPortal(
    issuer=SETTINGS.issuer,
    sign_in=sign_in,
    users=stores.users,
    grants=Grants(
        consents=stores.consents,
        refresh_tokens=stores.refresh_tokens,
        clients=stores.clients,
        personal_tokens=stores.personal_tokens,
        revoker=revoker,
        idp_names={idp.id: idp.name for idp in SETTINGS.trusted_idps},
    ),
    admin=ClientAdmin(
        stores.clients,
        stores.users,
        stores.audit,
        stores.revocations,
        revoker,
        access_token_ttl=SETTINGS.access_token_ttl,
        bounds=Lifetimes.bounds(SETTINGS),
        clock=clock,
        connections=stores.connection_log,
        fapi2=SETTINGS.fapi2_profile,
    ),
    revoker=revoker,
    audit=stores.audit,
    clock=clock,
    upstream=[(provider.id, provider.name) for provider in SETTINGS.identity_providers],
    confirmations=stores.confirmations,
    confirmation_threshold_max=SETTINGS.confirmation_threshold_max,
    enterprise=EnterpriseAdmin(
        SETTINGS.trusted_idps,
        stores.consents,
        stores.users,
        stores.revocations,
        revoker,
        clock,
        links=stores.identity_links,
        audit=stores.audit,
    ),
)
limits = LimitPages(portal, stores.consents, stores.clients, stores.wallet, stores.audit, clock=clock)
confirmations = ConfirmationPages(
    portal,
    stores.confirmations,
    stores.clients,
    stores.audit,
    sign_in=sign_in,
    step_up_over=SETTINGS.confirmation_step_up_over,
    clock=clock,
)
bootstrap = AdminBootstrap(
    users=stores.users,
    audit=stores.audit,
    database=stores.database,
    rates=stores.rate_limits,
    failures=deployment.rate_rules.login_address_failures,
    digest=SETTINGS.bootstrap_admin_token_sha256,
    issuer=SETTINGS.issuer,
    secure=not SETTINGS.is_local,
    clock=clock,
)
app = create_app("wallet-mcp account and administration pages", realm=SETTINGS.issuer)


def _respond(decide: Callable[[], Outcome]) -> Response:
    try:
        outcome = decide()
    except Refused as exc:
        outcome = refused_page(exc)
    except (ClientError, BotoCoreError) as exc:
        if not aws.is_transient(exc):
            raise
        logger.warning("dependency unavailable", extra={"error": type(exc).__name__})
        page = pages.error_page(
            "Temporarily unavailable", "Something we depend on is not answering. Try again."
        )
        outcome = Page(page, status=503, retry_after=1)
    return render(outcome, secure=portal.secure)


async def _form(request: Request) -> PageForm | Response:
    try:
        return parse_page_form(
            await request.body(), request.headers.get("content-type"), groups=CLIENT_GROUPS
        )
    except OAuthError as exc:
        return render(refused_page(Refused(exc.status_code, exc.description)), secure=portal.secure)


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _post(
    handler: Callable[[PageForm, CookieJar, Provenance, str], Outcome],
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        form = await _form(request)
        if isinstance(form, Response):
            return form
        sent_from = Provenance(request.headers.get("origin"), request.headers.get("sec-fetch-site"))
        cookies, source = CookieJar(request.cookies), _source(request)
        return _respond(lambda: handler(form, cookies, sent_from, source))

    return endpoint


@app.get("/account")
async def account(request: Request) -> Response:
    return _respond(lambda: portal.account(CookieJar(request.cookies), request.query_params))


@app.get("/account/confirm")
async def confirm(request: Request) -> Response:
    return _respond(lambda: confirmations.show(CookieJar(request.cookies), request.query_params))


@app.get("/account/limits")
async def account_limits(request: Request) -> Response:
    return _respond(lambda: limits.show(CookieJar(request.cookies), request.query_params))


@app.get("/admin")
async def admin_clients(request: Request) -> Response:
    return _respond(lambda: portal.clients(CookieJar(request.cookies), request.query_params))


@app.get("/admin/clients/new")
async def admin_new_client(request: Request) -> Response:
    return _respond(lambda: portal.new_client(CookieJar(request.cookies)))


@app.get("/admin/client")
async def admin_client(request: Request) -> Response:
    return _respond(lambda: portal.client(CookieJar(request.cookies), request.query_params))


@app.get("/admin/connections")
async def admin_connection_failures(request: Request) -> Response:
    return _respond(lambda: portal.connection_failures(CookieJar(request.cookies)))


@app.get(BOOTSTRAP_PATH)
async def admin_bootstrap(request: Request) -> Response:
    return _respond(lambda: bootstrap.show(CookieJar(request.cookies)))


@app.get("/admin/users")
async def admin_users(request: Request) -> Response:
    return _respond(lambda: portal.user_grants(CookieJar(request.cookies), request.query_params))


@app.get("/admin/enterprise")
async def admin_enterprise(request: Request) -> Response:
    return _respond(lambda: portal.enterprise_idps(CookieJar(request.cookies), request.query_params))


app.add_api_route(
    "/admin/enterprise",
    _post(lambda f, c, o, s: portal.enterprise_action(f.fields, c, o, s)),
    methods=["POST"],
)
app.add_api_route(
    "/account", _post(lambda f, c, o, s: portal.submit_sign_in(f.fields, c, o, s)), methods=["POST"]
)
app.add_api_route(
    "/account/sign-out", _post(lambda f, c, o, s: portal.sign_out(f.fields, c, o, s)), methods=["POST"]
)
app.add_api_route(
    "/account/revoke", _post(lambda f, c, o, s: portal.revoke_own(f.fields, c, o, s)), methods=["POST"]
)
app.add_api_route(
    "/account/tokens/revoke",
    _post(lambda f, c, o, s: portal.revoke_own_token(f.fields, c, o, s)),
    methods=["POST"],
)
app.add_api_route(
    "/account/confirm",
    _post(lambda f, c, o, s: confirmations.decide(f.fields, c, o, s)),
    methods=["POST"],
)
app.add_api_route(
    "/account/limits", _post(lambda f, c, o, s: limits.submit(f.fields, c, o, s)), methods=["POST"]
)
app.add_api_route(
    "/account/confirmations/threshold",
    _post(lambda f, c, o, s: confirmations.set_threshold(f.fields, c, o, s)),
    methods=["POST"],
)
app.add_api_route(
    BOOTSTRAP_PATH, _post(lambda f, c, o, s: bootstrap.submit(f.fields, c, o, s)), methods=["POST"]
)
app.add_api_route("/admin/clients", _post(portal.create_client), methods=["POST"])
app.add_api_route("/admin/client", _post(portal.client_action), methods=["POST"])
app.add_api_route(
    "/admin/users/revoke",
    _post(lambda f, c, o, s: portal.revoke_user_grant(f.fields, c, o, s)),
    methods=["POST"],
)
app.add_api_route(
    "/admin/users/tokens/revoke",
    _post(lambda f, c, o, s: portal.revoke_user_token(f.fields, c, o, s)),
    methods=["POST"],
)
app.add_api_route(
    "/admin/users/disable", _post(lambda f, c, o, s: portal.disable_user(f.fields, c, o, s)), methods=["POST"]
)
app.add_api_route(
    "/admin/users/enable", _post(lambda f, c, o, s: portal.enable_user(f.fields, c, o, s)), methods=["POST"]
)

lambda_handler = traced(
    correlated(
        logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)(
            lambda_adapter(app)
        )
    )
)

coldstart.loaded()
