"""The token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2): parse, authenticate, grant, respond.

Every response carries `Cache-Control: no-store` (§5.1); errors follow §5.2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from wallet_mcp.config import Settings
from wallet_mcp.oauth.client_auth import authenticate_client, presented_client
from wallet_mcp.oauth.errors import InvalidRequest, UnauthorizedClient, UnsupportedGrantType
from wallet_mcp.oauth.resources import select_audience
from wallet_mcp.oauth.scopes import format_scope, grant_scope, parse_scope
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.tokens.access_tokens import access_token_claims, issue_access_token
from wallet_mcp.tokens.signer import KmsJwtSigner

SUPPORTED_GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


@dataclass(frozen=True, slots=True)
class ClientCredentialsRequest:
    """RFC 6749 §4.4.2."""

    grant_type: ClassVar[str] = "client_credentials"
    scope: tuple[str, ...]
    resource: str | None


TokenRequest = ClientCredentialsRequest


def parse_token_request(form: Mapping[str, str]) -> TokenRequest:
    grant_type = form.get("grant_type")
    match grant_type:
        case None:
            raise InvalidRequest("grant_type is required")
        case "client_credentials":
            return ClientCredentialsRequest(
                scope=parse_scope(form.get("scope")), resource=form.get("resource")
            )
        case _:
            raise UnsupportedGrantType(f"unsupported grant_type: {grant_type[:64]}")


class TokenEndpoint:
    def __init__(
        self,
        settings: Settings,
        clients: ClientStore,
        signer: KmsJwtSigner,
        clock: Callable[[], int],
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._signer = signer
        self._clock = clock

    def handle(self, form: Mapping[str, str], authorization: str | None) -> dict[str, Any]:
        presented = presented_client(form, authorization)
        request = parse_token_request(form)
        now = self._clock()
        client = authenticate_client(presented, self._clients, now=now)
        if request.grant_type not in client.grant_types:
            raise UnauthorizedClient("this client may not use this grant type")
        match request:
            case ClientCredentialsRequest():
                return self._client_credentials(client, request, now)

    def _client_credentials(
        self, client: ClientRecord, request: ClientCredentialsRequest, now: int
    ) -> dict[str, Any]:
        if not client.is_confidential:
            raise UnauthorizedClient("client_credentials is for confidential clients only")
        scope = grant_scope(request.scope, client.scope)
        audience = select_audience(
            request.resource, self._settings.known_resources, self._settings.mcp_resource
        )
        # RFC 9068 §2.2: with no resource owner, `sub` identifies the client itself.
        return self._bearer_response(
            subject=client.client_id, client=client, scope=format_scope(scope), audience=audience, now=now
        )

    def _bearer_response(
        self, *, subject: str, client: ClientRecord, scope: str, audience: str, now: int
    ) -> dict[str, Any]:
        ttl = self._settings.access_token_ttl
        claims = access_token_claims(
            issuer=self._settings.issuer,
            subject=subject,
            client_id=client.client_id,
            audience=audience,
            scope=scope,
            ttl=ttl,
            now=now,
        )
        return {
            "access_token": issue_access_token(self._signer, claims),
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": scope,
        }
