"""The one bearer pipeline of this server's protected resources: `/mcp` and `/api`.

In order (RFC 6750 §3, RFC 9728 §5.1, RFC 9068 §4, MCP authorization):
1. a well-formed `Authorization: Bearer` header (§2.1; never the query string) — none: 401 with
   no error code and the `resource_metadata` challenge;
2. a token this resource accepts: an RFC 9068 access token signed by one of our keys for exactly
   this audience (a token minted for the MCP server is refused at the API: no passthrough), or
   — where the resource takes them (the API) — a personal access token that is neither revoked
   nor expired — else 401 `invalid_token`;
3. the grant still alive (`oauth.rules.grants.refusal`, from the polled revocation list: no AWS
   call on the hot path) — else 401 `invalid_token` saying why;
4. then, per request, the scopes it needs (403 `insufficient_scope` naming all of them).

The person a token acts for is its subject, or for a client-credentials token (RFC 9068 §2.2:
`sub` is the client) the client's owner, looked up through a short cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wallet_mcp.oauth.rules.grants import Grant, refusal
from wallet_mcp.primitives import bearer
from wallet_mcp.storage.personal_tokens import PREFIX as PERSONAL_TOKEN_PREFIX
from wallet_mcp.storage.personal_tokens import PersonalTokenStore
from wallet_mcp.storage.revocations import Revoked
from wallet_mcp.tokens.access_tokens import AccessToken, AccessTokenVerifier, InvalidAccessToken
from wallet_mcp.wallet.owners import NoWalletOwner, OwnerResolver


class BearerChallenge(Exception):
    """A request the resource answers with a `WWW-Authenticate: Bearer` challenge (401 or 403).

    `client_id`: the client refused, when a token we signed names it (for the connection log);
    None when no token, or none of ours, was presented."""

    def __init__(self, challenge: bearer.Challenge, *, client_id: str | None = None) -> None:
        super().__init__(challenge.description or "a bearer token is required")
        self.challenge = challenge
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the validated token, and the person whose wallet it acts on (None: a client
    acting for nobody)."""

    principal: AccessToken
    owner: str | None

    def wallet_owner(self) -> str:
        """The owner, or NoWalletOwner (403) for a client-credentials token nobody owns."""
        if self.owner is None:
            raise NoWalletOwner
        return self.owner


class ResourceGuard:
    def __init__(
        self,
        verifier: AccessTokenVerifier,
        *,
        audience: str,
        resource_metadata_url: str,
        revoked: Callable[[], Revoked],
        owners: OwnerResolver,
        personal_tokens: PersonalTokenStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verifier = verifier
        self._audience = audience
        self.resource_metadata_url = resource_metadata_url
        self._revoked = revoked
        self._owners = owners
        self._personal_tokens = personal_tokens
        self._clock = clock

    def authenticate(self, authorization: str | None, scope_hint: Iterable[str] = ()) -> Caller:
        """Steps 1-3; `scope_hint` goes into every 401's challenge: what to ask for when a client
        has to authorize (again)."""
        hint = tuple(scope_hint)
        try:
            raw = bearer.bearer_token(authorization)
        except bearer.MalformedAuthorization as exc:
            raise self._invalid(str(exc), scope=hint) from exc
        if raw is None:
            raise BearerChallenge(bearer.missing_token(self.resource_metadata_url, hint))
        principal = self._principal(raw, hint)
        owner = self._owners.lookup(principal)
        reason = refusal(Grant.of(principal, owner), self._revoked())
        if reason is not None:
            raise self._invalid(reason, principal.client_id, scope=hint)
        return Caller(principal, owner)

    def require_scopes(self, caller: Caller, needed: Iterable[str], *, keep_granted: bool = False) -> None:
        """Step 4. With `keep_granted`, the challenge also names the scopes the token holds, for
        clients that re-authorize with exactly the challenge's scope (the MCP endpoint)."""
        wanted = set(needed)
        if not caller.principal.has_scopes(wanted):
            granted = caller.principal.scopes if keep_granted else frozenset()
            raise BearerChallenge(
                bearer.insufficient_scope(self.resource_metadata_url, wanted, granted),
                client_id=caller.principal.client_id,
            )

    def _principal(self, raw: str, hint: tuple[str, ...]) -> AccessToken:
        if self._personal_tokens is not None and raw.startswith(PERSONAL_TOKEN_PREFIX):
            # the migration path from hard-coded tokens: a personal access token (docs/clients.md)
            now = int(self._clock())
            record = self._personal_tokens.find(raw, now=now)
            if record is None:
                raise self._invalid("unknown, expired or revoked personal access token", scope=hint)
            self._personal_tokens.touch(record, now)
            return record.as_access_token(self._audience)
        try:
            return self._verifier.verify(raw)
        except InvalidAccessToken as exc:
            raise self._invalid(str(exc), exc.client_id, scope=hint) from exc

    def _invalid(
        self, description: str, client_id: str | None = None, *, scope: Iterable[str] = ()
    ) -> BearerChallenge:
        return BearerChallenge(
            bearer.invalid_token(self.resource_metadata_url, description, scope), client_id=client_id
        )
