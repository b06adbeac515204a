"""The revocation list (RevokedTokensTable: partition `kind`, sort key `jti`; TTL `expires_at`).

Access tokens are self-contained JWTs: ending them before they expire means listing what ended
until the last of them has expired. Three partitions:

- `access_token`: one token, by its `jti`, until its `exp`.
- `client`: a client disabled or deleted (sort key: the client_id) with `not_before`, the time of
  the cut-off: its tokens issued at or before it are refused. Kept one access-token lifetime.
- `cutoff`: everything else that ends many tokens at once, by sort key:
  - `user#<user_id>`: a user disabled by an administrator. `not_before` is when; while `disabled`
    is set the item has no `expires_at` (it stays until the user is enabled again) and every token
    of the user is refused, whenever issued; once enabled, it expires one access-token lifetime later.
  - `grant#<user_id>#<client_id>`: a person withdrew an app's access (or an admin did for them):
    that user's tokens of that client issued at or before `not_before`.
  - `idp#<idp id>`: an administrator cut an enterprise IdP off: every token issued on one of its
    grants (ID-JAG, `idp` claim) is refused, whenever issued, while `disabled` is set (no
    `expires_at`); restored, those issued at or before `not_before` stay refused until they expire.
  - `scope#<client_id>`: an administrator narrowed what a client may be granted: its tokens issued
    at or before `not_before` that carry a scope outside `allowed` are refused.

Storage only: what the entries mean for a token is `oauth.rules.grants`. Resource servers keep the
list in memory and refresh it with one Query per partition at most every `poll_seconds` (default
5 s): an ending reaches them within that bound and their hot path makes no AWS call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from wallet_mcp.storage import items
from wallet_mcp.storage.batch import get_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

KIND: Final = "access_token"
CLIENT_KIND: Final = "client"
CUTOFF_KIND: Final = "cutoff"
_LIVE: Final = "attribute_not_exists(expires_at) OR expires_at > :now"


@dataclass(frozen=True, slots=True)
class UserCutoff:
    not_before: int
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class ScopeCutoff:
    not_before: int
    allowed: frozenset[str]


@dataclass(frozen=True)
class Revoked:
    """What the list says now (all of it, or the entries that concern one token)."""

    jtis: frozenset[str] = frozenset()
    clients: Mapping[str, int] = field(default_factory=dict)
    """client_id → `not_before`."""
    users: Mapping[str, UserCutoff] = field(default_factory=dict)
    grants: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """(user_id, client_id) → `not_before`."""
    scopes: Mapping[str, ScopeCutoff] = field(default_factory=dict)
    idps: Mapping[str, UserCutoff] = field(default_factory=dict)
    """Enterprise IdP id → its cut-off (the same shape as a person's)."""


def user_key(user_id: str) -> str:
    return f"user#{user_id}"


def grant_key(user_id: str, client_id: str) -> str:
    # user ids never contain '#': the first one separates the two ids
    return f"grant#{user_id}#{client_id}"


def scope_key(client_id: str) -> str:
    return f"scope#{client_id}"


def idp_key(idp_id: str) -> str:
    return f"idp#{idp_id}"


logger = logging.getLogger(__name__)


class RevocationList:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    @staticmethod
    def key(kind: str, sort: str) -> items.Item:
        return {"kind": items.s(kind), "jti": items.s(sort)}

    def _put(self, kind: str, sort: str, attributes: Mapping[str, AttributeValueTypeDef]) -> None:
        self._db.put_item(TableName=self.table, Item={**self.key(kind, sort), **attributes})

    def revoke(self, jti: str, expires_at: int, *, now: int) -> None:
        if expires_at <= now:
            return  # expired already: nothing to deny
        self._put(KIND, jti, {"expires_at": items.n(expires_at)})

    def revoke_client(self, client_id: str, *, now: int, access_token_ttl: int) -> None:
        """Every access token of the client issued until now stops working (within a poll)."""
        self._put(
            CLIENT_KIND,
            client_id,
            {"not_before": items.n(now), "expires_at": items.n(now + access_token_ttl)},
        )

    def disable_user(self, user_id: str, *, now: int) -> None:
        """Every token of the user stops working, and stays refused while the user is disabled."""
        self._put(
            CUTOFF_KIND, user_key(user_id), {"not_before": items.n(now), "disabled": items.boolean(True)}
        )

    def enable_user(self, user_id: str, *, now: int, access_token_ttl: int) -> None:
        """The user may be issued tokens again; those from before stay refused until they expire."""
        # never disabled (or long expired): nothing to end
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self.table,
                Key=self.key(CUTOFF_KIND, user_key(user_id)),
                UpdateExpression="REMOVE disabled SET expires_at = :expires",
                ConditionExpression="attribute_exists(jti)",
                ExpressionAttributeValues={":expires": items.n(now + access_token_ttl)},
            )

    def cut_off_idp(self, idp_id: str, *, now: int) -> None:
        """Every token issued on the IdP's grants stops working, and new ones are refused, until
        the IdP is restored."""
        self._put(CUTOFF_KIND, idp_key(idp_id), {"not_before": items.n(now), "disabled": items.boolean(True)})

    def restore_idp(self, idp_id: str, *, now: int, access_token_ttl: int) -> None:
        """The IdP's grants are honoured again; tokens from before stay refused until they expire."""
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self.table,
                Key=self.key(CUTOFF_KIND, idp_key(idp_id)),
                UpdateExpression="REMOVE disabled SET expires_at = :expires",
                ConditionExpression="attribute_exists(jti)",
                ExpressionAttributeValues={":expires": items.n(now + access_token_ttl)},
            )

    def end_grant(self, user_id: str, client_id: str, *, now: int, access_token_ttl: int) -> None:
        """The user's tokens of this client issued until now stop working (within a poll)."""
        self._put(
            CUTOFF_KIND,
            grant_key(user_id, client_id),
            {"not_before": items.n(now), "expires_at": items.n(now + access_token_ttl)},
        )

    def narrow_client(
        self, client_id: str, allowed: Iterable[str], *, now: int, access_token_ttl: int
    ) -> None:
        """The client's tokens issued until now that carry a scope outside `allowed` stop working."""
        self._put(
            CUTOFF_KIND,
            scope_key(client_id),
            {
                "not_before": items.n(now),
                "allowed": items.ss(sorted(set(allowed))),
                "expires_at": items.n(now + access_token_ttl),
            },
        )

    # --- reading ---------------------------------------------------------------------------------

    def live(self, *, now: int) -> Revoked:
        """Every entry that still ends something: one Query per partition."""
        found = [
            *self._query(KIND, "kind, jti", now),
            *self._query(CLIENT_KIND, "kind, jti, not_before", now),
            *self._query(CUTOFF_KIND, "kind, jti, not_before, disabled, allowed", now),
        ]
        return _revoked(found)

    def entries(
        self,
        *,
        jti: str,
        client_id: str,
        user_ids: Iterable[str] = (),
        idp: str | None = None,
        now: int,
    ) -> Revoked:
        """The entries that concern one token (a consistent read: introspection, token issuance)."""
        users = list(dict.fromkeys(u for u in user_ids if u))
        keys = [
            self.key(KIND, jti),
            self.key(CLIENT_KIND, client_id),
            self.key(CUTOFF_KIND, scope_key(client_id)),
            *(self.key(CUTOFF_KIND, user_key(u)) for u in users),
            *(self.key(CUTOFF_KIND, grant_key(u, client_id)) for u in users),
            *([self.key(CUTOFF_KIND, idp_key(idp))] if idp else []),
        ]
        found = get_items(self._db, [(self.table, key) for key in keys])
        return _revoked(i for i in found if i is not None and _is_live(i, now))

    def idp_cutoffs(self, idp_ids: Iterable[str], *, now: int) -> Mapping[str, UserCutoff]:
        """The enterprise IdPs among `idp_ids` that are cut off, or were (one BatchGetItem)."""
        keys = [self.key(CUTOFF_KIND, idp_key(i)) for i in dict.fromkeys(idp_ids)]
        if not keys:
            return {}
        found = get_items(self._db, [(self.table, key) for key in keys])
        return _revoked(i for i in found if i is not None and _is_live(i, now)).idps

    def _query(self, kind: str, projection: str, now: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "kind = :k",
            "FilterExpression": _LIVE,
            "ExpressionAttributeValues": {":k": items.s(kind), ":now": items.n(now)},
            "ProjectionExpression": projection,
        }
        while True:
            response = self._db.query(**kwargs)
            found.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _is_live(item: Mapping[str, Any], now: int) -> bool:
    expires_at = items.get_n(item, "expires_at")
    return expires_at is None or expires_at > now


def _revoked(found: Iterable[Mapping[str, Any]]) -> Revoked:
    jtis: set[str] = set()
    clients: dict[str, int] = {}
    users: dict[str, UserCutoff] = {}
    grants: dict[tuple[str, str], int] = {}
    scopes: dict[str, ScopeCutoff] = {}
    idps: dict[str, UserCutoff] = {}
    for item in found:
        kind, sort = items.req_s(item, "kind"), items.req_s(item, "jti")
        if kind == KIND:
            jtis.add(sort)
        elif kind == CLIENT_KIND:
            clients[sort] = items.req_n(item, "not_before")
        elif kind == CUTOFF_KIND:
            what, _, rest = sort.partition("#")
            not_before = items.req_n(item, "not_before")
            if what == "user":
                users[rest] = UserCutoff(not_before, items.get_bool(item, "disabled"))
            elif what == "grant":
                user_id, _, client_id = rest.partition("#")
                grants[(user_id, client_id)] = not_before
            elif what == "scope":
                scopes[rest] = ScopeCutoff(not_before, frozenset(items.get_list(item, "allowed")))
            elif what == "idp":
                idps[rest] = UserCutoff(not_before, items.get_bool(item, "disabled"))
    return Revoked(frozenset(jtis), clients, users, grants, scopes, idps)


class CachedRevocations:
    """The revocation list as a resource server sees it: in memory, refreshed every `poll_seconds`."""

    def __init__(
        self,
        source: RevocationList,
        *,
        poll_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._poll = poll_seconds
        self._clock = clock
        self._revoked = Revoked()
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def current(self) -> Revoked:
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self._poll:
            with self._lock:
                if self._fetched_at is None or now - self._fetched_at >= self._poll:
                    self._refresh(now)
        return self._revoked

    def forget(self) -> None:
        """Poll again before the next answer, and take no stale list as a fallback (after a
        SnapStart restore the list in memory is as old as the snapshot)."""
        with self._lock:
            self._revoked = Revoked()
            self._fetched_at = None

    def _refresh(self, now: float) -> None:
        try:
            self._revoked = self._source.live(now=int(time.time()))
        except Exception:
            # a list that is a little stale beats refusing every request; none at all fails closed
            if self._fetched_at is None or now - self._fetched_at > self._poll * 12:
                raise
            logger.warning("revocation list not refreshed; using the previous one")
            return
        self._fetched_at = now
