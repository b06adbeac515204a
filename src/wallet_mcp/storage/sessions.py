"""Login sessions of the authorization endpoint (SessionsTable, key `session_hash`; `user-index` by
`user_id`; TTL `expires_at`).

The browser holds the random session id in an HttpOnly cookie; the table holds only its digest.
The session id is also the secret the CSRF tokens of the signed-in pages derive from
(`signin.csrf`), so those tokens need nothing stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True, slots=True)
class LoginSession:
    session_hash: str
    user_id: str
    username: str
    auth_time: int
    expires_at: int

    def to_item(self) -> items.Item:
        return {
            "session_hash": items.s(self.session_hash),
            "user_id": items.s(self.user_id),
            "username": items.s(self.username),
            "auth_time": items.n(self.auth_time),
            "expires_at": items.n(self.expires_at),
        }

    @classmethod
    def from_item(cls, item: items.Item) -> LoginSession:
        return cls(
            session_hash=items.req_s(item, "session_hash"),
            user_id=items.req_s(item, "user_id"),
            username=items.req_s(item, "username"),
            auth_time=items.req_n(item, "auth_time"),
            expires_at=items.req_n(item, "expires_at"),
        )


class SessionStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def put(self, session: LoginSession) -> None:
        self._db.put_item(TableName=self._table, Item=session.to_item())

    def get(self, session_hash: str, *, now: int) -> LoginSession | None:
        response = self._db.get_item(TableName=self._table, Key={"session_hash": items.s(session_hash)})
        item = response.get("Item")
        if item is None:
            return None
        session = LoginSession.from_item(item)
        return session if session.expires_at > now else None

    def delete(self, session_hash: str) -> None:
        self._db.delete_item(TableName=self._table, Key={"session_hash": items.s(session_hash)})

    def end_all(self, user_id: str) -> int:
        """End every session of the user (an administrator disabled them); how many there were."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "user-index",
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": {":u": items.s(user_id)},
            "ProjectionExpression": "session_hash",
        }
        ended = 0
        while True:
            response = self._db.query(**kwargs)
            for item in response.get("Items", []):
                self.delete(items.req_s(item, "session_hash"))
                ended += 1
            if "LastEvaluatedKey" not in response:
                return ended
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
