"""Personal access tokens (PersonalTokensTable, key `token_hash`; `user-index` by `user_id`).

The seed's `BACKEND_AUTH_TOKEN` made real: a scoped, revocable credential for the wallet API,
created by an administrator for one user (`wallet-mcp admin create-token`), for callers that
cannot run an OAuth flow yet. Only its SHA-256 digest is stored; the token itself (`wpat_` + 256
random bits) is shown once. It expires (90 days unless the administrator chooses otherwise; never
only by an explicit choice), its owner sees it on /account (name, scopes, created, last used) and
may revoke it there, as may an administrator. The MCP endpoint never accepts one: it is a
migration path for the Backend API only.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from wallet_mcp.credentials import opaque
from wallet_mcp.storage import items
from wallet_mcp.tokens.access_tokens import AccessToken

LAST_USED_RESOLUTION: Final = 3600
"""`last_used_at` is written at most this often (seconds): one write per token per hour."""
DEFAULT_LIFETIME_DAYS: Final = 90

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PREFIX = "wpat_"


@dataclass(frozen=True, slots=True)
class PersonalToken:
    token_hash: str
    token_id: str
    """A public handle (listing, revocation); not the secret."""
    user_id: str
    name: str
    scope: tuple[str, ...]
    created_at: int
    expires_at: int | None = None
    revoked: bool = False
    last_used_at: int | None = None

    def to_item(self) -> items.Item:
        return items.compact(
            {
                "token_hash": items.s(self.token_hash),
                "token_id": items.s(self.token_id),
                "user_id": items.s(self.user_id),
                "name": items.s(self.name),
                "scope": items.ss(self.scope),
                "created_at": items.n(self.created_at),
                "expires_at": items.n(self.expires_at) if self.expires_at is not None else None,
                "revoked": items.boolean(self.revoked),
                "last_used_at": items.n(self.last_used_at) if self.last_used_at is not None else None,
            }
        )

    @classmethod
    def from_item(cls, item: items.Item) -> PersonalToken:
        return cls(
            token_hash=items.req_s(item, "token_hash"),
            token_id=items.req_s(item, "token_id"),
            user_id=items.req_s(item, "user_id"),
            name=items.req_s(item, "name"),
            scope=items.get_list(item, "scope"),
            created_at=items.req_n(item, "created_at"),
            expires_at=items.get_n(item, "expires_at"),
            revoked=items.get_bool(item, "revoked"),
            last_used_at=items.get_n(item, "last_used_at"),
        )

    def usable(self, now: int) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > now)

    def as_access_token(self, audience: str) -> AccessToken:
        """What the API's checks see: the user as subject, the token's id in place of a client."""
        return AccessToken(
            subject=self.user_id,
            client_id=f"pat:{self.token_id}",
            scopes=frozenset(self.scope),
            audience=audience,
            issued_at=self.created_at,
            expires_at=self.expires_at or 0,
            jti=self.token_id,
        )


class PersonalTokenStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def create(
        self, *, user_id: str, name: str, scope: tuple[str, ...], now: int, expires_at: int | None
    ) -> tuple[str, PersonalToken]:
        """The new token (shown once) and its record."""
        token = opaque.new_secret(PREFIX)
        record = PersonalToken(
            token_hash=opaque.digest(token),
            token_id=secrets.token_hex(6),
            user_id=user_id,
            name=name,
            scope=scope,
            created_at=now,
            expires_at=expires_at,
        )
        if not items.put_new(self._db, self._table, record.to_item(), "token_hash"):
            raise RuntimeError("personal token collision")
        return token, record

    def find(self, token: str, *, now: int) -> PersonalToken | None:
        """The usable record a presented token names, or None."""
        if not token.startswith(PREFIX) or len(token) > 200:
            return None
        response = self._db.get_item(
            TableName=self._table, Key={"token_hash": items.s(opaque.digest(token))}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        record = PersonalToken.from_item(item)
        return record if record.usable(now) else None

    def of_user(self, user_id: str) -> list[PersonalToken]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "user-index",
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": {":u": items.s(user_id)},
        }
        found: list[PersonalToken] = []
        while True:
            response = self._db.query(**kwargs)
            found.extend(PersonalToken.from_item(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return sorted(found, key=lambda t: t.created_at)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def touch(self, record: PersonalToken, now: int) -> None:
        """Note a use (at most once an hour per token)."""
        if record.last_used_at is not None and now - record.last_used_at < LAST_USED_RESOLUTION:
            return
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self._table,
                Key={"token_hash": items.s(record.token_hash)},
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_exists(token_hash)",
                ExpressionAttributeValues={":now": items.n(now)},
            )

    def revoke(self, user_id: str, token_id: str) -> bool:
        """Revoke one of the user's tokens; False if the user has no such token."""
        for record in self.of_user(user_id):
            if record.token_id == token_id:
                self._revoke(record)
                return True
        return False

    def revoke_all(self, user_id: str) -> int:
        """Revoke every live token of the user; how many."""
        live = [record for record in self.of_user(user_id) if not record.revoked]
        for record in live:
            self._revoke(record)
        return len(live)

    def _revoke(self, record: PersonalToken) -> None:
        self._db.update_item(
            TableName=self._table,
            Key={"token_hash": items.s(record.token_hash)},
            UpdateExpression="SET revoked = :yes",
            ExpressionAttributeValues={":yes": items.boolean(True)},
        )
