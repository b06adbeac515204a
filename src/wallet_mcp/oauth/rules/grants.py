"""Is this grant still alive? The one rule every path that honours a grant asks.

A grant is what a token carries: a client, the person it acts for (the user, or for a
client-credentials token the client's owner), its scopes and when it was issued. It is dead when
- the token itself was revoked (RFC 7009), or its refresh family ended;
- the client was disabled or deleted (resource servers: a client cut-off; the token endpoint and
  the authorization endpoint: the client record itself, which a tombstone or `disabled` makes
  unusable, and `grants_valid_after`, which outlives re-enabling);
- the person was disabled (refused whenever issued, while disabled) or, before, cut off;
- the person withdrew this client's access (or an administrator did for them);
- the client's allowance was narrowed and the grant carries a scope outside it;
- the enterprise IdP the grant came from (an ID-JAG, `idp`) was cut off by an administrator:
  refused while it stays cut off, whenever issued, and until they expire once it is restored.
- the duration the person chose for it at consent is over (`expires_at`, from the consent record:
  given by the callers that read it — the resource servers before a wallet call, and the token
  endpoint checks the same in its transaction, `ConsentStore.still_granted_action`).

Asked by the MCP endpoint and the wallet API (from the polled revocation list, no AWS call), by
introspection (a consistent read of the entries that concern the token), by the token endpoint
before a refresh or a code redemption, and by the authorization endpoint before a silent approval
(both with the client record they read anyway). A cut-off covers what was issued at or before its
second (`<=`): the second of the cut-off itself is on the safe side.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from wallet_mcp.storage.clients import ClientRecord
from wallet_mcp.storage.revocations import Revoked
from wallet_mcp.tokens.access_tokens import AccessToken

REVOKED: Final = "token revoked"
CLIENT_ENDED: Final = "the client's access was ended by an administrator"
USER_DISABLED: Final = "the user's account is disabled"
USER_CUT_OFF: Final = "the user's access was ended by an administrator"
WITHDRAWN: Final = "the user has withdrawn this application's access"
SCOPE_NARROWED: Final = "a scope of this grant is no longer allowed for the client"
IDP_CUT_OFF: Final = "the identity provider that granted this access was cut off by an administrator"
EXPIRED: Final = "the time the user allowed this application has run out; ask the user to allow it again"


class NotRead(Enum):
    """The caller did not read the client record (a resource server: it has the cut-offs)."""

    NOT_READ = "not read"


NOT_READ: Final = NotRead.NOT_READ


@dataclass(frozen=True, slots=True)
class Grant:
    client_id: str
    user_id: str | None
    """The person the grant acts for; None: a client that acts for nobody."""
    scopes: frozenset[str]
    issued_at: int
    """When this token (or, for a refresh, the grant it continues) was issued."""
    jti: str | None = None
    idp: str | None = None
    """The enterprise IdP that granted it (an ID-JAG), if one did."""

    @classmethod
    def of(cls, token: AccessToken, owner: str | None) -> Grant:
        return cls(token.client_id, owner, token.scopes, token.issued_at, token.jti, token.idp)


def ended_by_client(client: ClientRecord | None, issued_at: int) -> bool:
    """Whether the client's record ends what was issued (or approved) at `issued_at`: the client is
    gone (unknown, deleted), or was cut off at or after that second (`grants_valid_after`, set when
    an administrator disables it, outlives enabling it again)."""
    if client is None or client.is_deleted:
        return True
    return client.grants_valid_after is not None and issued_at <= client.grants_valid_after


def lapsed(expires_at: int | None, now: int) -> str | None:
    """Whether the duration chosen at consent is over (None: until revoked)."""
    return EXPIRED if expires_at is not None and now >= expires_at else None


def refusal(
    grant: Grant,
    revoked: Revoked,
    client: ClientRecord | NotRead | None = NOT_READ,
    *,
    expires_at: int | None = None,
    now: int = 0,
) -> str | None:
    """Why the grant is dead, or None while it is alive.

    `client` is the usable client record when the caller has read it (None: there is no usable
    client: unknown, expired, disabled or deleted); `expires_at`, the end of the duration the
    person chose, when the caller has read the consent record (compared with `now`)."""
    ended = lapsed(expires_at, now)
    if ended is not None:
        return ended
    if grant.jti is not None and grant.jti in revoked.jtis:
        return REVOKED
    client_cut = revoked.clients.get(grant.client_id)
    if client_cut is not None and grant.issued_at <= client_cut:
        return CLIENT_ENDED
    if not isinstance(client, NotRead):
        if ended_by_client(client, grant.issued_at):
            return CLIENT_ENDED
        assert client is not None
        if not grant.scopes <= set(client.scope):
            return SCOPE_NARROWED
    if grant.user_id is not None:
        user = revoked.users.get(grant.user_id)
        if user is not None and user.disabled:
            return USER_DISABLED
        if user is not None and grant.issued_at <= user.not_before:
            return USER_CUT_OFF
        withdrawn = revoked.grants.get((grant.user_id, grant.client_id))
        if withdrawn is not None and grant.issued_at <= withdrawn:
            return WITHDRAWN
    if grant.idp is not None:
        idp = revoked.idps.get(grant.idp)
        if idp is not None and (idp.disabled or grant.issued_at <= idp.not_before):
            return IDP_CUT_OFF
    narrowed = revoked.scopes.get(grant.client_id)
    if (
        narrowed is not None
        and grant.issued_at <= narrowed.not_before
        and not grant.scopes <= narrowed.allowed
    ):
        return SCOPE_NARROWED
    return None
