"""Bearer authentication of the wallet API (RFC 6750), as a FastAPI security dependency.

The same checks, in the same order, as the MCP endpoint (`mcp_server/http.py`), for the API's own
audience: a well-formed `Authorization: Bearer` header (RFC 6750 §2.1), an access token issued for
exactly this resource (RFC 8707 / RFC 9068 §4: a token minted for the MCP server is refused, so no
token passes through from one resource to the other), not revoked, carrying every scope the route
declares; then the wallet it acts on. Failures raise `BearerChallenge`, rendered in one place
(`api/errors.py`) with the RFC 9728 `resource_metadata` challenge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase

from wallet_mcp.oauth import bearer
from wallet_mcp.storage.personal_tokens import PREFIX as PERSONAL_TOKEN_PREFIX
from wallet_mcp.storage.personal_tokens import PersonalTokenStore
from wallet_mcp.tokens.access_tokens import AccessToken, AccessTokenVerifier, InvalidAccessToken
from wallet_mcp.wallet.owners import OwnerResolver


class BearerChallenge(Exception):
    """A request the resource answers with a `WWW-Authenticate: Bearer` challenge (401 or 403)."""

    def __init__(self, challenge: bearer.Challenge) -> None:
        super().__init__(challenge.description or "a bearer token is required")
        self.challenge = challenge


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the validated token, and the user whose wallet it acts on."""

    principal: AccessToken
    owner: str


class BearerAuth(SecurityBase):
    """`Security(auth, scopes=[...])` on a route: the authenticated `Caller`, or a challenge.

    Being a `SecurityBase`, FastAPI lists it as the `bearer` scheme in the OpenAPI document with
    each operation's scopes in its security requirement.
    """

    def __init__(
        self,
        verifier: AccessTokenVerifier,
        owners: OwnerResolver,
        *,
        audience: str,
        resource_metadata_url: str,
        is_revoked: Callable[[AccessToken], bool] = lambda _token: False,
        personal_tokens: PersonalTokenStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._personal_tokens = personal_tokens
        self._clock = clock
        self.model = HTTPBearerModel(
            bearerFormat="JWT",
            description=(
                "An RFC 9068 access token issued by this server for the wallet API (token request "
                f"with `resource=<issuer>/api`); discovery: {resource_metadata_url}"
            ),
        )
        self.scheme_name = "bearer"
        self._verifier = verifier
        self._verifier_audience = audience
        self._owners = owners
        self._resource_metadata_url = resource_metadata_url
        self._is_revoked = is_revoked

    def __call__(self, request: Request, security_scopes: SecurityScopes) -> Caller:
        needed = security_scopes.scopes
        try:
            raw = bearer.bearer_token(request.headers.get("authorization"))
        except bearer.MalformedAuthorization as exc:
            raise self._invalid(str(exc)) from exc
        if raw is None:
            raise BearerChallenge(bearer.missing_token(self._resource_metadata_url, needed))
        if self._personal_tokens is not None and raw.startswith(PERSONAL_TOKEN_PREFIX):
            # the migration path from hard-coded tokens: a personal access token (docs/clients.md)
            record = self._personal_tokens.find(raw, now=int(self._clock()))
            if record is None:
                raise self._invalid("unknown, expired or revoked personal access token")
            principal = record.as_access_token(self._verifier_audience)
        else:
            try:
                principal = self._verifier.verify(raw)
            except InvalidAccessToken as exc:
                raise self._invalid(str(exc)) from exc
            if self._is_revoked(principal):
                raise self._invalid("token revoked")
        if not principal.has_scopes(needed):
            raise BearerChallenge(bearer.insufficient_scope(self._resource_metadata_url, needed))
        # NoWalletOwner (403 access_denied) for a client-credentials token of a client nobody owns
        return Caller(principal=principal, owner=self._owners.owner_of(principal))

    def _invalid(self, description: str) -> BearerChallenge:
        return BearerChallenge(bearer.invalid_token(self._resource_metadata_url, description))
