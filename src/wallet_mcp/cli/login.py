"""`wallet-mcp login` and `logout`: a person's tokens for the wallet API, as a native app gets them.

Authorization code with PKCE `S256` (RFC 7636; OAuth 2.1 §4.1) through the system browser and a
loopback redirect (RFC 8252 §7.3), by a public client registered once per issuer (RFC 7591,
`token_endpoint_auth_method=none`). The response's `state` must be ours and its `iss` the issuer
(RFC 9207 §2.4, against mix-up) before the code is redeemed; tokens are requested for the API's
resource (RFC 8707). Logout revokes the refresh token, which ends its family and the access tokens
issued from it (RFC 7009 §2.1), then deletes the file.

With DPoP (`--dpop`, `WALLET_MCP_DPOP=1`) the authorization request names the command's key
(`dpop_jkt`, RFC 9449 §10: the code is only redeemable with it) and the code is redeemed with a
proof of it: the saved tokens, the refresh token included, are bound to that key (`cli.dpop`).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import sys
import time
from typing import Any, Final
from urllib.parse import urlencode

import httpx2

from wallet_mcp.cli import dpop as dpop_client
from wallet_mcp.cli.discovery import AuthorizationServer, discover_api_resource, discover_authorization_server
from wallet_mcp.cli.errors import CliError, ConfigurationError, ServiceError
from wallet_mcp.cli.http_client import error_fields, network_reason, new_http_client
from wallet_mcp.cli.loopback import REGISTERED_REDIRECT_URI, LoopbackReceiver, SignInTimeout, launch_browser
from wallet_mcp.cli.settings import CliSettings
from wallet_mcp.cli.storage import ClientRegistrations, LoginRecord, LoginStore
from wallet_mcp.cli.token_sources import request_token
from wallet_mcp.primitives import pkce

logger = logging.getLogger(__name__)

CLIENT_NAME: Final = "wallet-mcp command line"
DEFAULT_SCOPE: Final = (
    "wallet:accounts:read wallet:accounts:write wallet:transactions:read "
    "wallet:transactions:write wallet:analytics:read"
)
"""What the bridged tools need (tests/cli checks it against their scopes)."""


def _issuer_and_api(settings: CliSettings, server: str | None) -> tuple[str, str]:
    if server:
        base = CliSettings.from_env({"AUTHORIZATION_SERVER_URL": server}).authorization_server_url
        assert base is not None
        return base, base
    if settings.server_url is None:
        raise ConfigurationError(
            "which server? Pass --server URL (the issuer, e.g. http://localhost:3000) or set "
            "AUTHORIZATION_SERVER_URL"
        )
    return settings.server_url, settings.backend_api_url or settings.server_url


def register_client(
    http: httpx2.Client, server: AuthorizationServer, scope: str, *, dpop_bound: bool = False
) -> str:
    """RFC 7591: a native public client with the loopback redirect URI; its `client_id`. With
    `dpop_bound` it registers `dpop_bound_access_tokens` (RFC 9449 §5.2): the server then refuses
    any token request of this client that comes without a proof, so its tokens cannot be
    obtained unbound by anyone holding its client_id."""
    if server.registration_endpoint is None:
        raise ServiceError(f"{server.issuer} offers no dynamic client registration")
    metadata: dict[str, Any] = {
        "client_name": CLIENT_NAME,
        "redirect_uris": [REGISTERED_REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
        "scope": scope,
    }
    if dpop_bound:
        metadata["dpop_bound_access_tokens"] = True
    try:
        response = http.post(server.registration_endpoint, json=metadata)
    except httpx2.HTTPError as exc:
        raise ServiceError(f"cannot reach {server.registration_endpoint}: {network_reason(exc)}") from exc
    if response.status_code not in (200, 201):
        _, description = error_fields(response)
        raise ServiceError(f"client registration was refused: {description}")
    client_id = response.json().get("client_id")
    if not isinstance(client_id, str):
        raise ServiceError("the registration response has no client_id")
    logger.info("registered this command as client %s at %s", client_id, server.issuer)
    return client_id


def check_authorization_response(params: dict[str, str], *, state: str, server: AuthorizationServer) -> str:
    """The code of a valid authorization response; CliError for anything else."""
    if not hmac.compare_digest(params.get("state", "").encode(), state.encode()):
        raise CliError("the authorization response does not carry our state; nothing was redeemed")
    issuer = params.get("iss")
    if issuer is not None and issuer != server.issuer:
        # RFC 9207 §2.4: a response from another authorization server (mix-up attack)
        raise CliError(f"the authorization response comes from {issuer!r}, not {server.issuer!r}")
    if issuer is None and server.iss_parameter_supported:
        raise CliError("the authorization response carries no iss although the server promises one")
    if "error" in params:
        description = params.get("error_description") or params["error"]
        raise CliError(f"sign-in was not completed: {description[:300]}")
    code = params.get("code")
    if not code:
        raise CliError("the authorization response carries no code")
    return code


def login(
    settings: CliSettings,
    *,
    server: str | None,
    scope: str | None,
    timeout: float | None,
    open_browser: bool = True,
) -> int:
    issuer_url, api_base_url = _issuer_and_api(settings, server)
    wanted_scope = scope or settings.scope or DEFAULT_SCOPE
    dpop = dpop_client.DpopSession(dpop_client.load_key(settings.config_dir)) if settings.dpop else None
    with new_http_client(settings.http_timeout) as http:
        found = discover_authorization_server(http, issuer_url)
        if found.authorization_endpoint is None:
            raise ServiceError(f"{found.issuer} has no authorization endpoint")
        resource = discover_api_resource(http, api_base_url, found.issuer)
        registrations = ClientRegistrations(settings.config_dir)
        known_client = registrations.get(found.issuer)
        client_id = known_client or register_client(http, found, wanted_scope, dpop_bound=dpop is not None)

        verifier = secrets.token_urlsafe(64)
        state = secrets.token_urlsafe(32)
        with LoopbackReceiver(expected_state=state) as receiver:
            redirect_uri = receiver.redirect_uri
            query: dict[str, Any] = {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": wanted_scope,
                "state": state,
                "code_challenge": pkce.s256(verifier),
                "code_challenge_method": "S256",
                "resource": resource,
            }
            if dpop is not None:
                query["dpop_jkt"] = dpop.jkt
            launch_browser(f"{found.authorization_endpoint}?{urlencode(query)}", open_browser=open_browser)
            try:
                params = receiver.wait(timeout if timeout is not None else settings.login_timeout)
            except SignInTimeout as exc:
                if known_client is None:
                    raise
                raise SignInTimeout(
                    f"{exc.message}. If the browser said the client is unknown, the registration of "
                    f"{known_client} is gone: delete {registrations.path} and sign in again"
                ) from None
        code = check_authorization_response(params, state=state, server=found)
        issued = request_token(
            http,
            found.token_endpoint,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": client_id,
                "code_verifier": verifier,
                "resource": resource,
            },
            dpop=dpop,
        )
    if known_client is None:
        # kept only once it has worked: an abandoned registration is left to expire on the server
        registrations.put(found.issuer, client_id)
    record = LoginRecord(
        issuer=found.issuer,
        client_id=client_id,
        api_base_url=api_base_url,
        resource=resource,
        scope=issued.scope or wanted_scope,
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        obtained_at=issued.obtained_at,
        expires_at=issued.expires_at,
        dpop_jkt=dpop.jkt if dpop is not None else None,
    )
    store = LoginStore(settings.config_dir)
    with store.lock():
        path = store.save(record)
    if issued.refresh_token is None:
        logger.warning("no refresh token was issued: sign in again in %d s", issued.lifetime)
    bound = f", bound to the DPoP key {dpop_client.key_path(settings.config_dir)}" if dpop else ""
    print(
        f"Signed in to {found.issuer} (scope: {record.scope}).\nTokens saved in {path}{bound}",
        file=sys.stderr,
    )
    return 0


def _revoke(http: httpx2.Client, endpoint: str, token: str, hint: str, client_id: str) -> None:
    try:
        response = http.post(endpoint, data={"token": token, "token_type_hint": hint, "client_id": client_id})
    except httpx2.HTTPError as exc:
        raise ServiceError(f"cannot reach {endpoint}: {network_reason(exc)}") from exc
    if response.status_code != 200:
        _, description = error_fields(response)
        raise ServiceError(f"revocation was refused: {description}")


def logout(settings: CliSettings, *, server: str | None) -> int:
    store = LoginStore(settings.config_dir)
    issuer = server.rstrip("/") if server else settings.server_url
    if issuer is not None:
        record = store.load(issuer)
    else:
        records = store.all()
        if len(records) > 1:
            names = ", ".join(r.issuer for r in records)
            raise ConfigurationError(f"signed in to several servers ({names}): pass --server URL")
        record = records[0] if records else None
    if record is None:
        print(f"Not signed in{f' to {issuer}' if issuer else ''}: nothing to do.", file=sys.stderr)
        return 0
    with new_http_client(settings.http_timeout) as http:
        found = discover_authorization_server(http, record.issuer)
        if found.revocation_endpoint is None:
            raise ServiceError(f"{found.issuer} offers no revocation endpoint; the file was kept")
        try:
            if record.refresh_token:
                _revoke(
                    http, found.revocation_endpoint, record.refresh_token, "refresh_token", record.client_id
                )
            if record.expires_at > time.time():
                _revoke(
                    http, found.revocation_endpoint, record.access_token, "access_token", record.client_id
                )
        except ServiceError as exc:
            raise ServiceError(f"{exc.message}; {store.path_for(record.issuer)} was kept, try again") from exc
    with store.lock():
        store.delete(record.issuer)
    print(
        f"Signed out of {record.issuer}: tokens revoked, {store.path_for(record.issuer)} deleted.",
        file=sys.stderr,
    )
    return 0
