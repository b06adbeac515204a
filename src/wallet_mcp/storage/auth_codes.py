"""Authorization codes (AuthCodesTable, key `code_hash`).

A code is stored only as its SHA-256 digest, lives `AUTHORIZATION_CODE_TTL_SECONDS` (60 s by
default) and is redeemed by a conditional delete inside the token transaction, which also writes
a redemption marker (`redeemed:<digest>`) naming what was issued from it: a replayed code finds
the marker instead of the code, and the tokens issued from it are revoked (RFC 6749 §4.1.2,
OAuth 2.1 §4.1.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wallet_mcp.storage import items
from wallet_mcp.storage.batch import Read

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

REDEMPTION_MARKER_TTL = 24 * 3600
"""How long a redeemed code is remembered (longer than any access token it could have produced)."""


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    code_hash: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: tuple[str, ...]
    resource: str
    user_id: str
    auth_time: int
    issued_at: int
    expires_at: int
    dpop_jkt: str | None = None
    """RFC 9449 §10: the thumbprint of the DPoP key the token request must prove (None: any key,
    or none)."""

    def to_item(self) -> items.Item:
        return items.compact(
            {
                "code_hash": items.s(self.code_hash),
                "client_id": items.s(self.client_id),
                "redirect_uri": items.s(self.redirect_uri),
                "code_challenge": items.s(self.code_challenge),
                "scope": items.ss(self.scope),
                "resource": items.s(self.resource),
                "user_id": items.s(self.user_id),
                "auth_time": items.n(self.auth_time),
                "issued_at": items.n(self.issued_at),
                "expires_at": items.n(self.expires_at),
                "dpop_jkt": items.s(self.dpop_jkt) if self.dpop_jkt is not None else None,
            }
        )

    @classmethod
    def from_item(cls, item: items.Item) -> AuthorizationCode:
        return cls(
            code_hash=items.req_s(item, "code_hash"),
            client_id=items.req_s(item, "client_id"),
            redirect_uri=items.req_s(item, "redirect_uri"),
            code_challenge=items.req_s(item, "code_challenge"),
            scope=items.get_list(item, "scope"),
            resource=items.req_s(item, "resource"),
            user_id=items.req_s(item, "user_id"),
            auth_time=items.req_n(item, "auth_time"),
            issued_at=items.req_n(item, "issued_at"),
            expires_at=items.req_n(item, "expires_at"),
            dpop_jkt=items.get_s(item, "dpop_jkt"),
        )


@dataclass(frozen=True, slots=True)
class Redemption:
    """What a code was exchanged for: found when the code is presented again."""

    family_id: str | None
    access_jti: str
    access_expires_at: int
    user_id: str | None = None
    client_id: str | None = None


def marker_key(code_hash: str) -> str:
    return f"redeemed:{code_hash}"


class AuthCodeStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def put(self, code: AuthorizationCode) -> None:
        if not items.put_new(self._db, self.table, code.to_item(), "code_hash"):
            raise RuntimeError("authorization code collision")  # 256 random bits: never

    def put_action(self, code: AuthorizationCode) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": code.to_item(),
                "ConditionExpression": "attribute_not_exists(code_hash)",
            }
        }

    @staticmethod
    def key(code_hash: str) -> items.Item:
        return {"code_hash": items.s(code_hash)}

    def batch_read(self, code_hash: str) -> Read:
        """This item, for one consistent read with others (`Database.get`)."""
        return (self.table, self.key(code_hash))

    def redemption(self, code_hash: str) -> Redemption | None:
        response = self._db.get_item(
            TableName=self.table, Key=self.key(marker_key(code_hash)), ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        return Redemption(
            family_id=items.get_s(item, "family_id"),
            access_jti=items.req_s(item, "access_jti"),
            access_expires_at=items.req_n(item, "access_expires_at"),
            user_id=items.get_s(item, "user_id"),
            client_id=items.get_s(item, "client_id"),
        )

    def redeem_actions(
        self, code: AuthorizationCode, redemption: Redemption, now: int
    ) -> list[dict[str, Any]]:
        """Transaction actions: delete the code if it still exists, and remember what it produced."""
        marker = items.compact(
            {
                "code_hash": items.s(marker_key(code.code_hash)),
                "client_id": items.s(code.client_id),
                "user_id": items.s(code.user_id),
                "family_id": items.s(redemption.family_id) if redemption.family_id else None,
                "access_jti": items.s(redemption.access_jti),
                "access_expires_at": items.n(redemption.access_expires_at),
                "expires_at": items.n(now + REDEMPTION_MARKER_TTL),
            }
        )
        return [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": self.key(code.code_hash),
                    "ConditionExpression": "attribute_exists(code_hash)",
                }
            },
            {"Put": {"TableName": self.table, "Item": marker}},
        ]
