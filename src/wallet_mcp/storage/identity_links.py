"""Links from an upstream identity to a local user (UsersTable items keyed `IDP#<digest>`), and the
lookup of users by email (UsersTable GSI `email-index`).

An upstream identity is its (`iss`, `sub`) pair, the only identifier OpenID Connect guarantees to
be stable and unique (Core §5.7): an email address can change owner or be reused, so once linked,
a sign-in finds its user by the pair alone, whatever the email says today. The link item lives in
UsersTable under a key no login name can ever be (`IDP#` and upper-case letters, while
usernames are lower-case), carries no `user_id` or `email` attribute (so it appears in neither
index), and is written in the same transaction as a user it creates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from wallet_mcp.storage import items
from wallet_mcp.storage.transactions import commit
from wallet_mcp.storage.users import UserRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

KEY_PREFIX: Final = "IDP#"


def link_key(issuer: str, subject: str) -> str:
    return KEY_PREFIX + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IdentityLink:
    issuer: str
    subject: str
    provider_id: str
    user_id: str
    username: str
    """The linked user's key (usernames are immutable), for a consistent GetItem."""
    created_at: int

    def to_item(self) -> items.Item:
        return {
            "username": items.s(link_key(self.issuer, self.subject)),
            "kind": items.s("identity_link"),
            "issuer": items.s(self.issuer),
            "subject": items.s(self.subject),
            "provider_id": items.s(self.provider_id),
            "linked_user_id": items.s(self.user_id),
            "linked_username": items.s(self.username),
            "created_at": items.n(self.created_at),
        }

    @classmethod
    def from_item(cls, item: items.Item) -> IdentityLink:
        return cls(
            issuer=items.req_s(item, "issuer"),
            subject=items.req_s(item, "subject"),
            provider_id=items.req_s(item, "provider_id"),
            user_id=items.req_s(item, "linked_user_id"),
            username=items.req_s(item, "linked_username"),
            created_at=items.req_n(item, "created_at"),
        )


class IdentityLinkStore:
    def __init__(self, dynamodb: DynamoDBClient, users_table: str) -> None:
        self._db = dynamodb
        self._table = users_table

    def get(self, issuer: str, subject: str) -> IdentityLink | None:
        response = self._db.get_item(
            TableName=self._table, Key={"username": items.s(link_key(issuer, subject))}, ConsistentRead=True
        )
        item = response.get("Item")
        return IdentityLink.from_item(item) if item and "linked_user_id" in item else None

    def user(self, link: IdentityLink) -> UserRecord | None:
        """The linked user, if it still exists and is the one linked."""
        response = self._db.get_item(
            TableName=self._table, Key={"username": items.s(link.username)}, ConsistentRead=True
        )
        item = response.get("Item")
        if not item or "user_id" not in item:
            return None
        user = UserRecord.from_item(item)
        return user if user.user_id == link.user_id else None

    def users_with_email(self, email: str, *, limit: int = 2) -> list[UserRecord]:
        """Users whose `email` is exactly this (lower-case) address, at most `limit` of them."""
        response = self._db.query(
            TableName=self._table,
            IndexName="email-index",
            KeyConditionExpression="email = :email",
            ExpressionAttributeValues={":email": items.s(email)},
            Limit=limit,
        )
        return [UserRecord.from_item(i) for i in response.get("Items", []) if "user_id" in i]

    def link(self, link: IdentityLink) -> bool:
        """Link an existing user; False if this identity was linked meanwhile (a concurrent sign-in)."""
        return items.put_new(self._db, self._table, link.to_item(), "username")

    def create_user_and_link(self, user: UserRecord, link: IdentityLink) -> bool:
        """Both or neither; False if the username is taken or the identity was linked meanwhile."""
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(username)",
                }
            }
            for item in (user.to_item(), link.to_item())
        ]
        return commit(self._db, actions) is None

    def username_taken(self, username: str) -> bool:
        response = self._db.get_item(
            TableName=self._table,
            Key={"username": items.s(username)},
            ProjectionExpression="username",
            ConsistentRead=True,
        )
        return "Item" in response
