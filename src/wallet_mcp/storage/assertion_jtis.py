"""Used client assertions (AuthCodesTable, key `code_hash` = `assertion:<digest>`; TTL `expires_at`).

RFC 7523 §3 item 7: a server may keep the `jti` of every assertion it accepted until the
assertion expires and refuse one presented again; FAPI 2.0 Security Profile §5.3.2.1 requires the
single use. One conditional `PutItem` per accepted assertion: the first request wins, a replay (or
a concurrent duplicate) fails the condition. A marker whose assertion has expired counts as absent
(TTL deletes lazily), so an expired marker never blocks a fresh assertion that reuses its `jti`.

In the authorization-codes table rather than a table of its own: both are single-use markers of
one-time credentials the token function writes, with a TTL of minutes; the function already holds
`PutItem` on the table (no new grant), and the prefix keeps them apart from code digests (hex).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from wallet_mcp.credentials import opaque
from wallet_mcp.storage import items

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

    def first_use(self, client_id: str, jti: str, *, expires_at: int, now: int) -> bool:
        """Record the assertion as used: True the first time, False for a replay."""
        item = {
            "code_hash": items.s(self.key(client_id, jti)),
            "kind": items.s("client_assertion"),
            "client_id": items.s(client_id),
            "expires_at": items.n(max(expires_at, now) + 60),
        }
        try:
            self._db.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(code_hash) OR expires_at < :now",
                ExpressionAttributeValues={":now": items.n(now)},
            )
        except ClientError as exc:
            if items.is_condition_failure(exc):
                return False
            raise
        return True
