"""A user's grants: the applications they approved, and withdrawing one.

A grant is the user's consent for a client (ConsentsTable) plus the refresh tokens issued on it
(RefreshTokensTable `user-client-index`). Withdrawing it deletes the consent, revokes every refresh
token of that user and client, and lists the access tokens that may still be live as revoked. The
token endpoint checks in its issuing transaction that the consent still exists, so a code or
refresh token in flight while the grant is withdrawn issues nothing afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.storage.consents import ConsentStore
from wallet_mcp.storage.refresh_tokens import GrantToken, RefreshTokenStore
from wallet_mcp.storage.revocations import RevocationList


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    client_id: str
    client_name: str
    scope: tuple[str, ...]
    granted_at: int | None
    """When the user first approved it (None: tokens outlive a consent that is gone)."""
    last_used_at: int | None
    """When it last obtained tokens on this grant (None: not since it was approved)."""
    active_refresh_tokens: int
    client_exists: bool


@dataclass(frozen=True, slots=True)
class Withdrawal:
    client_id: str
    had_consent: bool
    refresh_tokens_revoked: int
    access_tokens_revoked: int


class Grants:
    def __init__(
        self,
        *,
        consents: ConsentStore,
        refresh_tokens: RefreshTokenStore,
        revocations: RevocationList,
        clients: ClientStore,
        audit: AuditLog,
        access_token_ttl: int,
    ) -> None:
        self._consents = consents
        self._refresh_tokens = refresh_tokens
        self._revocations = revocations
        self._clients = clients
        self._audit = audit
        self._access_ttl = access_token_ttl

    def connected_apps(self, user_id: str, *, now: int) -> list[ConnectedApp]:
        """Every app the user approved, or that still holds a live refresh token of theirs; most
        recently used first. Three reads: the consents, the user's tokens, the clients."""
        consents = {c.client_id: c for c in self._consents.of_user(user_id)}
        tokens: dict[str, list[GrantToken]] = {}
        for token in self._refresh_tokens.of_user(user_id):
            tokens.setdefault(token.client_id, []).append(token)
        live = {
            client_id: [t for t in found if t.status == "active" and t.expires_at > now]
            for client_id, found in tokens.items()
        }
        client_ids = set(consents) | {c for c, found in live.items() if found}
        clients = self._clients.get_many(client_ids)
        apps = []
        for client_id in client_ids:
            consent = consents.get(client_id)
            client = clients.get(client_id)
            issued = [t.issued_at for t in tokens.get(client_id, [])]
            apps.append(
                ConnectedApp(
                    client_id=client_id,
                    client_name=client.client_name if client else client_id,
                    scope=consent.scope if consent else (),
                    granted_at=consent.granted_at if consent else None,
                    last_used_at=max(issued) if issued else None,
                    active_refresh_tokens=len(live.get(client_id, [])),
                    client_exists=client is not None,
                )
            )
        return sorted(apps, key=lambda a: (-(a.last_used_at or a.granted_at or 0), a.client_name))

    def withdraw(self, user_id: str, client_id: str, *, actor: str, source: str, now: int) -> Withdrawal:
        """End the client's access to the user's wallet at once: consent, refresh tokens, and the
        access tokens issued with them that have not expired yet."""
        consent = self._consents.withdraw(user_id, client_id)
        refresh_revoked = access_revoked = 0
        for token in self._refresh_tokens.of_user(user_id, client_id):
            if token.status == "revoked":
                continue
            # a rotated token is dead already, but the access token issued with it may be live
            if token.status != "active" and token.issued_at + self._access_ttl <= now:
                continue
            record = self._refresh_tokens.revoke(token.token_hash)
            if record is None:
                continue
            if record.status == "active":
                refresh_revoked += 1
            if record.access_expires_at > now:
                self._revocations.revoke(record.access_jti, record.access_expires_at, now=now)
                access_revoked += 1
        withdrawal = Withdrawal(client_id, consent is not None, refresh_revoked, access_revoked)
        self._audit.record(
            AuditEvent(
                "grant_revoked",
                subject=user_id,
                client_id=client_id,
                source=source,
                details={
                    "by": actor,
                    "refresh_tokens": refresh_revoked,
                    "access_tokens": access_revoked,
                },
            )
        )
        return withdrawal
