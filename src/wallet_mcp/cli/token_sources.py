"""Where the bridge's bearer token for the wallet API comes from, in the brief's order.

1. OAuth client credentials (`MCP_CLIENT_ID`, `MCP_CLIENT_SECRET`, `AUTHORIZATION_SERVER_URL`):
   `grant_type=client_credentials` with `client_secret_basic` (RFC 6749 §4.4, §2.3.1) for the API's
   resource (RFC 8707), requested again ahead of expiry; or, with `MCP_CLIENT_PRIVATE_KEY_FILE`
   instead of the secret, `private_key_jwt` (RFC 7523 §2.2, `cli.client_assertion`).
2. The tokens `wallet-mcp login` saved: refreshed with the refresh token (RFC 6749 §6), the
   rotated refresh token saved at once (rotation is mandatory on this server).
3. `BACKEND_AUTH_TOKEN`: a fixed bearer token (a personal access token), the seed's fallback.

Each source hands out a token and, after the API refused one, can be told to drop it, so the
next call gets a fresh one; a source that cannot (a fixed token) says so.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final, Protocol
from urllib.parse import quote

import httpx2

from wallet_mcp.cli import dpop as dpop_client
from wallet_mcp.cli.client_assertion import AssertionSigner
from wallet_mcp.cli.discovery import AuthorizationServer, discover_api_resource, discover_authorization_server
from wallet_mcp.cli.errors import ServiceError
from wallet_mcp.cli.http_client import error_fields, network_reason
from wallet_mcp.cli.refresh import refresh_due
from wallet_mcp.cli.storage import LoginRecord, LoginStore
from wallet_mcp.storage.personal_tokens import PREFIX as PERSONAL_TOKEN_PREFIX

logger = logging.getLogger(__name__)

DEFAULT_LIFETIME: Final = 300
"""Assumed when a token response omits `expires_in` (RFC 6749 §5.1 only recommends it)."""


class TokenRequestFailed(ServiceError):
    """The token endpoint answered an error (RFC 6749 §5.2); `error` is its code."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    scope: str | None
    obtained_at: float
    expires_at: float

    @property
    def lifetime(self) -> int:
        return round(self.expires_at - self.obtained_at)


def basic_credentials(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1: both parts form-urlencoded, then HTTP Basic."""
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode("ascii")


def request_token(
    http: httpx2.Client,
    token_endpoint: str,
    form: dict[str, str],
    *,
    authorization: str | None = None,
    clock: Callable[[], float] = time.time,
    dpop: dpop_client.DpopSession | None = None,
) -> IssuedToken:
    """A token request; with `dpop`, it carries a proof (and the nonce the server asks for), and
    the token must come back bound (`token_type` DPoP, RFC 9449 §5)."""
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    logger.debug("token request: grant_type=%s to %s", form.get("grant_type"), token_endpoint)
    now = clock()
    try:
        if dpop is not None:
            response = dpop_client.send(http, dpop, "POST", token_endpoint, data=form, headers=headers)
        else:
            response = http.post(token_endpoint, data=form, headers=headers)
    except httpx2.HTTPError as exc:
        raise ServiceError(
            f"cannot reach the token endpoint {token_endpoint}: {network_reason(exc)}"
        ) from exc
    if response.status_code != 200:
        error, description = error_fields(response)
        if error == "invalid_dpop_proof" and dpop is None:
            description = f"{description}; {dpop_client.ENABLE_HINT}"
        raise TokenRequestFailed(error, f"the authorization server refused the token request: {description}")
    try:
        body = response.json()
    except ValueError as exc:
        raise ServiceError(f"{token_endpoint} answered something other than JSON") from exc
    access_token = body.get("access_token") if isinstance(body, dict) else None
    token_type = str(body.get("token_type", "")).lower() if isinstance(body, dict) else ""
    if not isinstance(access_token, str) or token_type not in ("bearer", "dpop"):
        raise ServiceError(f"{token_endpoint} answered no access token")
    if (token_type == "dpop") != (dpop is not None):
        if dpop is not None:
            raise dpop_client.token_type_error(token_endpoint, body.get("token_type"))
        raise ServiceError(f"{token_endpoint} answered a DPoP token to a request without a proof")
    expires_in = body.get("expires_in")
    lifetime = expires_in if isinstance(expires_in, int) and expires_in > 0 else DEFAULT_LIFETIME
    refresh_token = body.get("refresh_token")
    scope = body.get("scope")
    return IssuedToken(
        access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) else None,
        scope=scope if isinstance(scope, str) else None,
        obtained_at=now,
        expires_at=now + lifetime,
    )


class TokenSource(Protocol):
    refreshable: bool
    """Whether `invalidate` can lead to a different token (a fixed token cannot)."""

    def token(self) -> str:
        """A token to send now; ServiceError when none can be had."""
        ...

    def invalidate(self, token: str) -> None:
        """The API refused `token`: do not hand it out again."""
        ...

    def describe(self) -> str:
        """What this source is, for logs and `ping`; never a secret."""
        ...

    def rejected_hint(self) -> str:
        """What to do when even a fresh token is refused."""
        ...


class _Discovered:
    """The authorization server's metadata and the API's resource, discovered once per process."""

    def __init__(self, http: httpx2.Client, issuer: str, api_base_url: str) -> None:
        self._http = http
        self._issuer = issuer
        self._api_base_url = api_base_url
        self._found: tuple[AuthorizationServer, str] | None = None

    def get(self) -> tuple[AuthorizationServer, str]:
        if self._found is None:
            server = discover_authorization_server(self._http, self._issuer)
            resource = discover_api_resource(self._http, self._api_base_url, server.issuer)
            self._found = (server, resource)
        return self._found


class ClientCredentialsSource:
    refreshable = True

    def __init__(
        self,
        http: httpx2.Client,
        *,
        issuer: str,
        api_base_url: str,
        client_id: str,
        client_secret: str | None = None,
        signer: AssertionSigner | None = None,
        scope: str | None,
        clock: Callable[[], float] = time.time,
        dpop: dpop_client.DpopSession | None = None,
    ) -> None:
        """A secret (`client_secret_basic`) or a key (`signer`, `private_key_jwt`), not both;
        `dpop`: the tokens are bound to its key."""
        if (client_secret is None) == (signer is None):
            raise ValueError("a client secret or an assertion signer, exactly one")
        self._http = http
        self._discovered = _Discovered(http, issuer, api_base_url)
        self._client_id = client_id
        self._authorization = basic_credentials(client_id, client_secret) if client_secret else None
        self._signer = signer
        self._scope = scope
        self._clock = clock
        self._dpop = dpop
        self._current: IssuedToken | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            current = self._current
            if current is None or refresh_due(current.obtained_at, current.expires_at, self._clock()):
                current = self._current = self._fetch()
            return current.access_token

    def _fetch(self) -> IssuedToken:
        server, resource = self._discovered.get()
        form = {"grant_type": "client_credentials", "resource": resource}
        if self._scope:
            form["scope"] = self._scope
        if self._signer is not None:
            # RFC 7523 §2.2; its aud is the issuer the discovery confirmed
            form.update(self._signer.form(server.issuer))
        issued = request_token(
            self._http,
            server.token_endpoint,
            form,
            authorization=self._authorization,
            clock=self._clock,
            dpop=self._dpop,
        )
        logger.debug("access token obtained (client_credentials, valid %d s)", issued.lifetime)
        return issued

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._current is not None and self._current.access_token == token:
                self._current = None

    def describe(self) -> str:
        return f"OAuth client credentials of {self._client_id}"

    def rejected_hint(self) -> str:
        return (
            f"a newly issued token of {self._client_id} was refused too: check that BACKEND_API_URL "
            "and AUTHORIZATION_SERVER_URL name the same deployment"
        )


class SavedLoginSource:
    refreshable = True

    def __init__(
        self,
        http: httpx2.Client,
        store: LoginStore,
        record: LoginRecord,
        clock: Callable[[], float] = time.time,
        dpop: dpop_client.DpopSession | None = None,
    ) -> None:
        """`dpop`: the key a bound login's tokens are bound to (its refresh must prove it)."""
        self._http = http
        self._dpop = dpop
        self._store = store
        self._record = record
        self._discovered = _Discovered(http, record.issuer, record.api_base_url)
        self._clock = clock
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            record = self._record
            if refresh_due(record.obtained_at, record.expires_at, self._clock()):
                record = self._record = self._refresh(record)
            return record.access_token

    def _refresh(self, held: LoginRecord) -> LoginRecord:
        with self._store.lock():
            on_disk = self._store.load(held.issuer)
            if on_disk is None:
                raise ServiceError(
                    f"the saved login for {held.issuer} is gone (wallet-mcp logout?): run `wallet-mcp login`"
                )
            if (on_disk.refresh_token, on_disk.access_token) != (held.refresh_token, held.access_token):
                # another process refreshed first: take its pair rather than replay our rotated token
                if not refresh_due(on_disk.obtained_at, on_disk.expires_at, self._clock()):
                    logger.debug("access token taken from the saved login (refreshed by another process)")
                    return on_disk
                held = on_disk
            if not held.refresh_token:
                raise ServiceError(f"the saved login for {held.issuer} has expired: run `wallet-mcp login`")
            server, resource = self._discovered.get()
            form = {
                "grant_type": "refresh_token",
                "refresh_token": held.refresh_token,
                "client_id": held.client_id,
                "resource": resource,
            }
            try:
                issued = request_token(
                    self._http, server.token_endpoint, form, clock=self._clock, dpop=self._dpop
                )
            except TokenRequestFailed as exc:
                if exc.error in ("invalid_grant", "invalid_client"):
                    raise ServiceError(
                        f"the saved login for {held.issuer} is no longer valid (expired or revoked): "
                        "run `wallet-mcp login` again"
                    ) from exc
                raise
            refreshed = replace(
                held,
                access_token=issued.access_token,
                refresh_token=issued.refresh_token or held.refresh_token,
                scope=issued.scope or held.scope,
                obtained_at=issued.obtained_at,
                expires_at=issued.expires_at,
            )
            self._store.save(refreshed)
            logger.debug("access token obtained (refresh_token, valid %d s)", issued.lifetime)
            return refreshed

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._record.access_token == token:
                self._record = self._record.expired()

    def describe(self) -> str:
        return f"the saved login for {self._record.issuer}"

    def rejected_hint(self) -> str:
        return "run `wallet-mcp login` again"


class StaticTokenSource:
    refreshable = False

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        pass

    def describe(self) -> str:
        kind = (
            "a personal access token"
            if self._token.startswith(PERSONAL_TOKEN_PREFIX)
            else "a fixed bearer token"
        )
        return f"BACKEND_AUTH_TOKEN ({kind})"

    def rejected_hint(self) -> str:
        return (
            "BACKEND_AUTH_TOKEN is unknown, expired or revoked: create a new personal access token "
            "(wallet-mcp admin create-token) or configure OAuth (docs/clients.md)"
        )
