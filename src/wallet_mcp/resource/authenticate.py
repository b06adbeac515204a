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

DPoP (RFC 9449 §7): a token bound to a key (`cnf.jkt`) is accepted only as `Authorization: DPoP`
with one `DPoP` proof of that key for this request (method, URL, `ath`, the server's nonce, a `jti`
not seen before) — presented as `Bearer`, it is refused; `Authorization: DPoP` with an unbound token
is refused too; and where the deployment requires DPoP, unbound access tokens are refused (personal
access tokens, a separate credential of the API, are not access tokens and stay bearer). Proof
checks are local: a signature, an HMAC for the nonce, the replay cache (in memory unless the
deployment asks for strict single use).

The person a token acts for is its subject, or for a client-credentials token (RFC 9068 §2.2:
`sub` is the client) the client's owner, looked up through a short cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wallet_mcp.oauth.rules.grants import Grant, refusal
from wallet_mcp.primitives import bearer, dpop
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
class ProofContext:
    """What a DPoP proof is checked against: the request's `DPoP` headers, method and path, and
    the `Host` it came in on (the URL the client used: `ResourceGuard`'s `url_of`)."""

    proofs: tuple[str, ...]
    method: str
    path: str
    host: str | None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the validated token, and the person whose wallet it acts on (None: a client
    acting for nobody). `dpop_nonce`: after a DPoP proof was checked, the current server nonce, for
    the response's `DPoP-Nonce` header (RFC 9449 §8.2)."""

    principal: AccessToken
    owner: str | None
    dpop_nonce: str | None = None

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
        dpop_checker: dpop.DpopChecker | None = None,
        dpop_required: bool = False,
        url_of: Callable[[str, str | None], str] | None = None,
    ) -> None:
        """`dpop_checker`: checks DPoP proofs (None: DPoP-bound tokens are refused, there is no way
        to prove them); `dpop_required`: unbound access tokens are refused; `url_of(path, host)`:
        the public URL of a request, as its proofs' `htu` must name it."""
        self._dpop = dpop_checker
        self._dpop_required = dpop_required
        self._url_of = url_of or (lambda path, host: audience.rsplit("/", 1)[0] + path)
        self._verifier = verifier
        self._audience = audience
        self.resource_metadata_url = resource_metadata_url
        self._revoked = revoked
        self._owners = owners
        self._personal_tokens = personal_tokens
        self._clock = clock

    def authenticate(
        self, authorization: str | None, scope_hint: Iterable[str] = (), request: ProofContext | None = None
    ) -> Caller:
        """Steps 1-3; `scope_hint` goes into every 401's challenge: what to ask for when a client
        has to authorize (again). `request`: what a DPoP proof is checked against (None: the
        request has no proof)."""
        hint = tuple(scope_hint)
        try:
            found = bearer.credentials(authorization)
        except bearer.MalformedAuthorization as exc:
            raise self._invalid(str(exc), scope=hint) from exc
        if found is None:
            challenge = bearer.missing_token(self.resource_metadata_url, hint)
            raise BearerChallenge(self._as_dpop(challenge) if self._dpop_required else challenge)
        scheme, raw = found
        principal = self._principal(raw, hint)
        nonce = self._sender(scheme, raw, principal, request, hint)
        owner = self._owners.lookup(principal)
        reason = refusal(Grant.of(principal, owner), self._revoked())
        if reason is not None:
            raise self._invalid(reason, principal.client_id, scope=hint)
        return Caller(principal, owner, nonce)

    def _sender(
        self,
        scheme: bearer.Scheme,
        raw: str,
        principal: AccessToken,
        request: ProofContext | None,
        hint: tuple[str, ...],
    ) -> str | None:
        """RFC 9449 §7: the token's binding against the scheme it came with and the proof; the
        current nonce when a proof was checked."""
        client_id = principal.client_id
        if scheme == "Bearer":
            if principal.jkt is not None:
                # §7.2: a sender-constrained token is no bearer token
                raise self._invalid(
                    "this access token is DPoP-bound: present it as Authorization: DPoP with a proof",
                    client_id,
                    scope=hint,
                    dpop_scheme=True,
                )
            if self._dpop_required and not raw.startswith(PERSONAL_TOKEN_PREFIX):
                raise self._invalid(
                    "this resource requires DPoP-bound access tokens", client_id, scope=hint, dpop_scheme=True
                )
            return None
        if principal.jkt is None:
            raise self._invalid(
                "this access token is not DPoP-bound: present it as Authorization: Bearer",
                client_id,
                scope=hint,
                dpop_scheme=True,
            )
        if self._dpop is None:
            raise self._invalid("DPoP is not available at this resource", client_id, scope=hint)
        now = int(self._clock())
        context = request or ProofContext((), "POST", "/", None)
        try:
            proof = self._dpop.check(
                list(context.proofs),
                method=context.method,
                url=self._url_of(context.path, context.host),
                now=now,
                access_token=raw,
            )
        except dpop.InvalidProof as exc:
            nonce = self._dpop.nonce(now)
            challenge = bearer.dpop_refusal(
                self.resource_metadata_url, exc.error, exc.description, self._dpop.algorithms, nonce
            )
            raise BearerChallenge(challenge, client_id=client_id) from exc
        if proof.jkt != principal.jkt:
            raise self._invalid(
                "the DPoP proof is not signed by the key the access token is bound to",
                client_id,
                scope=hint,
                dpop_scheme=True,
            )
        return self._dpop.nonce(now)

    def _as_dpop(self, challenge: bearer.Challenge) -> bearer.Challenge:
        return bearer.dpop(challenge, self._dpop.algorithms if self._dpop is not None else dpop.ALGORITHMS)

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
        self,
        description: str,
        client_id: str | None = None,
        *,
        scope: Iterable[str] = (),
        dpop_scheme: bool = False,
    ) -> BearerChallenge:
        challenge = bearer.invalid_token(self.resource_metadata_url, description, scope)
        if dpop_scheme or self._dpop_required:
            challenge = self._as_dpop(challenge)
        return BearerChallenge(challenge, client_id=client_id)
