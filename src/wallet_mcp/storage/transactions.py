"""TransactWriteItems with its cancellation reasons read back, for callers that must know which
condition failed (a concurrent request that won, a limit reached, an idempotent replay)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

LOST = ("ConditionalCheckFailed", "TransactionConflict")
"""Reasons that mean another request got there first, not that something is broken."""


def commit(db: DynamoDBClient, actions: Sequence[dict[str, Any]]) -> list[str] | None:
    """None if every action committed; else each action's cancellation reason ("None" where fine).

    A cancellation for any other reason (throttling, validation) is raised as the ClientError it is.
    """
    try:
        db.transact_write_items(TransactItems=list(actions))  # type: ignore[arg-type]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        reasons = [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons") or []]
        if not any(reason in LOST for reason in reasons):
            raise
        return reasons
    return None


def first_lost(reasons: list[str] | None) -> int | None:
    """The index of the first action that lost to a concurrent request, if any."""
    if reasons is None:
        return None
    return next((i for i, reason in enumerate(reasons) if reason in LOST), None)
