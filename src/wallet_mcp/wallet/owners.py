"""Whose wallet a token acts on: the user it was issued for, or for a client-credentials token (no
user; RFC 9068 §2.2 makes `sub` the client id) the user who owns that client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.service import WalletError


class NoWalletOwner(WalletError):
    status = 403
    code = "access_denied"

    def __init__(self) -> None:
        super().__init__(
            "this client acts without a user and no wallet owner is configured for it; "
            "sign in as a user (authorization code) or ask an administrator to assign an owner"
        )


class OwnerResolver:
    """Caches client owners for `ttl` seconds (by default the revocation poll's 5 s, so an owner
    removed from a client stops reaching the wallet within the same bound as a revocation): a
    client-credentials call costs one read per client and interval."""

    def __init__(
        self, clients: ClientStore, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clients = clients
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Read every owner afresh (after a SnapStart restore the cache's ages mean nothing)."""
        with self._lock:
            self._cache = {}

    @staticmethod
    def is_client_token(principal: AccessToken) -> bool:
        return principal.subject == principal.client_id

    def owner_of(self, principal: AccessToken) -> str:
        owner = self.lookup(principal)
        if owner is None:
            raise NoWalletOwner
        return owner

    def lookup(self, principal: AccessToken) -> str | None:
        """The person the token acts for: its subject, or its client's owner (None: nobody)."""
        if not self.is_client_token(principal):
            return principal.subject
        now = self._clock()
        cached = self._cache.get(principal.client_id)
        if cached is None or now - cached[0] > self._ttl:
            client = self._clients.get(principal.client_id, now=int(time.time()))
            cached = (now, client.owner_user_id if client else None)
            with self._lock:
                self._cache[principal.client_id] = cached
        return cached[1]

    def may_debit(self, principal: AccessToken) -> bool:
        """Whether the token may ask for a debit at all: a person's token may (they confirm it);
        a client-credentials token only if an administrator allowed its client (read fresh, not
        cached: this decides whether money may move)."""
        if not self.is_client_token(principal):
            return True
        client = self._clients.get(principal.client_id, now=int(time.time()))
        return client is not None and client.debits_allowed
