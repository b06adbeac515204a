"""Used client assertions (AuthCodesTable, key `code_hash` = `assertion:<digest>`; TTL `expires_at`).

RFC 7523 §3 item 7: a server may keep the `jti` of every assertion it accepted until the
assertion expires and refuse one presented again; FAPI 2.0 Security Profile §5.3.2.1 requires the
single use. One conditional `PutItem` per accepted assertion: the first request wins, a replay (or
a concurrent duplicate) fails the condition. A marker whose assertion has expired counts as absent
(TTL deletes lazily), so an expired marker never blocks a fresh assertion that reuses its `jti`.

At the token endpoint the marker is not a PutItem of its own: it is read with the client in the
endpoint's one BatchGetItem (`batch_read`, so a replay is refused before any grant runs) and written
as a conditional Put in the transaction that issues the token (`put_action`), so a concurrent replay
loses the condition and its transaction issues nothing. Revocation, introspection and PAR have no
issuing transaction and keep `first_use`.

In the authorization-codes table rather than a table of its own: both are single-use markers of
one-time credentials the token function writes, with a TTL of minutes; the function already holds
`PutItem` on the table (no new grant), and the prefix keeps them apart from code digests (hex).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from wallet_mcp.credentials import opaque
from wallet_mcp.storage import items
from wallet_mcp.storage.batch import Read

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PREFIX: Final = "assertion:"


class UsedAssertions:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    @staticmethod
    def key(client_id: str, jti: str) -> str:
        # per client: a `jti` is unique only among one issuer's assertions (RFC 7519 §4.1.7)
        return PREFIX + opaque.digest(f"{client_id}\n{jti}")

    def batch_read(self, client_id: str, jti: str) -> Read:
        """The marker of this assertion, for one consistent read with others (`Database.get`)."""
        return (self.table, {"code_hash": items.s(self.key(client_id, jti))})

    @staticmethod
    def in_use(item: items.Item | None, *, now: int) -> bool:
        """Whether a marker read by `batch_read` still spends its `jti` (the Put's condition, read)."""
        if item is None:
            return False
        expires_at = items.get_n(item, "expires_at")
        return expires_at is None or expires_at >= now

    def put_action(self, client_id: str, jti: str, *, expires_at: int, now: int) -> dict[str, Any]:
        """The marker as a conditional Put of the transaction that issues the token."""
        return {"Put": {"TableName": self.table, **self._conditional_put(client_id, jti, expires_at, now)}}

    @staticmethod
    def _conditional_put(client_id: str, jti: str, expires_at: int, now: int) -> dict[str, Any]:
        return {
            "Item": {
                "code_hash": items.s(UsedAssertions.key(client_id, jti)),
                "kind": items.s("client_assertion"),
                "client_id": items.s(client_id),
                "expires_at": items.n(max(expires_at, now) + 60),
            },
            "ConditionExpression": "attribute_not_exists(code_hash) OR expires_at < :now",
            "ExpressionAttributeValues": {":now": items.n(now)},
        }

    def first_use(self, client_id: str, jti: str, *, expires_at: int, now: int) -> bool:
        """Record the assertion as used: True the first time, False for a replay."""
        try:
            self._db.put_item(TableName=self.table, **self._conditional_put(client_id, jti, expires_at, now))
        except ClientError as exc:
            if items.is_condition_failure(exc):
                return False
            raise
        return True
