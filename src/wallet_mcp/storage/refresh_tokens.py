"""Refresh tokens (RefreshTokensTable, key `token_hash`; `family-index` by `family_id`,
`user-client-index` by `user_id` and `client_id`).

Rotation on every use (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2): the presented token is marked
`rotated` by a conditional update (`status = active`) in the same transaction that stores its
successor, so of concurrent refreshes exactly one rotates. The winner's response is stored sealed
under a key derived from the old token itself (only its holder can open it), so a concurrent
request within the grace window receives the very same pair; any later reuse revokes the family.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from wallet_mcp.storage import items
from wallet_mcp.storage.batch import Read

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Status = Literal["active", "rotated", "revoked"]


@dataclass(frozen=True, slots=True)
class RefreshToken:
    token_hash: str
    family_id: str
    client_id: str
    user_id: str
    scope: tuple[str, ...]
    resource: str
    issued_at: int
    expires_at: int
    """Idle expiry: a token unused this long is dead (and the table's TTL)."""
    auth_time: int
    access_jti: str
    """The access token issued alongside, revoked with the family."""
    access_expires_at: int
    status: Status = "active"
    rotated_at: int | None = None
    sealed_successor: str | None = None
    granted_at: int | None = None
    """When the family began (the code was redeemed); the successors keep it."""
    family_expires_at: int | None = None
    """Absolute expiry of the family, fixed when it began (`oauth.rules.lifetimes`); the successors
    keep it, and no rotation happens at or after it (a condition of `rotate_action`)."""
    dpop_jkt: str | None = None
    """RFC 9449 §5: a public client's refresh token is bound to the DPoP key (its thumbprint) it
    was first issued to; the successors keep it."""

    @property
    def grant_issued_at(self) -> int:
        """When the grant this token continues was issued (before `granted_at` was recorded, the
        sign-in's time, which is never later)."""
        return self.granted_at if self.granted_at is not None else self.auth_time

    def to_item(self) -> items.Item:
        return items.compact(
            {
                "token_hash": items.s(self.token_hash),
                "family_id": items.s(self.family_id),
                "client_id": items.s(self.client_id),
                "user_id": items.s(self.user_id),
                "scope": items.ss(self.scope),
                "resource": items.s(self.resource),
                "issued_at": items.n(self.issued_at),
                "expires_at": items.n(self.expires_at),
                "auth_time": items.n(self.auth_time),
                "access_jti": items.s(self.access_jti),
                "access_expires_at": items.n(self.access_expires_at),
                "status": items.s(self.status),
                "rotated_at": items.n(self.rotated_at) if self.rotated_at is not None else None,
                "sealed_successor": items.s(self.sealed_successor) if self.sealed_successor else None,
                "granted_at": items.n(self.granted_at) if self.granted_at is not None else None,
                "family_expires_at": (
                    items.n(self.family_expires_at) if self.family_expires_at is not None else None
                ),
                "dpop_jkt": items.s(self.dpop_jkt) if self.dpop_jkt else None,
            }
        )

    @classmethod
    def from_item(cls, item: items.Item) -> RefreshToken:
        status = items.req_s(item, "status")
        if status not in ("active", "rotated", "revoked"):
            raise ValueError("corrupt refresh token record")
        return cls(
            token_hash=items.req_s(item, "token_hash"),
            family_id=items.req_s(item, "family_id"),
            client_id=items.req_s(item, "client_id"),
            user_id=items.req_s(item, "user_id"),
            scope=items.get_list(item, "scope"),
            resource=items.req_s(item, "resource"),
            issued_at=items.req_n(item, "issued_at"),
            expires_at=items.req_n(item, "expires_at"),
            auth_time=items.req_n(item, "auth_time"),
            access_jti=items.req_s(item, "access_jti"),
            access_expires_at=items.req_n(item, "access_expires_at"),
            status=status,  # type: ignore[arg-type]
            rotated_at=items.get_n(item, "rotated_at"),
            sealed_successor=items.get_s(item, "sealed_successor"),
            granted_at=items.get_n(item, "granted_at"),
            family_expires_at=items.get_n(item, "family_expires_at"),
            dpop_jkt=items.get_s(item, "dpop_jkt"),
        )

    def successor(self, **changes: Any) -> RefreshToken:
        return replace(self, status="active", rotated_at=None, sealed_successor=None, **changes)


@dataclass(frozen=True, slots=True)
class GrantToken:
    """A refresh token as the user-client index shows it (no secrets: the hash, status, times)."""

    token_hash: str
    client_id: str
    family_id: str
    status: str
    issued_at: int
    expires_at: int


class RefreshTokenStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    @staticmethod
    def key(token_hash: str) -> items.Item:
        return {"token_hash": items.s(token_hash)}

    def batch_read(self, token_hash: str) -> Read:
        """This item, for one consistent read with others (`Database.get`)."""
        return (self.table, self.key(token_hash))

    def get(self, token_hash: str) -> RefreshToken | None:
        response = self._db.get_item(TableName=self.table, Key=self.key(token_hash), ConsistentRead=True)
        item = response.get("Item")
        return RefreshToken.from_item(item) if item else None

    def put_action(self, token: RefreshToken) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": token.to_item(),
                "ConditionExpression": "attribute_not_exists(token_hash)",
            }
        }

    def rotate_action(self, token: RefreshToken, *, now: int, sealed_successor: str) -> dict[str, Any]:
        """Mark `token` rotated, only if it is still active and unexpired, its family too (the
        concurrency guard; DynamoDB's TTL deletes lazily, so the condition checks the times)."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": self.key(token.token_hash),
                "UpdateExpression": "SET #status = :rotated, rotated_at = :now, sealed_successor = :sealed",
                "ConditionExpression": (
                    "#status = :active AND expires_at > :now"
                    " AND (attribute_not_exists(family_expires_at) OR family_expires_at > :now)"
                ),
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":rotated": items.s("rotated"),
                    ":active": items.s("active"),
                    ":now": items.n(now),
                    ":sealed": items.s(sealed_successor),
                },
            }
        }

    def family(self, family_id: str) -> list[str]:
        hashes: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "family-index",
            "KeyConditionExpression": "family_id = :f",
            "ExpressionAttributeValues": {":f": items.s(family_id)},
        }
        while True:
            response = self._db.query(**kwargs)
            hashes.extend(items.req_s(i, "token_hash") for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return hashes
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def of_user(self, user_id: str, client_id: str | None = None) -> list[GrantToken]:
        """The user's refresh tokens (every one the table still holds), for one client or all."""
        condition = "user_id = :u"
        values = {":u": items.s(user_id)}
        if client_id is not None:
            condition += " AND client_id = :c"
            values[":c"] = items.s(client_id)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "user-client-index",
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        found: list[GrantToken] = []
        while True:
            response = self._db.query(**kwargs)
            found.extend(
                GrantToken(
                    token_hash=items.req_s(i, "token_hash"),
                    client_id=items.req_s(i, "client_id"),
                    family_id=items.req_s(i, "family_id"),
                    status=items.req_s(i, "status"),
                    issued_at=items.req_n(i, "issued_at"),
                    expires_at=items.req_n(i, "expires_at"),
                )
                for i in response.get("Items", [])
            )
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def revoke(self, token_hash: str) -> RefreshToken | None:
        """Mark one token revoked; its record as it was before, or None if it does not exist."""
        try:
            response = self._db.update_item(
                TableName=self.table,
                Key=self.key(token_hash),
                UpdateExpression="SET #status = :revoked REMOVE sealed_successor",
                ConditionExpression="attribute_exists(token_hash)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":revoked": items.s("revoked")},
                ReturnValues="ALL_OLD",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        return RefreshToken.from_item(response["Attributes"])

    def revoke_family(self, family_id: str) -> list[RefreshToken]:
        """Revoke every token of a family; the records as they were (to revoke their access tokens)."""
        revoked = []
        for token_hash in self.family(family_id):
            record = self.revoke(token_hash)
            if record is not None:
                revoked.append(record)
        return revoked
