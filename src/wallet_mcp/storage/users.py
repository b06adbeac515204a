"""Users (UsersTable, key `username`; `user-id-index` by `user_id`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True, slots=True)
class UserRecord:
    username: str
    """The login name, lower-case; immutable."""
    user_id: str
    """The stable subject identifier (`sub` of the user's tokens)."""
    password_hash: str | None
    created_at: int
    display_name: str | None = None
    email: str | None = None
    roles: tuple[str, ...] = ()
    disabled: bool = False

    def to_item(self) -> items.Item:
        return items.compact(
            {
                "username": items.s(self.username),
                "user_id": items.s(self.user_id),
                "password_hash": items.s(self.password_hash) if self.password_hash else None,
                "created_at": items.n(self.created_at),
                "display_name": items.s(self.display_name) if self.display_name else None,
                "email": items.s(self.email) if self.email else None,
                "roles": items.ss(self.roles),
                "disabled": items.boolean(self.disabled),
            }
        )

    @classmethod
    def from_item(cls, item: items.Item) -> UserRecord:
        return cls(
            username=items.req_s(item, "username"),
            user_id=items.req_s(item, "user_id"),
            password_hash=items.get_s(item, "password_hash"),
            created_at=items.req_n(item, "created_at"),
            display_name=items.get_s(item, "display_name"),
            email=items.get_s(item, "email"),
            roles=items.get_list(item, "roles"),
            disabled=items.get_bool(item, "disabled"),
        )


class UserAlreadyExists(Exception):
    pass


USERNAME: Final = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,63}$")
"""What a username may be once normalized: 1-64 of a-z, 0-9 and . _ @ + -, starting with a letter
or digit (so no username can collide with a marker item of the table, which starts with `#`)."""


BOOTSTRAP_MARKER: Final = "#admin-bootstrap"
"""The item that records the one-time first-administrator bootstrap was spent (never a user: no
username starts with `#`)."""


def normalize_username(username: str) -> str:
    return username.strip().lower()


def is_valid_username(name: str) -> bool:
    return USERNAME.match(name) is not None


class UserStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def get(self, username: str) -> UserRecord | None:
        name = normalize_username(username)
        if not name or name.startswith("#") or len(name.encode("utf-8", "surrogatepass")) > 2048:
            return None  # no such user can exist (a marker item, or a key DynamoDB refuses)
        response = self._db.get_item(TableName=self._table, Key={"username": items.s(name)})
        item = response.get("Item")
        return UserRecord.from_item(item) if item else None

    def get_by_id(self, user_id: str) -> UserRecord | None:
        response = self._db.query(
            TableName=self._table,
            IndexName="user-id-index",
            KeyConditionExpression="user_id = :id",
            ExpressionAttributeValues={":id": items.s(user_id)},
            Limit=1,
        )
        found = response.get("Items", [])
        return UserRecord.from_item(found[0]) if found else None

    def create(self, user: UserRecord) -> None:
        if not items.put_new(self._db, self._table, user.to_item(), "username"):
            raise UserAlreadyExists(user.username)

    def create_action(self, user: UserRecord) -> dict[str, Any]:
        """A transaction action creating `user`, cancelled if the username is taken."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": user.to_item(),
                "ConditionExpression": "attribute_not_exists(username)",
            }
        }

    def bootstrap_spent(self) -> bool:
        """Whether the first-administrator bootstrap was used (`BOOTSTRAP_MARKER`)."""
        response = self._db.get_item(
            TableName=self._table, Key={"username": items.s(BOOTSTRAP_MARKER)}, ConsistentRead=True
        )
        return "Item" in response

    def spend_bootstrap_action(self, admin: UserRecord, now: int) -> dict[str, Any]:
        """A transaction action recording that the bootstrap created `admin`, cancelled if it was
        used already: the bootstrap token works once, whatever happens in parallel."""
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "username": items.s(BOOTSTRAP_MARKER),
                    "admin_username": items.s(admin.username),
                    "spent_at": items.n(now),
                },
                "ConditionExpression": "attribute_not_exists(username)",
            }
        }

    def set_disabled(self, username: str, disabled: bool) -> UserRecord | None:
        """The user as updated, or None if there is no such user."""
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key={"username": items.s(normalize_username(username))},
                UpdateExpression="SET disabled = :d",
                ConditionExpression="attribute_exists(username)",
                ExpressionAttributeValues={":d": items.boolean(disabled)},
                ReturnValues="ALL_NEW",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        return UserRecord.from_item(response["Attributes"])
