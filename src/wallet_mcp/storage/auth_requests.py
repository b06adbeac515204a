"""Pending authorization requests (AuthRequestsTable, key `request_id`; TTL `expires_at`).

A validated `/oauth/authorize` request is kept server-side while the user logs in and consents; the
pages carry only its id. It is bound to the browser that started it (a cookie whose digest is
stored here; the forms' CSRF token is derived from that cookie, `signin.csrf`), and it is
consumed by a conditional delete, so one request can yield one authorization code at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    request_id: str
    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    code_challenge: str
    resource: str
    browser_hash: str
    created_at: int
    expires_at: int
    dpop_jkt: str | None = None
    """RFC 9449 §10: the DPoP key thumbprint the code will be bound to (None: not asked)."""

    def to_item(self) -> items.Item:
        return items.compact(
            {
                "request_id": items.s(self.request_id),
                "client_id": items.s(self.client_id),
                "redirect_uri": items.s(self.redirect_uri),
                "scope": items.ss(self.scope),
                "state": items.s(self.state) if self.state is not None else None,
                "code_challenge": items.s(self.code_challenge),
                "resource": items.s(self.resource),
                "browser_hash": items.s(self.browser_hash),
                "created_at": items.n(self.created_at),
                "expires_at": items.n(self.expires_at),
                "dpop_jkt": items.s(self.dpop_jkt) if self.dpop_jkt is not None else None,
            }
        )

    @classmethod
    def from_item(cls, item: items.Item) -> PendingAuthorization:
        return cls(
            request_id=items.req_s(item, "request_id"),
            client_id=items.req_s(item, "client_id"),
            redirect_uri=items.req_s(item, "redirect_uri"),
            scope=items.get_list(item, "scope"),
            state=items.get_s(item, "state"),
            code_challenge=items.req_s(item, "code_challenge"),
            resource=items.req_s(item, "resource"),
            browser_hash=items.req_s(item, "browser_hash"),
            created_at=items.req_n(item, "created_at"),
            expires_at=items.req_n(item, "expires_at"),
            dpop_jkt=items.get_s(item, "dpop_jkt"),
        )


class AuthRequestStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def put(self, request: PendingAuthorization) -> None:
        if not items.put_new(self._db, self._table, request.to_item(), "request_id"):
            raise RuntimeError("authorization request id collision")

    def get(self, request_id: str, *, now: int) -> PendingAuthorization | None:
        if not request_id or len(request_id) > 256:
            return None  # not an id this server issued (and not a key DynamoDB would accept)
        response = self._db.get_item(
            TableName=self._table, Key={"request_id": items.s(request_id)}, ConsistentRead=True
        )
        item = response.get("Item")
        # the table also holds upstream sign-in states (storage/upstream_logins.py): not requests
        if item is None or "client_id" not in item:
            return None
        # Written before the CSRF token was derived from the browser binding: the page it showed
        # carries a random token nothing can check any more, so it reads as expired (start again).
        # Only requests in flight during that deploy (REQUEST_TTL, 10 minutes); remove afterwards.
        if "csrf_hash" in item:
            return None
        request = PendingAuthorization.from_item(item)
        return request if request.expires_at > now else None

    def consume_action(self, request_id: str) -> dict[str, Any]:
        """A transaction action consuming the request (it fails if another submission did first)."""
        return {
            "Delete": {
                "TableName": self._table,
                "Key": {"request_id": items.s(request_id)},
                "ConditionExpression": "attribute_exists(request_id)",
            }
        }

    def consume(self, request_id: str) -> bool:
        """Delete the request if it is still there; False if another submission consumed it first."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={"request_id": items.s(request_id)},
                ConditionExpression="attribute_exists(request_id)",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True
