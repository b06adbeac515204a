"""Revoked access tokens (RevokedTokensTable: partition `kind`, sort key `jti`; TTL `expires_at`).

Access tokens are self-contained JWTs; revoking one before it expires means listing its `jti`
until its `exp` (kind `access_token`). Disabling or deleting a client revokes every access token
it holds at once: one item of kind `client` (sort key = the client_id) with `not_before`, the time
of the cut-off, kept for one access-token lifetime; a token of that client issued at or before
`not_before` is refused. Resource servers keep both lists in memory and refresh them with one
Query each at most every `poll_seconds` (default 5 s): revocation reaches them within that bound
and the hot path makes no AWS call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from wallet_mcp.tokens.access_tokens import AccessToken

KIND: Final = "access_token"
CLIENT_KIND: Final = "client"


@dataclass(frozen=True)
class Revoked:
    """What is revoked and not yet expired: token ids, and clients cut off at a time."""

    jtis: frozenset[str] = frozenset()
    clients: Mapping[str, int] = field(default_factory=dict)
    """client_id → `not_before`: that client's tokens issued at or before it are revoked."""

    def covers(self, token: AccessToken) -> bool:
        if token.jti in self.jtis:
            return True
        cut_off = self.clients.get(token.client_id)
        return cut_off is not None and token.issued_at <= cut_off


logger = logging.getLogger(__name__)


class RevocationList:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def revoke(self, jti: str, expires_at: int, *, now: int) -> None:
        if expires_at <= now:
            return  # expired already: nothing to deny
        self._db.put_item(
            TableName=self.table,
            Item={"kind": items.s(KIND), "jti": items.s(jti), "expires_at": items.n(expires_at)},
        )

    def revoke_client(self, client_id: str, *, now: int, access_token_ttl: int) -> None:
        """Every access token of the client issued until now stops working (within a poll)."""
        self._db.put_item(
            TableName=self.table,
            Item={
                "kind": items.s(CLIENT_KIND),
                "jti": items.s(client_id),
                "not_before": items.n(now),
                "expires_at": items.n(now + access_token_ttl),
            },
        )

    def is_revoked(self, token: AccessToken, *, now: int) -> bool:
        """A consistent read of the token's own entry and its client's cut-off (introspection)."""
        keys = [
            {"kind": items.s(KIND), "jti": items.s(token.jti)},
            {"kind": items.s(CLIENT_KIND), "jti": items.s(token.client_id)},
        ]
        response = self._db.batch_get_item(RequestItems={self.table: {"Keys": keys, "ConsistentRead": True}})
        found = response.get("Responses", {}).get(self.table, [])
        while response.get("UnprocessedKeys"):
            response = self._db.batch_get_item(RequestItems=response["UnprocessedKeys"])
            found.extend(response.get("Responses", {}).get(self.table, []))
        jtis: set[str] = set()
        clients: dict[str, int] = {}
        for item in found:
            if items.req_n(item, "expires_at") <= now:
                continue
            if items.req_s(item, "kind") == CLIENT_KIND:
                clients[items.req_s(item, "jti")] = items.req_n(item, "not_before")
            else:
                jtis.add(items.req_s(item, "jti"))
        return Revoked(frozenset(jtis), clients).covers(token)

    def live(self, *, now: int) -> Revoked:
        """Every revoked jti, and every client cut-off, whose tokens have not expired yet."""
        jtis = {items.req_s(i, "jti") for i in self._query(KIND, "jti", now)}
        clients = {
            items.req_s(i, "jti"): items.req_n(i, "not_before")
            for i in self._query(CLIENT_KIND, "jti, not_before", now)
        }
        return Revoked(frozenset(jtis), clients)

    def _query(self, kind: str, projection: str, now: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "kind = :k",
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": {":k": items.s(kind), ":now": items.n(now)},
            "ProjectionExpression": projection,
        }
        while True:
            response = self._db.query(**kwargs)
            found.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


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

    def is_revoked(self, token: AccessToken) -> bool:
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self._poll:
            with self._lock:
                if self._fetched_at is None or now - self._fetched_at >= self._poll:
                    self._refresh(now)
        return self._revoked.covers(token)

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
