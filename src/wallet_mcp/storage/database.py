"""Work that spans tables: one strongly consistent batch read, one transaction.

An endpoint that must read several items in one round trip, or write several all-or-nothing, asks
the stores for the reads (`read(...)`) and the actions (`*_action(...)`) and hands them here; it
never holds the DynamoDB client or builds a key or a request itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wallet_mcp.storage.batch import Read, get_items
from wallet_mcp.storage.items import Item
from wallet_mcp.storage.transactions import commit, first_lost

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class Database:
    def __init__(self, dynamodb: DynamoDBClient) -> None:
        self._db = dynamodb

    def get(self, reads: Sequence[Read]) -> list[Item | None]:
        """The item (or None) for each read, in order, in one BatchGetItem (retried for unprocessed keys)."""
        return get_items(self._db, reads)

    def commit(self, actions: Sequence[dict[str, Any]]) -> int | None:
        """Run a transaction: None if it committed, else the index of the first action that lost to
        a concurrent request (its condition failed, or DynamoDB saw a conflicting transaction)."""
        return first_lost(commit(self._db, actions))
