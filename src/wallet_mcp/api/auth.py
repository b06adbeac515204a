"""Bearer authentication of the wallet API (RFC 6750), as a FastAPI security dependency.

The resource's one bearer pipeline (`resource/authenticate.py`, shared with the MCP endpoint) for
the API's own audience — a token minted for the MCP server is refused, so no token passes through
from one resource to the other — taking personal access tokens too; then every scope the route
declares; then the wallet it acts on. Failures raise `BearerChallenge`, rendered in one place
(`api/errors.py`) with the RFC 9728 `resource_metadata` challenge.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase

from wallet_mcp.resource.authenticate import BearerChallenge, ProofContext, ResourceGuard
from wallet_mcp.resource.authenticate import Caller as AuthenticatedCaller
from wallet_mcp.resource.grant_limits import GrantLimitsCheck
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.grant_limits import GrantView

__all__ = ["BearerAuth", "BearerChallenge", "Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the validated token, and the user whose wallet it acts on."""

    principal: AccessToken
    owner: str
    view: GrantView | None = None
    """The limits the person chose for the application (`WalletService.scoped`)."""


class BearerAuth(SecurityBase):
    """`Security(auth, scopes=[...])` on a route: the authenticated `Caller`, or a challenge.

    Being a `SecurityBase`, FastAPI lists it as the `bearer` scheme in the OpenAPI document with
    each operation's scopes in its security requirement.
    """

    def __init__(self, guard: ResourceGuard, grant_limits: GrantLimitsCheck | None = None) -> None:
        self.model = HTTPBearerModel(
            bearerFormat="JWT",
            description=(
                "An RFC 9068 access token issued by this server for the wallet API (token request "
                f"with `resource=<issuer>/api`); discovery: {guard.resource_metadata_url}"
            ),
        )
        self.scheme_name = "bearer"
        self._guard = guard
        self._grant_limits = grant_limits

    def __call__(self, request: Request, security_scopes: SecurityScopes) -> Caller:
        needed = security_scopes.scopes
        headers = request.headers
        # once per request: a DPoP proof is single use, and a route may run this twice (routes.py)
        caller = getattr(request.state, "authenticated", None)
        if not isinstance(caller, AuthenticatedCaller):
            proof = ProofContext(
                tuple(headers.getlist("dpop")), request.method, request.scope["path"], headers.get("host")
            )
            caller = self._guard.authenticate(headers.get("authorization"), needed, proof)
            request.state.authenticated = caller
        self._guard.require_scopes(caller, needed)
        # NoWalletOwner (403 access_denied) for a client-credentials token of a client nobody owns
        owner = caller.wallet_owner()
        view = self._grant_limits.view(caller, needed) if self._grant_limits is not None else None
        return Caller(principal=caller.principal, owner=owner, view=view)


def authenticated_nonce(request: Request) -> str | None:
    """The DPoP server nonce of a request whose proof was checked (for its response's header)."""
    caller = getattr(request.state, "authenticated", None)
    return caller.dpop_nonce if isinstance(caller, AuthenticatedCaller) else None
