"""Reads of several items in one round trip (BatchGetItem), so a token request that needs the client
and its grant (code or refresh token) makes one read call, not two."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wallet_mcp.storage.items import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_MAX_ROUNDS = 5


def get_many(db: DynamoDBClient, requests: Mapping[str, Item]) -> dict[str, Item | None]:
    """`{table: key}` -> `{table: item or None}`, strongly consistent, one key per table.

    Unprocessed keys (throttling) are asked for again, a bounded number of times.
    """
    pending: dict[str, Any] = {
        table: {"Keys": [key], "ConsistentRead": True} for table, key in requests.items()
    }
    found: dict[str, Item | None] = dict.fromkeys(requests)
    for _ in range(_MAX_ROUNDS):
        response = db.batch_get_item(RequestItems=pending)
        for table, items in response.get("Responses", {}).items():
            if items:
                found[table] = items[0]
        pending = dict(response.get("UnprocessedKeys") or {})
        if not pending:
            return found
    raise TimeoutError("DynamoDB left keys unprocessed")
