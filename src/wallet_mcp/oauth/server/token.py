"""The token endpoint (RFC 6749 §3.2 and §4-6, OAuth 2.1 §3.2): parse, authenticate, grant.

Costs per grant (one KMS call each, the signature): one BatchGetItem reads the client, its rate
counters and the code or refresh token; a second, consistent, reads the revocation-list entries
of the person the grant acts for (disabled? withdrawn?), so that `oauth.rules.grants.refusal`
decides as it does at the resource servers; one TransactWriteItems commits (3 calls; client
credentials without an owner: 2). The access token is signed before anything is committed, so a
signing failure leaves the code or refresh token unspent and the client can retry.

A `private_key_jwt` assertion costs no call of its own: its `jti` marker is read in the first
BatchGetItem (a replay is refused before any grant runs) and written as a conditional Put of the
issuing transaction (a concurrent replay loses the condition: `invalid_client`, nothing issued). A
request that fails, or succeeds without a transaction (a refresh retried within the grace
window), spends it with a PutItem of its own.

Each grant is a step of the connection log: a success rides in the issuing transaction as a
best-effort Put (no extra round trip, and written only if the token was issued); a failure is one
best-effort PutItem with its RFC 6749 §5.2 error code, filed under the client the request names.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from wallet_mcp.config import Settings
from wallet_mcp.credentials import opaque, sealing
from wallet_mcp.limits import Rules
from wallet_mcp.oauth.rules.grants import WITHDRAWN, Grant, refusal
from wallet_mcp.oauth.rules.lifetimes import Lifetimes, family_deadline, refresh_deadlines, refresh_expiry
from wallet_mcp.oauth.rules.revocation import Revoker
from wallet_mcp.oauth.server.client_auth import (
    REPLAYED,
    ClientAuthenticator,
    PendingAssertion,
    PresentedClient,
    presented_client,
)
from wallet_mcp.oauth.server.dpop_binding import ProofRequest, TokenDpop
from wallet_mcp.oauth.server.jwt_bearer import JwtBearerGrant, JwtBearerRequest, WorkloadGrant
from wallet_mcp.observability import count
from wallet_mcp.primitives import id_jag, pkce
from wallet_mcp.primitives.errors import (
    InvalidClient,
    InvalidDpopProof,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    OAuthError,
    TemporarilyUnavailable,
    TooManyRequests,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from wallet_mcp.primitives.resources import canonical_resource, select_audience
from wallet_mcp.primitives.scopes import format_scope, grant_scope, known_only, parse_scope
from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.auth_codes import AuthCodeStore, AuthorizationCode, Redemption
from wallet_mcp.storage.batch import Read
from wallet_mcp.storage.clients import ClientRecord, ClientStore, storable_id, usable_client
from wallet_mcp.storage.connection_log import ConnectionLog, failed, succeeded
from wallet_mcp.storage.consents import ConsentStore
from wallet_mcp.storage.database import Database
from wallet_mcp.storage.items import Item
from wallet_mcp.storage.rate_limits import RateLimits
from wallet_mcp.storage.refresh_tokens import RefreshToken, RefreshTokenStore
from wallet_mcp.storage.revocations import RevocationList, Revoked
from wallet_mcp.tokens.access_tokens import access_token_claims, issue_access_token
from wallet_mcp.tokens.signer import KmsJwtSigner

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

SUPPORTED_GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", id_jag.GRANT_TYPE)
REFRESH_TOKEN_PREFIX = "rt_"
_SEAL_PURPOSE = b"refresh-rotation-response"
_MAX_OPAQUE = 512


# --- requests, parsed at the edge ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientCredentialsRequest:
    """RFC 6749 §4.4.2."""

    grant_type: ClassVar[str] = "client_credentials"
    scope: tuple[str, ...]
    resource: str | None


@dataclass(frozen=True, slots=True)
class AuthorizationCodeRequest:
    """RFC 6749 §4.1.3 with RFC 7636 §4.5 and RFC 8707 §2.2."""

    grant_type: ClassVar[str] = "authorization_code"
    code: str
    redirect_uri: str
    code_verifier: str
    resource: str | None


@dataclass(frozen=True, slots=True)
class RefreshTokenRequest:
    """RFC 6749 §6."""

    grant_type: ClassVar[str] = "refresh_token"
    refresh_token: str
    scope: tuple[str, ...]
    resource: str | None


TokenRequest = ClientCredentialsRequest | AuthorizationCodeRequest | RefreshTokenRequest | JwtBearerRequest


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if value is None:
        raise InvalidRequest(f"{name} is required")
    if len(value) > _MAX_OPAQUE:
        raise InvalidGrant(f"{name} is not valid")
    return value


def parse_token_request(form: Mapping[str, str]) -> TokenRequest:
    grant_type = form.get("grant_type")
    match grant_type:
        case None:
            raise InvalidRequest("grant_type is required")
        case "client_credentials":
            return ClientCredentialsRequest(
                scope=parse_scope(form.get("scope")), resource=form.get("resource")
            )
        case "authorization_code":
            verifier = form.get("code_verifier")
            if verifier is None:
                raise InvalidRequest("code_verifier is required (PKCE, RFC 7636)")
            return AuthorizationCodeRequest(
                code=_required(form, "code"),
                # required although OAuth 2.1 makes it optional: this server always requires it at
                # the authorization endpoint, so it must match here (§4.1.3)
                redirect_uri=_required(form, "redirect_uri"),
                code_verifier=verifier,
                resource=form.get("resource"),
            )
        case "refresh_token":
            return RefreshTokenRequest(
                refresh_token=_required(form, "refresh_token"),
                scope=parse_scope(form.get("scope")),
                resource=form.get("resource"),
            )
        case id_jag.GRANT_TYPE:
            assertion = form.get("assertion")
            if assertion is None:
                raise InvalidRequest("assertion is required (RFC 7523 §2.1)")
            return JwtBearerRequest(
                assertion=assertion, scope=parse_scope(form.get("scope")), resource=form.get("resource")
            )
        case _:
            raise UnsupportedGrantType(f"unsupported grant_type: {grant_type[:64]}")


# --- the endpoint ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenStores:
    clients: ClientStore
    codes: AuthCodeStore
    refresh_tokens: RefreshTokenStore
    revocations: RevocationList
    rates: RateLimits
    audit: AuditLog
    consents: ConsentStore
    revoker: Revoker
    connections: ConnectionLog


class TokenEndpoint:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        stores: TokenStores,
        signer: KmsJwtSigner,
        clock: Callable[[], int],
        authenticator: ClientAuthenticator,
        dpop: TokenDpop | None = None,
        jwt_bearer: JwtBearerGrant | None = None,
    ) -> None:
        """`dpop`: DPoP proofs (RFC 9449) checked and bound (None: proofs are ignored, tokens are
        bearer tokens); `jwt_bearer`: the ID-JAG grant of the trusted enterprise IdPs (None: none)."""
        self._dpop = dpop
        self._jwt_bearer = jwt_bearer
        self._rules = Rules.from_settings(settings.rate_limits)
        self._authenticator = authenticator
        self._settings = settings
        self._bounds = Lifetimes.bounds(settings)
        self._database = database
        self._stores = stores
        self._signer = signer
        self._clock = clock

    def handle(
        self,
        form: Mapping[str, str],
        authorization: str | None,
        source: str = "unknown",
        proof: ProofRequest | None = None,
    ) -> dict[str, Any]:
        """The token response; `source` is the caller's address (API Gateway's sourceIp); `proof`
        the request's DPoP headers."""
        try:
            return self._handle(form, authorization, source, proof)
        except OAuthError as exc:
            client_id = _claimed_client_id(form, authorization)
            if client_id is not None:
                description = f"{_grant_named(form)}: {exc.description}"
                self._stores.connections.record(
                    failed(client_id, "token", exc.error, description, exc.status_code)
                )
            raise

    def _handle(
        self, form: Mapping[str, str], authorization: str | None, source: str, proof: ProofRequest | None
    ) -> dict[str, Any]:
        now = self._clock()
        rules, rates = self._rules, self._stores.rates
        try:
            presented = presented_client(form, authorization)
            request = parse_token_request(form)
        except OAuthError:
            self._count_failure(source, now)
            raise
        grant_read: list[Read] = []
        match request:
            case AuthorizationCodeRequest():
                grant_read = [self._stores.codes.batch_read(opaque.digest(request.code))]
            case RefreshTokenRequest():
                grant_read = [self._stores.refresh_tokens.batch_read(opaque.digest(request.refresh_token))]
        # a private_key_jwt assertion's spent-jti marker rides in the same read
        marker_read = self._authenticator.marker_read(presented)
        client_item, client_count, address_failures, *grant = self._database.get(
            [
                self._stores.clients.batch_read(presented.client_id),
                rates.batch_read(rules.token_client, presented.client_id, now),
                rates.batch_read(rules.token_address_failures, source, now),
                *grant_read,
                *([marker_read] if marker_read is not None else []),
            ]
        )
        marker = grant.pop() if marker_read is not None else None
        # an address that keeps failing is refused before any work (RFC 6749 §10.10, RFC 9700 §4.13)
        rules.token_address_failures.check(rates.count(address_failures), now)
        client: ClientRecord | None = None
        pending: PendingAssertion | None = None
        try:
            record = usable_client(client_item, now=now)
            # the proof before the client's credentials: a nonce refusal spends no assertion
            jkt = self._dpop.key(proof, record, now) if self._dpop is not None else None
            client, pending = self._client(presented, request, record, marker)
            # requests without a user (client credentials) count against the client; user grants
            # spend a code or refresh token the server issued, and their failures count against
            # the address above
            rules.token_client.check(rates.count(client_count), now)
            match request:
                case ClientCredentialsRequest():
                    response = self._client_credentials(client, request, now, jkt, pending)
                case AuthorizationCodeRequest():
                    code = AuthorizationCode.from_item(grant[0]) if grant[0] else None
                    response = self._authorization_code(
                        client, request, opaque.digest(request.code), code, now, jkt, pending
                    )
                case RefreshTokenRequest():
                    token = RefreshToken.from_item(grant[0]) if grant[0] else None
                    response = self._refresh(client, request, token, now, jkt, pending)
                case JwtBearerRequest():
                    response = self._enterprise(client, request, now, jkt, pending)
            if pending is not None and not pending.settled:
                # answered without a transaction (a refresh retried in its grace window)
                self._authenticator.spend(pending)
        except (TooManyRequests, TemporarilyUnavailable):
            self._settle(pending)
            raise
        except OAuthError:
            self._settle(pending)
            # only what an unauthenticated caller gets wrong counts against its address: a known
            # client's refused code or refresh token (256 bits, single use, nothing to guess) must
            # not lock out every user of a host that calls from a few shared egress addresses
            # (docs/operations.md § Shared egress addresses)
            if client is None:
                self._count_failure(source, now)
            raise
        except Exception:
            self._settle(pending)
            raise
        self._stores.clients.touch(client, now, idle_ttl=self._client_idle_ttl)
        return response

    @property
    def _client_idle_ttl(self) -> int:
        """How long a self-registered client lives past its last use."""
        return max(self._settings.unused_client_ttl, self._settings.refresh_token_idle_ttl)

    def _alive(self, grant: Grant, client: ClientRecord, now: int) -> None:
        """The one rule (`oauth.rules.grants`), on a consistent read of the entries that concern
        the grant: what a resource server would decide about its tokens, decided before issuing.
        A grant that acts for nobody needs no read: the client record holds its cut-off."""
        entries = (
            Revoked()
            if grant.user_id is None
            else self._stores.revocations.entries(
                jti=grant.jti or "-",
                client_id=grant.client_id,
                user_ids=[grant.user_id],
                idp=grant.idp,
                now=now,
            )
        )
        reason = refusal(grant, entries, client)
        if reason is not None:
            raise InvalidGrant(reason)

    def _count_failure(self, source: str, now: int) -> None:
        self._stores.rates.record(self._rules.token_address_failures, source, now)

    def _client(
        self,
        presented: PresentedClient,
        request: TokenRequest,
        record: ClientRecord | None,
        marker: Item | None,
    ) -> tuple[ClientRecord, PendingAssertion | None]:
        """The authenticated client, and its assertion's `jti` still to spend (private_key_jwt)."""
        client, pending = self._authenticator.authenticate_pending(
            presented, record, endpoint="/oauth/token", marker=marker
        )
        if request.grant_type not in client.grant_types:
            self._settle(pending)
            raise UnauthorizedClient(f"this client may not use the {request.grant_type} grant")
        return client, pending

    def _settle(self, pending: PendingAssertion | None) -> None:
        """Spend the assertion of a request that fails (a replay of it must fail too); whatever
        happens here, the request's own error is what the client gets."""
        if pending is None or pending.settled:
            return
        try:
            self._authenticator.spend(pending)
        except InvalidClient:
            pass
        except Exception:  # the request already failed: its own error is the answer
            logger.warning("a refused request's client assertion could not be spent", exc_info=True)

    # --- grants --------------------------------------------------------------------------------

    def _client_credentials(
        self,
        client: ClientRecord,
        request: ClientCredentialsRequest,
        now: int,
        jkt: str | None = None,
        pending: PendingAssertion | None = None,
    ) -> dict[str, Any]:
        if not client.is_confidential:
            raise UnauthorizedClient("client_credentials is for confidential clients only")
        scope = grant_scope(request.scope, client.scope, client.default_scope)
        audience = select_audience(
            request.resource,
            self._settings.known_resources,
            self._settings.mcp_resource,
            self._settings.resource_aliases,
        )
        # the owner's wallet is what the token reaches: not while the owner is disabled
        self._alive(Grant(client.client_id, client.owner_user_id, frozenset(scope), now), client, now)
        # RFC 9068 §2.2: with no resource owner, `sub` identifies the client itself.
        ttl = Lifetimes.of(client, self._bounds).access_token_ttl
        token, jti, _ = self._access_token(
            client.client_id, client.client_id, scope, audience, now, ttl, jkt=jkt
        )
        issued = self._issued(client.client_id, client, "client_credentials", jti, scope)
        counted = self._stores.rates.update_action(self._rules.token_client, client.client_id, now)
        done = self._succeeded(
            client, "client_credentials", f"access token for {audience} ({format_scope(scope)})"
        )
        if self._commit([counted, issued], done, pending) == 0:
            # a burst past the limit between our read of the counter and now: refused, unsigned
            self._rules.token_client.check(self._rules.token_client.limit, now)
        count("TokensIssued", grant="client_credentials")
        return self._bearer(token, scope, expires_in=ttl, bound=jkt is not None)

    def _enterprise(
        self,
        client: ClientRecord,
        request: JwtBearerRequest,
        now: int,
        jkt: str | None = None,
        pending: PendingAssertion | None = None,
    ) -> dict[str, Any]:
        """An ID-JAG (`oauth.server.jwt_bearer`): an access token for the mapped user, recorded as
        a grant "granted by" the IdP (revocable on /account and per IdP on /admin), and no refresh
        token: the draft's "Refresh Token" section says the server SHOULD NOT return one (the ID-JAG
        replaces it; the IdP stays in control of each token). Its `jti` is single-use here (RFC
        7523 §3), so the client asks the IdP for a new ID-JAG, as the SDK's provider does."""
        if self._jwt_bearer is None or not self._jwt_bearer.enabled:
            raise UnsupportedGrantType(f"unsupported grant_type: {id_jag.GRANT_TYPE}")
        granted = self._jwt_bearer.verify(client, request, now)
        if isinstance(granted, WorkloadGrant):
            return self._workload(client, request, granted, now, jkt, pending)
        self._alive(
            Grant(client.client_id, granted.user_id, frozenset(granted.scope), now, idp=granted.idp.id),
            client,
            now,
        )
        ttl = Lifetimes.of(client, self._bounds).access_token_ttl
        token, jti, _ = self._access_token(
            granted.user_id,
            client.client_id,
            granted.scope,
            granted.resource,
            now,
            ttl,
            idp=granted.idp.id,
            jkt=jkt,
        )
        actions = [
            self._issued(granted.user_id, client, "jwt-bearer", jti, granted.scope),
            self._stores.consents.enterprise_action(
                granted.user_id, client.client_id, granted.scope, granted.idp.id, now=now
            ),
        ]
        done = self._succeeded(
            client,
            "jwt-bearer",
            f"ID-JAG of {granted.idp.id}: access token for {granted.resource}"
            f" ({format_scope(granted.scope)})",
        )
        self._commit(actions, done, pending)
        count("TokensIssued", grant="jwt_bearer")
        return self._bearer(token, granted.scope, expires_in=ttl, bound=jkt is not None)

    def _workload(
        self,
        client: ClientRecord,
        request: JwtBearerRequest,
        granted: WorkloadGrant,
        now: int,
        jkt: str | None = None,
        pending: PendingAssertion | None = None,
    ) -> dict[str, Any]:
        """A workload's token (SEP-1933): issued as for client credentials — `sub` is the client,
        the wallet reached is its owner's — with no refresh token."""
        audience = select_audience(
            request.resource,
            self._settings.known_resources,
            self._settings.mcp_resource,
            self._settings.resource_aliases,
        )
        self._alive(Grant(client.client_id, client.owner_user_id, frozenset(granted.scope), now), client, now)
        ttl = Lifetimes.of(client, self._bounds).access_token_ttl
        token, jti, _ = self._access_token(
            client.client_id, client.client_id, granted.scope, audience, now, ttl, jkt=jkt
        )
        done = self._succeeded(
            client,
            "jwt-bearer",
            f"workload token of {granted.issuer.id}: access token for {audience}"
            f" ({format_scope(granted.scope)})",
        )
        # like client credentials, a machine's requests count against the client's limit
        counted = self._stores.rates.update_action(self._rules.token_client, client.client_id, now)
        issued = self._issued(client.client_id, client, "jwt-bearer", jti, granted.scope)
        if self._commit([counted, issued], done, pending) == 0:
            self._rules.token_client.check(self._rules.token_client.limit, now)
        count("TokensIssued", grant="workload")
        return self._bearer(token, granted.scope, expires_in=ttl, bound=jkt is not None)

    def _issued(
        self, subject: str, client: ClientRecord, grant: str, jti: str, scope: tuple[str, ...]
    ) -> dict[str, Any]:
        """The audit record of an issued token, written in the same transaction that issues it."""
        details = {"grant": grant, "jti": jti, "scope": format_scope(scope)}
        event = AuditEvent("token_issued", subject=subject, client_id=client.client_id, details=details)
        return self._stores.audit.put_action(event)

    def _authorization_code(
        self,
        client: ClientRecord,
        request: AuthorizationCodeRequest,
        code_hash: str,
        code: AuthorizationCode | None,
        now: int,
        jkt: str | None = None,
        pending: PendingAssertion | None = None,
    ) -> dict[str, Any]:
        if code is None:
            self._detect_code_replay(code_hash, now)
            raise InvalidGrant("authorization code is invalid, expired or already used")
        # a code issued to another client: answer as if it did not exist (RFC 6749 §4.1.3)
        if code.client_id != client.client_id or code.expires_at <= now:
            raise InvalidGrant("authorization code is invalid, expired or already used")
        if request.redirect_uri != code.redirect_uri:
            raise InvalidGrant("redirect_uri does not match the authorization request")
        if not pkce.verify(request.code_verifier, code.code_challenge):
            raise InvalidGrant("code_verifier does not match the code_challenge")
        if code.dpop_jkt is not None and jkt != code.dpop_jkt:
            # RFC 9449 §10: a code bound to a key (`dpop_jkt`, or a proof at PAR) is redeemed only
            # with a proof of that key; the code stays unspent for its rightful holder
            raise InvalidGrant(
                "this authorization code is bound to a DPoP key: a proof of that key is required"
                if jkt is None
                else "the DPoP proof's key is not the one this authorization code is bound to"
            )
        self._check_resource(request.resource, code.resource)
        self._alive(Grant(client.client_id, code.user_id, frozenset(code.scope), code.issued_at), client, now)

        lifetimes = Lifetimes.of(client, self._bounds)
        access, jti, access_exp = self._access_token(
            code.user_id,
            client.client_id,
            code.scope,
            code.resource,
            now,
            lifetimes.access_token_ttl,
            jkt=jkt,
        )
        refresh: str | None = None
        actions: list[dict[str, Any]] = []
        family_id: str | None = None
        if "refresh_token" in client.grant_types:
            family_id = uuid.uuid4().hex
            family_ends = family_deadline(now, lifetimes)
            refresh = opaque.new_secret(REFRESH_TOKEN_PREFIX)
            actions.append(
                self._stores.refresh_tokens.put_action(
                    RefreshToken(
                        token_hash=opaque.digest(refresh),
                        family_id=family_id,
                        client_id=client.client_id,
                        user_id=code.user_id,
                        scope=code.scope,
                        resource=code.resource,
                        issued_at=now,
                        expires_at=refresh_expiry(now, family_ends, lifetimes),
                        auth_time=code.auth_time,
                        access_jti=jti,
                        access_expires_at=access_exp,
                        granted_at=now,
                        family_expires_at=family_ends,
                        # RFC 9449 §5: a public client's refresh token is bound to its DPoP key
                        dpop_jkt=None if client.is_confidential else jkt,
                    )
                )
            )
        redemption = Redemption(family_id=family_id, access_jti=jti, access_expires_at=access_exp)
        issued = self._issued(code.user_id, client, "authorization_code", jti, code.scope)
        actions = [
            *self._stores.codes.redeem_actions(code, redemption, now),
            *actions,
            issued,
            self._stores.consents.still_granted_action(code.user_id, client.client_id),
        ]
        with_refresh = "with a refresh token" if refresh else "no refresh token (not a registered grant)"
        done = self._succeeded(
            client,
            "authorization_code",
            f"access token for {code.resource} ({format_scope(code.scope)}), {with_refresh}",
        )
        lost = self._commit(actions, done, pending)
        if lost == len(actions) - 1:
            raise InvalidGrant(WITHDRAWN)
        if lost is not None:
            # another request redeemed this code between our read and our write: a replay
            self._detect_code_replay(code_hash, now)
            raise InvalidGrant("authorization code is invalid, expired or already used")
        count("TokensIssued", grant="authorization_code")
        return self._bearer(
            access, code.scope, refresh, expires_in=lifetimes.access_token_ttl, bound=jkt is not None
        )

    def _refresh(
        self,
        client: ClientRecord,
        request: RefreshTokenRequest,
        token: RefreshToken | None,
        now: int,
        jkt: str | None = None,
        pending: PendingAssertion | None = None,
    ) -> dict[str, Any]:
        if token is None or token.client_id != client.client_id or token.status == "revoked":
            raise InvalidGrant("refresh token is invalid, expired or revoked")
        if token.dpop_jkt is not None:
            # RFC 9449 §5: only the holder of the key it is bound to may use it
            if jkt is None:
                raise InvalidDpopProof("this refresh token is DPoP-bound: a DPoP proof is required")
            if jkt != token.dpop_jkt:
                raise InvalidGrant("the DPoP proof's key is not the one this refresh token is bound to")
        if token.status == "rotated":
            return self._rotated_again(request, token, now)
        # the client's lifetimes as they are now: an administrator's shorter value applies at once
        lifetimes = Lifetimes.of(client, self._bounds)
        idle_ends, family_ends = refresh_deadlines(token, lifetimes)
        if idle_ends <= now:
            raise InvalidGrant("refresh token is invalid, expired or revoked")
        if family_ends <= now:
            # the grant itself expired (RFC 6749 §5.2 invalid_grant): the person signs in again
            raise InvalidGrant("the grant has reached its maximum lifetime; authorize again")
        # the new access token may be narrower; the new refresh token keeps the grant (RFC 6749 §6),
        # less whatever an administrator no longer allows the client
        asked = known_only(request.scope)  # unknown scopes ignored (RFC 6749 §3.3)
        if asked and not set(asked) <= set(token.scope):
            raise InvalidScope("a refresh may only narrow the scope of the grant")
        allowed = tuple(s for s in token.scope if s in client.scope)
        scope = tuple(s for s in (asked or token.scope) if s in client.scope)
        if not scope:
            self._stores.revoker.end_family(token.family_id, now=now)
            raise InvalidGrant("no scope of this grant is allowed for the client any more")
        self._check_resource(request.resource, token.resource)
        try:
            self._alive(
                Grant(client.client_id, token.user_id, frozenset(scope), token.grant_issued_at), client, now
            )
        except InvalidGrant:
            self._stores.revoker.end_family(token.family_id, now=now)
            raise

        access, jti, access_exp = self._access_token(
            token.user_id, client.client_id, scope, token.resource, now, lifetimes.access_token_ttl, jkt=jkt
        )
        refresh = opaque.new_secret(REFRESH_TOKEN_PREFIX)
        successor = token.successor(
            token_hash=opaque.digest(refresh),
            scope=allowed,
            issued_at=now,
            expires_at=refresh_expiry(now, family_ends, lifetimes),
            access_jti=jti,
            access_expires_at=access_exp,
            family_expires_at=family_ends,
        )
        response = self._bearer(
            access, scope, refresh, expires_in=lifetimes.access_token_ttl, bound=jkt is not None
        )
        sealed = sealing.seal(request.refresh_token, _SEAL_PURPOSE, json.dumps(response).encode())
        store = self._stores.refresh_tokens
        issued = self._issued(token.user_id, client, "refresh_token", jti, scope)
        rotation = [
            store.rotate_action(token, now=now, sealed_successor=sealed),
            store.put_action(successor),
            issued,
            self._stores.consents.still_granted_action(token.user_id, client.client_id),
        ]
        done = self._succeeded(
            client, "refresh_token", f"rotated; access token for {token.resource} ({format_scope(scope)})"
        )
        lost = self._commit(rotation, done, pending)
        if lost is None:
            count("TokensIssued", grant="refresh_token")
            return response
        if lost == len(rotation) - 1:
            # the user withdrew this client's access while the token was in flight
            self._stores.revoker.end_family(token.family_id, now=now)
            raise InvalidGrant(WITHDRAWN)
        # a concurrent refresh of the same token rotated it first: answer what it answered
        current = store.get(token.token_hash)
        if current is None or current.status != "rotated":
            raise InvalidGrant("refresh token is invalid, expired or revoked")
        return self._rotated_again(request, current, now)

    def _rotated_again(self, request: RefreshTokenRequest, token: RefreshToken, now: int) -> dict[str, Any]:
        """A rotated token presented again: the same pair within the grace window, else reuse."""
        grace = self._settings.refresh_reuse_grace
        if token.rotated_at is not None and token.sealed_successor and now - token.rotated_at <= grace:
            try:
                previous: dict[str, Any] = json.loads(
                    sealing.open_sealed(request.refresh_token, _SEAL_PURPOSE, token.sealed_successor)
                )
            except sealing.SealBroken:
                pass
            else:
                if not request.scope or format_scope(request.scope) == previous.get("scope"):
                    self._stores.connections.record(
                        succeeded(
                            token.client_id,
                            "token",
                            "refresh_token: presented again within the grace window; the same pair answered",
                        )
                    )
                    return previous
                raise InvalidGrant("refresh token was just rotated; retry with the new one")
        # RFC 9700 §4.14.2: reuse of a rotated refresh token means it leaked; end the whole grant
        self._stores.revoker.end_family(token.family_id, now=now)
        count("RefreshTokenReuse")
        self._stores.audit.record(
            AuditEvent(
                "refresh_token_reuse_detected",
                subject=token.user_id,
                client_id=token.client_id,
                details={"family_id": token.family_id},
            )
        )
        raise InvalidGrant("refresh token was already used; the grant has been revoked")

    def _detect_code_replay(self, code_hash: str, now: int) -> None:
        """RFC 6749 §4.1.2: a code used twice revokes what was issued from it."""
        redemption = self._stores.codes.redemption(code_hash)
        if redemption is None:
            return
        count("CodeReplay")
        self._stores.audit.record(
            AuditEvent(
                "authorization_code_replay_detected",
                subject=redemption.user_id or "unknown",
                client_id=redemption.client_id,
                details={"family_id": redemption.family_id},
            )
        )
        self._stores.revocations.revoke(redemption.access_jti, redemption.access_expires_at, now=now)
        if redemption.family_id:
            self._stores.revoker.end_family(redemption.family_id, now=now)

    # --- helpers ---------------------------------------------------------------------------------

    def _check_resource(self, requested: str | None, granted: str) -> None:
        """RFC 8707 §2.2: the resource of a code or refresh request is the one authorized (or, on
        the local stack, that resource on another loopback name)."""
        if requested is None:
            return
        try:
            audience = select_audience(
                requested, self._settings.known_resources, granted, self._settings.resource_aliases
            )
        except InvalidTarget:
            audience = None
        if audience is None or canonical_resource(audience) != canonical_resource(granted):
            raise InvalidTarget("resource differs from the one authorized")

    def _access_token(
        self,
        subject: str,
        client_id: str,
        scope: tuple[str, ...],
        audience: str,
        now: int,
        ttl: int,
        *,
        idp: str | None = None,
        jkt: str | None = None,
    ) -> tuple[str, str, int]:
        """The signed token, its `jti` and `exp`; `ttl` is the client's (`Lifetimes.of`); `idp`:
        the enterprise IdP whose grant it is issued on (its `idp` claim, `oauth.rules.grants`);
        `jkt`: the DPoP key it is bound to (RFC 9449 §6.1 `cnf.jkt`)."""
        claims = access_token_claims(
            issuer=self._settings.issuer,
            subject=subject,
            client_id=client_id,
            audience=audience,
            scope=format_scope(scope),
            ttl=ttl,
            now=now,
            extra=_claims_extra(idp, jkt),
        )
        return issue_access_token(self._signer, claims), claims["jti"], claims["exp"]

    @staticmethod
    def _bearer(
        access_token: str,
        scope: tuple[str, ...],
        refresh_token: str | None = None,
        *,
        expires_in: int,
        bound: bool = False,
    ) -> dict[str, Any]:
        """RFC 6749 §5.1; `expires_in` is the token's `exp - iat`; `bound`: a DPoP-bound token,
        whose `token_type` is `DPoP` (RFC 9449 §5)."""
        response: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "DPoP" if bound else "Bearer",
            "expires_in": expires_in,
            "scope": format_scope(scope),
        }
        if refresh_token is not None:
            response["refresh_token"] = refresh_token
        return response

    def _commit(
        self,
        actions: list[dict[str, Any]],
        done: dict[str, Any] | None = None,
        pending: PendingAssertion | None = None,
    ) -> int | None:
        """Run a transaction: None if it committed, else the index (in `actions`) of the first
        action that lost. `done`, the grant's connection-log step, commits with it, best effort.
        `pending`: the client assertion's `jti`, spent by a conditional Put first in the
        transaction, so a replay that loses it is `invalid_client` whatever else lost too."""
        if pending is None or pending.settled:
            return self._database.commit(actions, best_effort=[done])
        lost = self._database.commit(
            [self._authenticator.spend_action(pending), *actions], best_effort=[done]
        )
        if lost == 0:
            pending.settled = True
            raise InvalidClient(REPLAYED)
        if lost is None:
            pending.settled = True
            return None
        return lost - 1

    def _succeeded(self, client: ClientRecord, grant: str, description: str) -> dict[str, Any] | None:
        """The connection-log step of a grant that succeeds, as a Put for its transaction."""
        return self._stores.connections.put_action(
            succeeded(client.client_id, "token", f"{grant}: {description}")
        )


def _claimed_client_id(form: Mapping[str, str], authorization: str | None) -> str | None:
    """The client a failed request names (authenticated or not: the log says what was asked)."""
    try:
        return presented_client(form, authorization).client_id
    except OAuthError:
        client_id = form.get("client_id")
        return client_id if client_id and storable_id(client_id) else None


def _grant_named(form: Mapping[str, str]) -> str:
    grant_type = form.get("grant_type")
    if grant_type in SUPPORTED_GRANT_TYPES:
        return str(grant_type)
    return "grant_type missing" if grant_type is None else "unsupported grant_type"


def _claims_extra(idp: str | None, jkt: str | None) -> dict[str, Any] | None:
    """The access token's claims beyond RFC 9068's: `idp` (an enterprise grant's IdP) and
    `cnf.jkt` (RFC 9449 §6.1, the DPoP key it is bound to)."""
    extra: dict[str, Any] = {}
    if idp:
        extra["idp"] = idp
    if jkt is not None:
        extra["cnf"] = {"jkt": jkt}
    return extra or None
