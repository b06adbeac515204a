"""Composition: the stores and shared services a function needs, each built once, from settings.

Every `functions/*/app.py` is composition only, and composes through this one builder, so a store
is wired to its table in one place and the "end a grant" service (`Revoker`) and the resource's
bearer pipeline (`ResourceGuard`) are put together the same way in every function that has them.
Each piece is built on first use (`cached_property`): a function pays only for what it asks for,
and a table the function was not given (its template environment names it not) is an error only
if something asks for that store.

This module imports stores and services, never an endpoint or a page: the MCP function must stay
free of FastAPI (tests/unit/test_import_weight.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Final

from wallet_mcp import aws, coldstart
from wallet_mcp.config import Settings
from wallet_mcp.primitives import dpop
from wallet_mcp.storage.revocations import CachedRevocations, RevocationList
from wallet_mcp.tokens.access_tokens import AccessTokenVerifier
from wallet_mcp.tokens.keys import KmsPublicKeys
from wallet_mcp.tokens.signer import KmsJwtSigner, signing_algorithm

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_kms.client import KMSClient

    from wallet_mcp.limits import Rules
    from wallet_mcp.oauth.rules.revocation import Revoker
    from wallet_mcp.resource.authenticate import ResourceGuard
    from wallet_mcp.resource.grant_limits import GrantLimitsCheck
    from wallet_mcp.storage.assertion_jtis import UsedAssertions
    from wallet_mcp.storage.audit import AuditLog
    from wallet_mcp.storage.auth_codes import AuthCodeStore
    from wallet_mcp.storage.auth_requests import AuthRequestStore
    from wallet_mcp.storage.clients import ClientStore
    from wallet_mcp.storage.connection_log import ConnectionLog
    from wallet_mcp.storage.consents import ConsentStore
    from wallet_mcp.storage.database import Database
    from wallet_mcp.storage.dpop_proofs import UsedProofs
    from wallet_mcp.storage.identity_links import IdentityLinkStore
    from wallet_mcp.storage.personal_tokens import PersonalTokenStore
    from wallet_mcp.storage.pushed_requests import PushedRequests
    from wallet_mcp.storage.rate_limits import RateLimits
    from wallet_mcp.storage.refresh_tokens import RefreshTokenStore
    from wallet_mcp.storage.sessions import SessionStore
    from wallet_mcp.storage.upstream_logins import UpstreamLoginStore
    from wallet_mcp.storage.users import UserStore
    from wallet_mcp.wallet.confirmations import ConfirmationStore
    from wallet_mcp.wallet.owners import OwnerResolver
    from wallet_mcp.wallet.service import WalletService
    from wallet_mcp.wallet.store import WalletStore


CONFIRMATION_SECRET_LABEL: Final = b"wallet-mcp/confirmation-secret/v1"
DPOP_NONCE_LABEL: Final = b"wallet-mcp/dpop-nonce-key/v1"


def wall_clock() -> int:
    """Seconds since the epoch: the clock of every expiry and cut-off."""
    return int(time.time())


class Stores:
    """One store per table. `table(name)` gives the physical name of a logical table (`clients`,
    `users`, …) and raises when the deployment does not have it."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: Callable[[str], str],
        has: Callable[[str], bool],
        *,
        best_effort: Callable[[], DynamoDBClient] | None = None,
        connection_log_retention: int = 24 * 3600,
    ) -> None:
        """`best_effort`: the client of writes nobody waits on (`aws.dynamodb_best_effort`), built
        on first use; without it, `dynamodb`."""
        self._db = dynamodb
        self._table = table
        self._has = has
        self._best_effort = best_effort or (lambda: dynamodb)
        self._connection_log_retention = connection_log_retention

    @cached_property
    def database(self) -> Database:
        """Reads and transactions that span tables."""
        from wallet_mcp.storage.database import Database

        return Database(self._db)

    def has(self, name: str) -> bool:
        """Whether this function was given the table (a function sees only the ones it uses)."""
        return self._has(name)

    @cached_property
    def audit(self) -> AuditLog:
        from wallet_mcp.storage.audit import AuditLog

        return AuditLog(self._db, self._table("audit"))

    @cached_property
    def auth_codes(self) -> AuthCodeStore:
        from wallet_mcp.storage.auth_codes import AuthCodeStore

        return AuthCodeStore(self._db, self._table("auth_codes"))

    @cached_property
    def used_assertions(self) -> UsedAssertions:
        """Spent `private_key_jwt` assertions: markers in the authorization-codes table."""
        from wallet_mcp.storage.assertion_jtis import UsedAssertions

        return UsedAssertions(self._db, self._table("auth_codes"))

    @cached_property
    def used_proofs(self) -> UsedProofs:
        """DPoP proofs, where strict single use is asked for: `dpop:` items in the
        authorization-codes table."""
        from wallet_mcp.storage.dpop_proofs import UsedProofs

        return UsedProofs(self._db, self._table("auth_codes"))

    @cached_property
    def pushed_requests(self) -> PushedRequests:
        """RFC 9126 pushed authorization requests: `par:` items in the authorization-codes table."""
        from wallet_mcp.storage.pushed_requests import PushedRequests

        return PushedRequests(self._db, self._table("auth_codes"))

    @cached_property
    def auth_requests(self) -> AuthRequestStore:
        from wallet_mcp.storage.auth_requests import AuthRequestStore

        return AuthRequestStore(self._db, self._table("auth_requests"))

    @cached_property
    def clients(self) -> ClientStore:
        from wallet_mcp.storage.clients import ClientStore

        return ClientStore(self._db, self._table("clients"))

    @cached_property
    def connection_log(self) -> ConnectionLog:
        """Each step of the clients' connection attempts; a no-op where the function has no table."""
        from wallet_mcp.storage.connection_log import ConnectionLog

        table = self._table("connection_log") if self._has("connection_log") else None
        return ConnectionLog(self._best_effort, table, retention=self._connection_log_retention)

    @cached_property
    def consents(self) -> ConsentStore:
        from wallet_mcp.storage.consents import ConsentStore

        return ConsentStore(self._db, self._table("consents"))

    @cached_property
    def identity_links(self) -> IdentityLinkStore:
        """Upstream identities linked to users (kept in the users table)."""
        from wallet_mcp.storage.identity_links import IdentityLinkStore

        return IdentityLinkStore(self._db, self._table("users"))

    @cached_property
    def upstream_logins(self) -> UpstreamLoginStore:
        """Pending upstream sign-ins (kept in the authorization-requests table)."""
        from wallet_mcp.storage.upstream_logins import UpstreamLoginStore

        return UpstreamLoginStore(self._db, self._table("auth_requests"))

    @cached_property
    def personal_tokens(self) -> PersonalTokenStore:
        from wallet_mcp.storage.personal_tokens import PersonalTokenStore

        return PersonalTokenStore(self._db, self._table("personal_tokens"))

    @cached_property
    def rate_limits(self) -> RateLimits:
        from wallet_mcp.storage.rate_limits import RateLimits

        return RateLimits(self._db, self._table("rate_limits"))

    @cached_property
    def refresh_tokens(self) -> RefreshTokenStore:
        from wallet_mcp.storage.refresh_tokens import RefreshTokenStore

        return RefreshTokenStore(self._db, self._table("refresh_tokens"))

    @cached_property
    def revocations(self) -> RevocationList:
        return RevocationList(self._db, self._table("revoked_tokens"))

    @cached_property
    def sessions(self) -> SessionStore:
        from wallet_mcp.storage.sessions import SessionStore

        return SessionStore(self._db, self._table("sessions"))

    @cached_property
    def confirmations(self) -> ConfirmationStore:
        """Pending money movements awaiting the person (kept in the wallet table)."""
        from wallet_mcp.wallet.confirmations import ConfirmationStore

        return ConfirmationStore(self._db, self._table("wallet"))

    @cached_property
    def users(self) -> UserStore:
        from wallet_mcp.storage.users import UserStore

        return UserStore(self._db, self._table("users"))

    @cached_property
    def wallet(self) -> WalletStore:
        from wallet_mcp.wallet.store import WalletStore

        return WalletStore(self._db, self._table("wallet"))


class Deployment:
    """What one function builds from its settings: the stores, and the services shared between
    functions. Functions compose their endpoints from these and nothing else."""

    def __init__(
        self,
        settings: Settings,
        *,
        dynamodb: DynamoDBClient | None = None,
        kms: KMSClient | None = None,
        clock: Callable[[], int] = wall_clock,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._kms = kms
        tables = settings.tables
        self.stores = Stores(
            dynamodb or aws.dynamodb(),
            tables.require,
            lambda name: bool(getattr(tables, name)),
            best_effort=None if dynamodb else aws.dynamodb_best_effort,
            connection_log_retention=settings.connection_log_retention,
        )
        coldstart.before_snapshot(aws.drop_connections)
        coldstart.after_restore(self.after_restore)

    def after_restore(self) -> None:
        """SnapStart (`coldstart.restored`): no connection, and no cache whose age is read from a
        clock, comes through the snapshot. Only what was built is touched (cached properties)."""
        aws.drop_connections()
        built = self.__dict__
        if "keys" in built:
            self.keys.forget()
        if "revocation_cache" in built:
            self.revocation_cache.forget()
        if "owners" in built:
            self.owners.forget()

    @cached_property
    def kms(self) -> KMSClient:
        return self._kms or aws.kms()

    @cached_property
    def keys(self) -> KmsPublicKeys:
        return KmsPublicKeys(self.kms, self.settings.verification_key_ids)

    @cached_property
    def signer(self) -> KmsJwtSigner:
        return KmsJwtSigner(
            self.kms,
            self.keys,
            self.settings.require_signing_key(),
            alg=signing_algorithm(self.settings.fapi2_profile),
        )

    @cached_property
    def confirmation_secret(self) -> bytes:
        """32 bytes derived once per cold start from the KMS HMAC key (GenerateMac over a fixed
        label): the same in every instance, never stored, and gone with the key. One KMS call per
        cold start, not one per token (the SDK's codec must be synchronous and fast)."""
        response = self.kms.generate_mac(
            KeyId=self.settings.require_confirmation_key(),
            Message=CONFIRMATION_SECRET_LABEL,
            MacAlgorithm="HMAC_SHA_256",
        )
        return bytes(response["Mac"])

    @cached_property
    def dpop_nonce_key(self) -> bytes:
        """The key of the DPoP server nonces (RFC 9449 §8-9), derived like `confirmation_secret`
        but over its own label: the same in every instance and function, so a nonce the token
        endpoint hands out is good at the resources too. One KMS call per cold start, on the first
        DPoP proof: none per request."""
        response = self.kms.generate_mac(
            KeyId=self.settings.require_confirmation_key(),
            Message=DPOP_NONCE_LABEL,
            MacAlgorithm="HMAC_SHA_256",
        )
        return bytes(response["Mac"])

    @cached_property
    def dpop_checker(self) -> dpop.DpopChecker:
        """DPoP proof checking with server nonces, and a replay cache per instance (or, with
        `dpop_strict_replay`, a conditional write per proof)."""
        first_use: dpop.FirstUse = (
            self.stores.used_proofs.first_use
            if self.settings.dpop_strict_replay
            else dpop.ReplayCache().first_use
        )
        algorithms = dpop.algorithms_for(self.settings.fapi2_profile)
        return dpop.DpopChecker(dpop.Nonces(lambda: self.dpop_nonce_key), first_use, algorithms=algorithms)

    def public_url(self, path: str, host: str | None) -> str:
        """The URL a request for `path` came in on, as the client named it (locally, on the
        loopback name it used): what a DPoP proof's `htu` must be."""
        return self.settings.as_addressed(self.settings.issuer + path, host)

    @cached_property
    def rate_rules(self) -> Rules:
        from wallet_mcp.limits import Rules  # the OAuth and account functions' limits: not the MCP function's

        return Rules.from_settings(self.settings.rate_limits)

    @cached_property
    def revoker(self) -> Revoker:
        """The one "end a grant" service, over every grant store this function was given."""
        return revoker(self.stores, access_token_ttl=self.settings.access_token_ttl, clock=self.clock)

    @cached_property
    def owners(self) -> OwnerResolver:
        from wallet_mcp.wallet.owners import OwnerResolver

        return OwnerResolver(self.stores.clients, ttl=self.settings.revocation_poll_seconds)

    @cached_property
    def revocation_cache(self) -> CachedRevocations:
        return CachedRevocations(self.stores.revocations, poll_seconds=self.settings.revocation_poll_seconds)

    @cached_property
    def wallet(self) -> WalletService:
        from wallet_mcp.wallet.service import WalletService

        return WalletService(self.stores.wallet)

    def verifier(self, audience: str | tuple[str, ...]) -> AccessTokenVerifier:
        return AccessTokenVerifier(self.keys, issuer=self.settings.issuer, audience=audience)

    def grant_limits(self, resource_metadata_url: str) -> GrantLimitsCheck | None:
        """The limits the person chose for each app (None: this function has no consents table)."""
        if not self.stores.has("consents"):
            return None
        from wallet_mcp.resource.grant_limits import GrantLimitsCheck
        from wallet_mcp.wallet.grant_limits import GrantViews

        return GrantLimitsCheck(
            GrantViews(self.stores.consents), resource_metadata_url=resource_metadata_url, clock=self.clock
        )

    def resource_guard(
        self, audience: str, resource_metadata_url: str, *, personal_tokens: bool = False
    ) -> ResourceGuard:
        """The resource's one bearer pipeline for `audience` (exactly: a token minted for another
        resource of this server is refused), with personal access tokens when the resource takes them."""
        # here, not at import, like the stores: the resources' pipeline, which the authorization
        # server's functions (their cold starts) never build
        from wallet_mcp.resource.authenticate import ResourceGuard

        return ResourceGuard(
            self.verifier(audience),
            audience=audience,
            resource_metadata_url=resource_metadata_url,
            revoked=self.revocation_cache.current,
            owners=self.owners,
            personal_tokens=self.stores.personal_tokens if personal_tokens else None,
            dpop_checker=self.dpop_checker,
            dpop_required=self.settings.dpop_required,
            url_of=self.public_url,
        )


def revoker(stores: Stores, *, access_token_ttl: int, clock: Callable[[], int]) -> Revoker:
    """A `Revoker` over the grant stores `stores` has (the token function has no sessions table,
    the administration CLI has them all)."""
    # here, not at import: ending grants is the authorization server's (the MCP function never
    # does, and would load every grant store's module for it)
    from wallet_mcp.oauth.rules.revocation import Revoker

    return Revoker(
        refresh_tokens=stores.refresh_tokens,
        revocations=stores.revocations,
        audit=stores.audit,
        access_token_ttl=access_token_ttl,
        clock=clock,
        consents=stores.consents if stores.has("consents") else None,
        clients=stores.clients if stores.has("clients") else None,
        users=stores.users if stores.has("users") else None,
        sessions=stores.sessions if stores.has("sessions") else None,
        personal_tokens=stores.personal_tokens if stores.has("personal_tokens") else None,
    )
