"""Reads of several items in one round trip (BatchGetItem), so a token request that needs the client,
its grant (code or refresh token) and its rate-limit counters makes one read call, not several."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wallet_mcp.storage.items import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_MAX_ROUNDS = 5

Read = tuple[str, Item]
"""One item to read: its table and its key (each store's `read(...)` makes them)."""


def _identity(table: str, key: Item) -> tuple[str, tuple[tuple[str, str], ...]]:
    return table, tuple(sorted((name, repr(value)) for name, value in key.items()))


def get_items(db: DynamoDBClient, requests: Sequence[Read]) -> list[Item | None]:
    """The item (or None) for each `(table, key)`, in order; strongly consistent.

    Unprocessed keys (throttling) are asked for again, a bounded number of times.
    """
    pending: dict[str, Any] = {}
    for table, key in requests:
        entry = pending.setdefault(table, {"Keys": [], "ConsistentRead": True})
        if key not in entry["Keys"]:
            entry["Keys"].append(key)
    found: dict[tuple[str, tuple[tuple[str, str], ...]], Item] = {}
    key_names: dict[str, list[str]] = {}
    for table, key in requests:
        key_names.setdefault(table, sorted(key))
    for _ in range(_MAX_ROUNDS):
        response = db.batch_get_item(RequestItems=pending)
        for table, table_items in response.get("Responses", {}).items():
            for item in table_items:
                key = {name: item[name] for name in key_names[table]}
                found[_identity(table, key)] = item
        pending = dict(response.get("UnprocessedKeys") or {})
        if not pending:
            return [found.get(_identity(table, key)) for table, key in requests]
    raise TimeoutError("DynamoDB left keys unprocessed")
