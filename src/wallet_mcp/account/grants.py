"""A person's grants: the applications they approved, the clients that act on their wallet, their
personal access tokens; and withdrawing any of them.

A grant is the person's consent for a client (ConsentsTable) plus the tokens issued on it: refresh
tokens (RefreshTokensTable `user-client-index`), and access tokens, with or without a refresh
token. A client-credentials client an administrator made the person the owner of acts on their
wallet without a consent: it is listed too. Withdrawing either is `Revoker.end_grant` — consent,
refresh tokens, every access token of the grant (within one revocation poll), and the client's
ownership of the wallet. A grant a company's IdP made (an ID-JAG at the token endpoint) is a
consent item marked `granted_by`: listed as "granted by <IdP>", withdrawn the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wallet_mcp.oauth.rules.grants import ended_by_client
from wallet_mcp.oauth.rules.revocation import Actor, Ended, Revoker
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.storage.consents import ConsentStore, Limits
from wallet_mcp.storage.personal_tokens import PersonalToken, PersonalTokenStore
from wallet_mcp.storage.refresh_tokens import GrantToken, RefreshTokenStore


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    client_id: str
    client_name: str
    scope: tuple[str, ...]
    granted_at: int | None
    """When the user first approved it (None: tokens outlive a consent that is gone, or a client
    they own that needs no consent)."""
    last_used_at: int | None
    """When it last obtained tokens on this grant (None: not since it was approved)."""
    active_refresh_tokens: int
    client_exists: bool
    acts_as_owner: bool = False
    """A client-credentials client acting on the person's wallet (no consent, no refresh token)."""
    granted_by: tuple[str, ...] = ()
    """The enterprise IdPs (their names) that granted this access with an ID-JAG (docs/enterprise.md)."""
    limits: Limits | None = None
    """What the person allowed it at consent (None: no consent to hold limits)."""


class Grants:
    def __init__(
        self,
        *,
        consents: ConsentStore,
        refresh_tokens: RefreshTokenStore,
        clients: ClientStore,
        personal_tokens: PersonalTokenStore,
        revoker: Revoker,
        idp_names: Mapping[str, str] | None = None,
    ) -> None:
        """`idp_names`: the trusted enterprise IdPs, id → the name people see."""
        self._idp_names = dict(idp_names or {})
        self._consents = consents
        self._refresh_tokens = refresh_tokens
        self._clients = clients
        self._personal_tokens = personal_tokens
        self._revoker = revoker

    def connected_apps(self, user_id: str, *, now: int) -> list[ConnectedApp]:
        """Every app the user approved, that still holds a live refresh token of theirs, or that
        acts on their wallet as its owner; most recently used first. Four reads: the consents, the
        user's tokens, the clients they own, the clients."""
        consents = {c.client_id: c for c in self._consents.of_user(user_id)}
        tokens: dict[str, list[GrantToken]] = {}
        for token in self._refresh_tokens.of_user(user_id):
            tokens.setdefault(token.client_id, []).append(token)
        active = {
            client_id: [t for t in found if t.status == "active" and t.expires_at > now]
            for client_id, found in tokens.items()
        }
        owned = {c.client_id: c for c in self._clients.owned_by(user_id)}
        wanted = set(consents) | {c for c, found in active.items() if found}
        clients = {**self._clients.get_many(wanted - set(owned)), **owned}
        # an administrator's cut-off ends refresh tokens without touching them: not live any more
        live = {
            client_id: [t for t in found if not ended_by_client(clients.get(client_id), t.issued_at)]
            for client_id, found in active.items()
        }
        client_ids = set(consents) | {c for c, found in live.items() if found}
        apps = []
        for client_id in client_ids | set(owned):
            consent = consents.get(client_id)
            client = clients.get(client_id)
            issued = [t.issued_at for t in tokens.get(client_id, [])]
            last_used = max(issued) if issued else None
            if client_id in owned:
                last_used = client.last_used_at if client else None
            apps.append(
                ConnectedApp(
                    client_id=client_id,
                    client_name=client.client_name if client else client_id,
                    scope=tuple(dict.fromkeys((*consent.scope, *consent.enterprise_scope)))
                    if consent
                    else (client.scope if client_id in owned and client else ()),
                    granted_at=consent.granted_at if consent else None,
                    last_used_at=last_used,
                    active_refresh_tokens=len(live.get(client_id, [])),
                    client_exists=client is not None and not client.is_deleted,
                    acts_as_owner=client_id in owned,
                    granted_by=tuple(self._idp_names.get(i, i) for i in consent.granted_by)
                    if consent
                    else (),
                    limits=consent.limits if consent else None,
                )
            )
        return sorted(apps, key=lambda a: (-(a.last_used_at or a.granted_at or 0), a.client_name))

    def withdraw(self, user_id: str, client_id: str, actor: Actor) -> Ended:
        """End the client's access to the user's wallet at once."""
        return self._revoker.end_grant(user_id, client_id, actor)

    def personal_tokens(self, user_id: str) -> list[PersonalToken]:
        return self._personal_tokens.of_user(user_id)

    def revoke_personal_token(self, user_id: str, token_id: str, actor: Actor) -> bool:
        return self._revoker.end_personal_token(user_id, token_id, actor)
