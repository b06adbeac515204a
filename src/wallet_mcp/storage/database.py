"""Work that spans tables: one strongly consistent batch read, one transaction.

An endpoint that must read several items in one round trip, or write several all-or-nothing, asks
the stores for the reads (`read(...)`) and the actions (`*_action(...)`) and hands them here; it
never holds the DynamoDB client or builds a key or a request itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from wallet_mcp.observability import count
from wallet_mcp.storage.batch import Read, get_items
from wallet_mcp.storage.items import Item
from wallet_mcp.storage.transactions import commit, first_lost

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

logger = logging.getLogger(__name__)


class Database:
    def __init__(self, dynamodb: DynamoDBClient) -> None:
        self._db = dynamodb

    def get(self, reads: Sequence[Read]) -> list[Item | None]:
        """The item (or None) for each read, in order, in one BatchGetItem (retried for unprocessed keys)."""
        return get_items(self._db, reads)

    def commit(
        self, actions: Sequence[dict[str, Any]], *, best_effort: Sequence[dict[str, Any] | None] = ()
    ) -> int | None:
        """Run a transaction: None if it committed, else the index of the first action that lost to
        a concurrent request (its condition failed, or DynamoDB saw a conflicting transaction).

        `best_effort`: unconditional Puts that ride along at no extra round trip (a connection-log
        step), and commit only if the rest does. Should one of them be what makes the transaction
        fail (its table missing or not writable, it throttled), the rest commits again without
        them: they never cost the caller its answer."""
        extras = [action for action in best_effort if action is not None]
        if not extras:
            return first_lost(commit(self._db, actions))
        try:
            reasons = commit(self._db, [*actions, *extras])
        except ClientError as exc:
            if not _caused_by_extras(exc, len(actions)):
                raise
            logger.warning("best-effort actions dropped from a transaction", extra={"error": _code(exc)})
            count("ConnectionLogDropped")
            return first_lost(commit(self._db, actions))
        return first_lost(reasons[: len(actions)] if reasons is not None else None)


_NOT_THE_REQUESTS_FAULT = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "ValidationException"}
)
"""Errors that may come from any one table of a transaction (a best-effort one included)."""


def _caused_by_extras(exc: ClientError, own: int) -> bool:
    """Whether a best-effort action (from index `own` on) may be why the transaction failed."""
    code = _code(exc)
    if code in _NOT_THE_REQUESTS_FAULT:
        return True
    if code == "TransactionCanceledException":
        reasons = [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons") or []]
        return any(reason != "None" for reason in reasons[own:])
    return False


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
