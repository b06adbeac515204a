"""Used DPoP proofs, where strict single use is asked for (AuthCodesTable, key `code_hash` =
`dpop:<digest>`; TTL `expires_at`).

RFC 9449 §11.1: a proof's `jti` is remembered for as long as the proof is accepted. By default
each instance remembers in memory (`primitives.dpop.ReplayCache`: no network call per request);
with DPOP_STRICT_REPLAY every accepted proof is one conditional `PutItem` here, the pattern of
`assertion_jtis`: the first request wins, a replay to any instance fails the condition, and an
expired marker counts as absent (TTL deletes lazily).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from wallet_mcp.credentials import opaque
from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PREFIX: Final = "dpop:"


class UsedProofs:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    @staticmethod
    def key(jkt: str, jti: str) -> str:
        # per key: a `jti` is unique only among one signer's proofs
        return PREFIX + opaque.digest(f"{jkt}\n{jti}")

    def first_use(self, jkt: str, jti: str, expires_at: int, now: int) -> bool:
        """Record the proof as used: True the first time, False for a replay."""
        item = {
            "code_hash": items.s(self.key(jkt, jti)),
            "kind": items.s("dpop_proof"),
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
