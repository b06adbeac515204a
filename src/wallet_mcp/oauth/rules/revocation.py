"""Ending access: the one place that ends a grant, and everything built on it.

- `end_family`: one refresh-token family (an RFC 7009 revocation of a refresh token, a reused
  refresh token, a replayed code): its refresh tokens, and the access tokens issued with them.
- `end_grant`: everything one person gave one client (withdrawn on /account or by an
  administrator): the remembered consent, every refresh token, and — through a grant cut-off in
  the revocation list — every access token issued until now, with or without a refresh token; for
  the person's own client-credentials client, its ownership of their wallet.
- `end_client`: every grant of a client (disabled or deleted by an administrator): the record
  remembers when (`grants_valid_after`, which outlives re-enabling) and a client cut-off ends its
  access tokens.
- `end_idp`: every grant an enterprise IdP made (ID-JAG, docs/enterprise.md), cut off at once by
  an administrator: an IdP cut-off in the revocation list refuses every token issued on its grants
  and every new one while it stays cut off (`restore_idp` lifts it), and the grants it recorded go
  from the people's /account.
- `end_user`: every grant of a person (disabled by an administrator): their sessions, consents,
  refresh tokens and personal access tokens, and a user entry in the revocation list that refuses
  their tokens — and those of the clients they own — while they stay disabled.

Each writes what resource servers poll (docs/storage.md, RevokedTokensTable), so access tokens stop
within one revocation poll; what decides whether a token is still alive is
`oauth.rules.grants.refusal`. Every ending is audited with who did it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from wallet_mcp.storage import items
from wallet_mcp.storage.audit import AuditEvent, AuditLog, Event
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.consents import ConsentStore
from wallet_mcp.storage.personal_tokens import PersonalTokenStore
from wallet_mcp.storage.refresh_tokens import RefreshTokenStore
from wallet_mcp.storage.revocations import RevocationList
from wallet_mcp.storage.sessions import SessionStore
from wallet_mcp.storage.users import UserRecord, UserStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

TOMBSTONE_SECONDS: Final = 30 * 24 * 3600
"""How long a deleted client's tombstone is kept when its id cannot be presented again by anyone
(a registration's random id): long enough for the admin pages' history, then the table forgets it."""


@dataclass(frozen=True, slots=True)
class Ended:
    """What an ending reached (for the audit trail and the page that reports it)."""

    refresh_tokens: int = 0
    access_tokens: int = 0
    consents: int = 0
    sessions: int = 0
    personal_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Actor:
    """Who ended it, and from where."""

    user_id: str
    source: str = "unknown"
    reason: str | None = None


class Revoker:
    """Needs the stores of what it ends; a function that never ends a kind of thing passes None."""

    def __init__(
        self,
        *,
        refresh_tokens: RefreshTokenStore,
        revocations: RevocationList,
        audit: AuditLog,
        access_token_ttl: int,
        clock: Callable[[], int],
        consents: ConsentStore | None = None,
        clients: ClientStore | None = None,
        users: UserStore | None = None,
        sessions: SessionStore | None = None,
        personal_tokens: PersonalTokenStore | None = None,
    ) -> None:
        self._refresh_tokens = refresh_tokens
        self._revocations = revocations
        self._audit = audit
        self._access_ttl = access_token_ttl
        self._clock = clock
        self._consents = consents
        self._clients = clients
        self._users = users
        self._sessions = sessions
        self._personal_tokens = personal_tokens

    # --- one family ---------------------------------------------------------------------------------

    def end_family(self, family_id: str, *, now: int) -> Ended:
        """RFC 7009 §2.1: revoking a refresh token also ends the access tokens of the same grant."""
        access = 0
        records = self._refresh_tokens.revoke_family(family_id)
        for record in records:
            if record.access_expires_at > now:
                self._revocations.revoke(record.access_jti, record.access_expires_at, now=now)
                access += 1
        return Ended(refresh_tokens=sum(r.status == "active" for r in records), access_tokens=access)

    # --- one grant ----------------------------------------------------------------------------------

    def end_grant(self, user_id: str, client_id: str, actor: Actor) -> Ended:
        """Everything `user_id` gave `client_id`, at once."""
        now = self._clock()
        # first the cut-off: from here on no token of the grant passes a resource server's check
        self._revocations.end_grant(user_id, client_id, now=now, access_token_ttl=self._access_ttl)
        consent = self._consents.withdraw(user_id, client_id) if self._consents is not None else None
        refresh = 0
        for token in self._refresh_tokens.of_user(user_id, client_id):
            if token.status == "active" and self._refresh_tokens.revoke(token.token_hash) is not None:
                refresh += 1
        self._disown(user_id, client_id, now)
        ended = Ended(refresh_tokens=refresh, consents=int(consent is not None))
        self._record("grant_revoked", user_id, client_id, actor, ended)
        return ended

    def _disown(self, user_id: str, client_id: str, now: int) -> None:
        """A person's own client-credentials client stops acting on their wallet: its tokens,
        which act for nobody else, end with the grant."""
        if self._clients is None:
            return
        client = self._clients.get_any(client_id)
        if client is not None and client.owner_user_id == user_id:
            self._clients.update(client_id, {"owner_user_id": None})
            self._revocations.revoke_client(client_id, now=now, access_token_ttl=self._access_ttl)

    # --- every grant of a client --------------------------------------------------------------------

    def end_client(self, client: ClientRecord, actor: Actor, *, delete: bool) -> ClientRecord | None:
        """Disable (or delete) a client and end every grant it holds; the record as it now is, or
        None if it is gone already."""
        assert self._clients is not None, "ending a client needs the clients table"
        now = self._clock()
        if delete:
            keep = None if client.metadata_document else TOMBSTONE_SECONDS
            updated = self._clients.delete(client.client_id, now=now, keep_tombstone=keep)
        else:
            changes: dict[str, AttributeValueTypeDef | None] = {
                "disabled": items.boolean(True),
                "grants_valid_after": items.n(now),
            }
            if client.metadata_document:
                # the administrator's decision must outlive the document's cache
                changes["expires_at"] = None
            updated = self._clients.update(client.client_id, changes)
        if updated is None:
            return None
        self._revocations.revoke_client(client.client_id, now=now, access_token_ttl=self._access_ttl)
        return updated

    # --- every grant of an enterprise IdP -----------------------------------------------------------

    def end_idp(self, idp_id: str, actor: Actor) -> Ended:
        """Cut an enterprise IdP off: its grants end at once and new ones are refused."""
        assert self._consents is not None, "ending an IdP's grants needs the consents table"
        now = self._clock()
        # first the cut-off: from here on no token of its grants passes a resource server's check
        self._revocations.cut_off_idp(idp_id, now=now)
        ended = 0
        for consent in self._consents.granted_by_idp(idp_id):
            self._consents.forget_enterprise(consent, idp_id)
            ended += 1
        result = Ended(consents=ended)
        self._record("idp_cut_off", idp_id, None, actor, result)
        return result

    def restore_idp(self, idp_id: str, actor: Actor) -> None:
        """Honour the IdP's grants again; nothing it granted before comes back."""
        self._revocations.restore_idp(idp_id, now=self._clock(), access_token_ttl=self._access_ttl)
        self._record("idp_restored", idp_id, None, actor, Ended())

    # --- every grant of a person --------------------------------------------------------------------

    def end_user(self, user: UserRecord, actor: Actor) -> Ended:
        """Disable a person and end everything they granted, at once."""
        assert self._users is not None and self._consents is not None, "ending a user needs their tables"
        now = self._clock()
        self._revocations.disable_user(user.user_id, now=now)
        self._users.set_disabled(user.username, True)
        sessions = self._sessions.end_all(user.user_id) if self._sessions is not None else 0
        consents = self._consents.of_user(user.user_id)
        for consent in consents:
            self._consents.withdraw(user.user_id, consent.client_id)
        refresh = 0
        for token in self._refresh_tokens.of_user(user.user_id):
            if token.status == "active" and self._refresh_tokens.revoke(token.token_hash) is not None:
                refresh += 1
        pats = self._personal_tokens.revoke_all(user.user_id) if self._personal_tokens is not None else 0
        ended = Ended(refresh_tokens=refresh, consents=len(consents), sessions=sessions, personal_tokens=pats)
        self._record("user_disabled", user.user_id, None, actor, ended)
        return ended

    def restore_user(self, user: UserRecord, actor: Actor) -> None:
        """Enable a person again: they may sign in; nothing they had comes back."""
        assert self._users is not None, "enabling a user needs the users table"
        self._users.set_disabled(user.username, False)
        self._revocations.enable_user(user.user_id, now=self._clock(), access_token_ttl=self._access_ttl)
        self._record("user_enabled", user.user_id, None, actor, Ended())

    # --- a personal access token ------------------------------------------------------------------

    def end_personal_token(self, user_id: str, token_id: str, actor: Actor) -> bool:
        """Revoke one of the person's personal access tokens (the wallet API looks each one up on
        every request: it stops at once); False if they have no such token."""
        assert self._personal_tokens is not None, "revoking a personal token needs its table"
        if not self._personal_tokens.revoke(user_id, token_id):
            return False
        self._audit.record(
            AuditEvent(
                "personal_token_revoked",
                subject=user_id,
                source=actor.source,
                details={"by": actor.user_id, "token_id": token_id},
            )
        )
        return True

    def _record(self, event: Event, subject: str, client_id: str | None, actor: Actor, ended: Ended) -> None:
        details: dict[str, object] = {"by": actor.user_id}
        if actor.reason:
            details["reason"] = actor.reason
        details.update({k: v for k, v in _counts(ended).items() if v})
        self._audit.record(
            AuditEvent(event, subject=subject, client_id=client_id, source=actor.source, details=details)
        )


def _counts(ended: Ended) -> dict[str, int]:
    return {
        "refresh_tokens": ended.refresh_tokens,
        "access_tokens": ended.access_tokens,
        "consents": ended.consents,
        "sessions": ended.sessions,
        "personal_tokens": ended.personal_tokens,
    }
