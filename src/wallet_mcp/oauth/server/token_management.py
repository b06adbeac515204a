"""Revocation (RFC 7009) and introspection (RFC 7662) of this server's tokens.

Access tokens are JWTs we signed: they are recognised by their signature, revoked by listing their
`jti` until they expire. Refresh tokens are opaque: looked up by digest; revoking one ends its
whole family, and with it every access token issued from the family (RFC 7009 §2.1: "all access
tokens based on the same authorization grant"). Introspection answers `active` only while the
grant is alive by the same rule the resource servers apply (`oauth.rules.grants`), on a consistent
read of the revocation entries that concern the token.

A client may revoke or introspect only tokens issued to it; anything else answers as an unknown
token would (revocation: 200; introspection: `{"active": false}`), so neither endpoint tells a
client whether another client's token exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from wallet_mcp.config import RateLimitSettings
from wallet_mcp.credentials import opaque
from wallet_mcp.limits import Rules
from wallet_mcp.oauth.rules.grants import NOT_READ, Grant, refusal
from wallet_mcp.oauth.rules.lifetimes import Lifetimes, refresh_deadlines
from wallet_mcp.oauth.server.client_auth import ClientAuthenticator, presented_client
from wallet_mcp.oauth.server.token import REFRESH_TOKEN_PREFIX, TokenStores
from wallet_mcp.primitives.errors import InvalidClient, InvalidRequest
from wallet_mcp.primitives.scopes import format_scope
from wallet_mcp.storage.audit import AuditEvent
from wallet_mcp.tokens.access_tokens import AccessToken, AccessTokenVerifier, InvalidAccessToken

if TYPE_CHECKING:
    from wallet_mcp.storage.clients import ClientRecord
    from wallet_mcp.storage.refresh_tokens import RefreshToken

_MAX_TOKEN = 8192
_INACTIVE: dict[str, Any] = {"active": False}


class TokenManagement:
    def __init__(
        self,
        stores: TokenStores,
        verifier: AccessTokenVerifier,
        issuer: str,
        clock: Callable[[], int],
        rate_limits: RateLimitSettings,
        *,
        bounds: Lifetimes,
        authenticator: ClientAuthenticator,
    ) -> None:
        """`bounds`: the deployment's token lifetimes (a refresh token's client may have shorter)."""
        self._authenticator = authenticator
        self._stores = stores
        self._bounds = bounds
        self._rules = Rules.from_settings(rate_limits)
        self._verifier = verifier
        self._issuer = issuer
        self._clock = clock

    def _authenticate(
        self, form: Mapping[str, str], authorization: str | None, now: int, endpoint: str
    ) -> ClientRecord:
        presented = presented_client(form, authorization)
        record = self._stores.clients.get(presented.client_id, now=now)
        return self._authenticator.authenticate(presented, record, endpoint=endpoint)

    @staticmethod
    def _token(form: Mapping[str, str]) -> str:
        token = form.get("token")
        if token is None:
            raise InvalidRequest("token is required")
        return token

    def _access_token(self, token: str) -> AccessToken | None:
        if token.count(".") != 2 or len(token) > _MAX_TOKEN:
            return None
        try:
            return self._verifier.verify(token)
        except InvalidAccessToken:
            return None

    def _refresh_token(self, token: str) -> RefreshToken | None:
        if not token.startswith(REFRESH_TOKEN_PREFIX) or len(token) > _MAX_TOKEN:
            return None
        return self._stores.refresh_tokens.get(opaque.digest(token))

    def revoke(self, form: Mapping[str, str], authorization: str | None) -> None:
        """RFC 7009 §2.1. The hint only orders the search (§2.1: the server extends it)."""
        now = self._clock()
        client = self._authenticate(form, authorization, now, "/oauth/revoke")
        token = self._token(form)
        access = self._access_token(token)
        if access is not None:
            if access.client_id == client.client_id:
                self._stores.revocations.revoke(access.jti, access.expires_at, now=now)
                self._audit_revocation(access.subject, client.client_id, "access_token", access.jti)
            return
        refresh = self._refresh_token(token)
        if refresh is not None and refresh.client_id == client.client_id:
            self._stores.revoker.end_family(refresh.family_id, now=now)
            self._audit_revocation(refresh.user_id, client.client_id, "refresh_token", refresh.family_id)

    def _audit_revocation(self, subject: str, client_id: str, token_type: str, reference: str) -> None:
        details = {"token_type": token_type, "reference": reference}
        self._stores.audit.record(
            AuditEvent("token_revoked", subject=subject, client_id=client_id, details=details)
        )

    def _alive(self, grant: Grant, client: ClientRecord | None, now: int) -> bool:
        """`client`: judge against the client record as well (a refresh token's grant)."""
        entries = self._stores.revocations.entries(
            jti=grant.jti or "-",
            client_id=grant.client_id,
            user_ids=[grant.user_id or ""],
            idp=grant.idp,
            now=now,
        )
        return refusal(grant, entries, NOT_READ if client is None else client) is None

    def introspect(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        """RFC 7662 §2. Only confidential clients may ask (§2.1: the caller must be authorized)."""
        now = self._clock()
        client = self._authenticate(form, authorization, now, "/oauth/introspect")
        if not client.is_confidential:
            raise InvalidClient("introspection is for confidential clients")
        self._stores.rates.hit(self._rules.introspect_client, client.client_id, now)
        token = self._token(form)
        access = self._access_token(token)
        if access is not None:
            owner = client.owner_user_id if access.subject == access.client_id else access.subject
            if access.client_id != client.client_id or not self._alive(Grant.of(access, owner), None, now):
                return dict(_INACTIVE)
            answer: dict[str, Any] = {
                "active": True,
                "token_type": "Bearer" if access.jkt is None else "DPoP",
                "scope": format_scope(access.scopes),
                "client_id": access.client_id,
                "sub": access.subject,
                "aud": access.audience,
                "iss": self._issuer,
                "exp": access.expires_at,
                "iat": access.issued_at,
                "jti": access.jti,
            }
            if access.jkt is not None:
                answer["cnf"] = {"jkt": access.jkt}  # RFC 9449 §6.2
            return answer
        refresh = self._refresh_token(token)
        if refresh is None or refresh.client_id != client.client_id or refresh.status != "active":
            return dict(_INACTIVE)
        # alive as long as a refresh would succeed: idle and family deadlines by the client's
        # lifetimes as they are now
        expires_at = min(refresh_deadlines(refresh, Lifetimes.of(client, self._bounds)))
        if expires_at <= now:
            return dict(_INACTIVE)
        # what a refresh would get: the grant's scopes the client may still be granted
        scope = frozenset(refresh.scope) & frozenset(client.scope)
        grant = Grant(client.client_id, refresh.user_id, scope, refresh.grant_issued_at)
        if not scope or not self._alive(grant, client, now):
            return dict(_INACTIVE)
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": format_scope(scope),
            "client_id": refresh.client_id,
            "sub": refresh.user_id,
            "aud": refresh.resource,
            "iss": self._issuer,
            "exp": expires_at,
            "iat": refresh.issued_at,
        }
