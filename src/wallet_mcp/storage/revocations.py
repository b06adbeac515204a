"""Revoked access tokens (RevokedTokensTable: partition `kind`, sort key `jti`; TTL `expires_at`).

Access tokens are self-contained JWTs; revoking one before it expires means listing its `jti`
until its `exp`. Resource servers keep the list in memory and refresh it with one Query at most
every `poll_seconds` (default 5 s): revocation reaches them within that bound and the hot path
makes no AWS call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

KIND: Final = "access_token"
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

    def is_revoked(self, jti: str, *, now: int) -> bool:
        response = self._db.get_item(
            TableName=self.table, Key={"kind": items.s(KIND), "jti": items.s(jti)}, ConsistentRead=True
        )
        item = response.get("Item")
        return item is not None and items.req_n(item, "expires_at") > now

    def live(self, *, now: int) -> set[str]:
        """Every revoked jti whose token has not expired yet."""
        found: set[str] = set()
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "kind = :k",
            "FilterExpression": "expires_at > :now",
            "ExpressionAttributeValues": {":k": items.s(KIND), ":now": items.n(now)},
            "ProjectionExpression": "jti",
        }
        while True:
            response = self._db.query(**kwargs)
            found.update(items.req_s(i, "jti") for i in response.get("Items", []))
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
        self._revoked: frozenset[str] = frozenset()
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def is_revoked(self, jti: str) -> bool:
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self._poll:
            with self._lock:
                if self._fetched_at is None or now - self._fetched_at >= self._poll:
                    self._refresh(now)
        return jti in self._revoked

    def _refresh(self, now: float) -> None:
        try:
            self._revoked = frozenset(self._source.live(now=int(time.time())))
        except Exception:
            # a list that is a little stale beats refusing every request; none at all fails closed
            if self._fetched_at is None or now - self._fetched_at > self._poll * 12:
                raise
            logger.warning("revocation list not refreshed; using the previous one")
            return
        self._fetched_at = now
