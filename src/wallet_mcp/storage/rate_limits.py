"""Rate limits as fixed-window counters in DynamoDB (RateLimitsTable, key `bucket`; TTL `expires_at`).

A bucket is `<rule>#<subject>#<window number>`: every instance of every function counts into the
same item, with an atomic `ADD`. Reads of the counters ride along with the reads a request makes
anyway (one BatchGetItem), so a request over its limit is refused before any expensive work (a KMS
signature, a password hash); increments ride along with the request's own transaction where it has
one, with a condition that keeps the limit exact under concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from wallet_mcp.primitives.errors import TooManyRequests
from wallet_mcp.storage import items
from wallet_mcp.storage.batch import Read

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    limit: int
    window: int
    """Seconds."""
    message: str = "too many requests"

    def bucket(self, subject: str, now: int) -> str:
        return f"{self.name}#{subject[:256]}#{now // self.window}"

    def retry_after(self, now: int) -> int:
        return max(1, self.window - now % self.window)

    def check(self, count: int, now: int) -> None:
        """Refuse when the window's count has reached the limit (RFC 6585 §4, with Retry-After)."""
        if count >= self.limit:
            raise TooManyRequests(self.message, retry_after=self.retry_after(now), rule=self.name)


class RateLimits:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    @staticmethod
    def key(rule: Rule, subject: str, now: int) -> items.Item:
        return {"bucket": items.s(rule.bucket(subject, now))}

    def batch_read(self, rule: Rule, subject: str, now: int) -> Read:
        """This item, for one consistent read with others (`Database.get`)."""
        return (self.table, self.key(rule, subject, now))

    @staticmethod
    def count(item: items.Item | None) -> int:
        if item is None:
            return 0
        return items.get_n(item, "count") or 0

    @staticmethod
    def last_at(item: items.Item | None) -> int:
        if item is None:
            return 0
        return items.get_n(item, "last_at") or 0

    def update_action(self, rule: Rule, subject: str, now: int) -> dict[str, Any]:
        """A transaction action counting one request, refused (cancelling the transaction) at the limit."""
        return {"Update": self._update(rule, subject, now)}

    def hit(self, rule: Rule, subject: str, now: int) -> None:
        """Count one request; TooManyRequests if it would exceed the limit (the count is not raised then)."""
        try:
            self._db.update_item(**self._update(rule, subject, now))
        except ClientError as exc:
            if items.is_condition_failure(exc):
                rule.check(rule.limit, now)
            raise

    def record(self, rule: Rule, subject: str, now: int) -> int:
        """Count one event whatever the total (failures, for lockouts), noting when; the new count."""
        response = self._db.update_item(
            TableName=self.table,
            Key=self.key(rule, subject, now),
            UpdateExpression=(
                "ADD #count :one SET expires_at = if_not_exists(expires_at, :expires), last_at = :now"
            ),
            ExpressionAttributeNames={"#count": "count"},
            ExpressionAttributeValues={
                ":one": items.n(1),
                ":expires": items.n(self._expires(rule, now)),
                ":now": items.n(now),
            },
            ReturnValues="UPDATED_NEW",
        )
        return items.req_n(response["Attributes"], "count")

    def read(self, rule: Rule, subject: str, now: int) -> items.Item | None:
        response = self._db.get_item(TableName=self.table, Key=self.key(rule, subject, now))
        return response.get("Item")

    def clear(self, rule: Rule, subject: str, now: int) -> None:
        self._db.delete_item(TableName=self.table, Key=self.key(rule, subject, now))

    def _update(self, rule: Rule, subject: str, now: int) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Key": self.key(rule, subject, now),
            "UpdateExpression": "ADD #count :one SET expires_at = if_not_exists(expires_at, :expires)",
            "ConditionExpression": "attribute_not_exists(#count) OR #count < :limit",
            "ExpressionAttributeNames": {"#count": "count"},
            "ExpressionAttributeValues": {
                ":one": items.n(1),
                ":limit": items.n(rule.limit),
                ":expires": items.n(self._expires(rule, now)),
            },
        }

    @staticmethod
    def _expires(rule: Rule, now: int) -> int:
        return (now // rule.window + 1) * rule.window + 60
