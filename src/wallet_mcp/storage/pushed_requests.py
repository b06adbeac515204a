"""Pushed authorization requests (AuthCodesTable, key `code_hash` = `par:<digest>`; TTL `expires_at`).

RFC 9126 §2.2: the token function stores the pushed parameters under a random reference and
answers `urn:ietf:params:oauth:request_uri:<reference>`; §4: the authorization endpoint takes them
once, by a conditional `DeleteItem` (the pushing client's id, not expired) that returns them, so
one `request_uri` starts one authorization at most. Only the reference's digest is stored.
Beside the spent assertions and redeemed codes: single-use markers of one-time credentials, with a
TTL of a minute.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from wallet_mcp.credentials import opaque
from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PREFIX: Final = "par:"
REQUEST_URI_PREFIX: Final = "urn:ietf:params:oauth:request_uri:"


class PushedRequests:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    @staticmethod
    def key(reference: str) -> items.Item:
        return {"code_hash": items.s(PREFIX + opaque.digest(reference))}

    def push(self, client_id: str, params: dict[str, str], *, now: int, ttl: int) -> str:
        """Store the request; its `request_uri`."""
        reference = secrets.token_urlsafe(32)
        item = {
            **self.key(reference),
            "kind": items.s("pushed_request"),
            "client_id": items.s(client_id),
            "params": items.s(json.dumps(params, separators=(",", ":"))),
            "expires_at": items.n(now + ttl),
        }
        self._db.put_item(
            TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(code_hash)"
        )
        return REQUEST_URI_PREFIX + reference

    def take(self, request_uri: str, client_id: str, *, now: int) -> dict[str, str] | None:
        """The pushed parameters, once: None if unknown, used, expired or pushed by another client."""
        if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > 200:
            return None
        reference = request_uri[len(REQUEST_URI_PREFIX) :]
        try:
            response = self._db.delete_item(
                TableName=self.table,
                Key=self.key(reference),
                ConditionExpression="client_id = :client AND expires_at > :now AND kind = :kind",
                ExpressionAttributeValues={
                    ":client": items.s(client_id),
                    ":now": items.n(now),
                    ":kind": items.s("pushed_request"),
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if items.is_condition_failure(exc):
                return None
            raise
        stored = response.get("Attributes")
        if not stored:
            return None
        params = json.loads(items.req_s(stored, "params"))
        return {str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else None
