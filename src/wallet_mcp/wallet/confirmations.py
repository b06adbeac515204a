"""Confirmations: a money movement a client asked for, waiting for the person to approve it in
their own browser (URL-mode elicitation, MCP 2025-11-25 client/elicitation §URL Mode).

Kept in the wallet table, in the owner's own partition (docs/storage.md):

    USER#u  CONFIRM#<sha256(op id)>   one pending operation (TTL `expires_at`, checked on read)

Why the wallet table and not a table of its own: the operation is consumed in the same
TransactWriteItems as the wallet write it authorises (a condition on approved → used), every key
of this table starts with the owner's partition (one user's confirmation is not even addressable
from another user's session), and /account lists a person's confirmations with one Query.

The op id is an opaque secret (256 bits) that only the client and the person's browser see (in
the URL `/account/confirm?op=<id>` and, sealed, in the 2026-07-28 `requestState`); the table holds
its SHA-256 only. The record is bound to the user, the client and the SHA-256 of the tool's
canonical arguments: what was approved is what runs, for whom it was asked, once.

Pure rules (`needs_confirmation`, `arguments_digest`) sit beside the store; no policy is in the
store itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from wallet_mcp.credentials import opaque
from wallet_mcp.storage import items
from wallet_mcp.storage.transactions import LOST, commit
from wallet_mcp.wallet.store import user_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from wallet_mcp.wallet.service import Draft

CONFIRMATION_TTL: Final = 600
"""How long the person has to act, and the window to retry in: ten minutes."""
RETENTION: Final = 7 * 24 * 3600
"""How long a settled confirmation stays listed in /account before DynamoDB's TTL removes it."""
_PREFIX: Final = "CONFIRM#"
_PREFERENCES: Final = "PREFERENCES"

Status = Literal["pending", "approved", "declined", "used", "expired"]
Decision = Literal["approved", "declined"]


THRESHOLD_CURRENCY: Final = "USD"
"""The currency of a person's "confirm debits over" threshold; debits in any other currency always
need the confirmation."""


def needs_confirmation(
    amount_minor: int, currency: str = THRESHOLD_CURRENCY, *, threshold_minor: int = 0
) -> bool:
    """Whether a transaction of this signed amount needs the person's confirmation.

    By default every debit does (a credit never moves money out); a person may set a threshold
    (in USD, never above the deployment's maximum: `effective_threshold`), and then only USD
    debits above it do."""
    if amount_minor >= 0:
        return False
    if currency != THRESHOLD_CURRENCY:
        return True
    return -amount_minor > threshold_minor


def needs_step_up(amount_minor: int, currency: str, *, over_minor: int) -> bool:
    """Whether approving this debit asks for the password again: over the deployment's amount in
    USD, any amount in another currency."""
    return currency != THRESHOLD_CURRENCY or abs(amount_minor) > over_minor


def effective_threshold(chosen_minor: int | None, maximum_minor: int) -> int:
    """The person's threshold, capped by the administrator's maximum (lowering the maximum lowers
    every threshold above it at once)."""
    return max(0, min(chosen_minor or 0, maximum_minor))


def arguments_digest(tool: str, arguments: dict[str, Any]) -> str:
    """SHA-256 (hex) of the tool name and its arguments as canonical JSON (sorted keys, no
    whitespace): any change to any argument is another operation."""
    canonical = json.dumps(
        {"tool": tool, "arguments": arguments}, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class Operation:
    """What the person is asked to approve, as the page shows it."""

    tool: str
    account_id: str
    account_name: str
    amount_minor: int
    currency: str
    category: str
    description: str
    occurred_at: str | None

    @classmethod
    def transaction(cls, drafted: Draft) -> Operation:
        """A drafted `createTransaction`, as the person is asked to approve it."""
        tx = drafted.tx
        return cls(
            tool="createTransaction",
            account_id=tx.account_id,
            account_name=drafted.account.name,
            amount_minor=tx.amount,
            currency=tx.currency,
            category=tx.category,
            description=tx.description,
            occurred_at=drafted.occurred_at,
        )


@dataclass(frozen=True, slots=True)
class Confirmation:
    op_digest: str
    user_id: str
    client_id: str
    token_id: str
    """The `jti` of the access token that asked."""
    args_digest: str
    operation: Operation
    status: Status
    created_at: int
    expires_at: int
    nonce: str
    """What the op id is derived from with the MCP function's key (never the op id itself)."""
    decided_at: int | None = None
    transaction_id: str | None = None
    reported: bool = False
    """Whether a settled outcome (declined, expired, used) was already told to the client on the
    2025-11-25 wire, where no requestState names the operation: after that, the same arguments
    start a new confirmation rather than repeat the old answer for ten minutes."""

    def is_live(self, now: int) -> bool:
        """DynamoDB deletes expired items lazily (up to days later): expiry is checked here."""
        return now < self.expires_at

    def to_item(self) -> items.Item:
        op = self.operation
        return items.compact(
            {
                "pk": items.s(user_pk(self.user_id)),
                "sk": items.s(_PREFIX + self.op_digest),
                "kind": items.s("confirmation"),
                "client_id": items.s(self.client_id),
                "token_id": items.s(self.token_id),
                "nonce": items.s(self.nonce),
                "args_digest": items.s(self.args_digest),
                "tool": items.s(op.tool),
                "account_id": items.s(op.account_id),
                "account_name": items.s(op.account_name),
                "amount": items.n(op.amount_minor),
                "currency": items.s(op.currency),
                "category": items.s(op.category),
                "description": items.s(op.description),
                "occurred_at": items.s(op.occurred_at) if op.occurred_at else None,
                "status": items.s(self.status),
                "created_at": items.n(self.created_at),
                "confirm_by": items.n(self.expires_at),
                "reported": items.boolean(True) if self.reported else None,
                # the item itself outlives the ten minutes, so /account can list what happened
                "expires_at": items.n(self.created_at + RETENTION),
            }
        )

    @staticmethod
    def from_item(item: items.Item) -> Confirmation:
        decided = items.get_n(item, "decided_at")
        return Confirmation(
            op_digest=items.req_s(item, "sk").removeprefix(_PREFIX),
            user_id=items.req_s(item, "pk").removeprefix("USER#"),
            client_id=items.req_s(item, "client_id"),
            token_id=items.req_s(item, "token_id"),
            args_digest=items.req_s(item, "args_digest"),
            operation=Operation(
                tool=items.req_s(item, "tool"),
                account_id=items.req_s(item, "account_id"),
                account_name=items.req_s(item, "account_name"),
                amount_minor=items.req_n(item, "amount"),
                currency=items.req_s(item, "currency"),
                category=items.req_s(item, "category"),
                description=items.req_s(item, "description"),
                occurred_at=items.get_s(item, "occurred_at"),
            ),
            status=items.req_s(item, "status"),  # type: ignore[arg-type]
            created_at=items.req_n(item, "created_at"),
            expires_at=items.req_n(item, "confirm_by"),
            nonce=items.req_s(item, "nonce"),
            decided_at=decided,
            transaction_id=items.get_s(item, "transaction_id"),
            reported=items.get_bool(item, "reported"),
        )


class ConfirmationStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def _key(self, user_id: str, op_digest: str) -> items.Item:
        return {"pk": items.s(user_pk(user_id)), "sk": items.s(_PREFIX + op_digest)}

    def create(self, confirmation: Confirmation, *, also: Sequence[dict[str, Any]] = ()) -> None:
        """A new pending confirmation, committed with `also` (its audit event) in one transaction."""
        put = {
            "Put": {
                "TableName": self.table,
                "Item": confirmation.to_item(),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        if commit(self._db, [put, *also]) is not None:
            raise RuntimeError("a confirmation with this key exists")  # 256-bit ids: never

    def get(self, user_id: str, op_id: str) -> Confirmation | None:
        """The confirmation of this op id in this user's partition (None: not theirs, or none)."""
        if not 0 < len(op_id) <= 128:
            return None
        response = self._db.get_item(
            TableName=self.table, Key=self._key(user_id, opaque.digest(op_id)), ConsistentRead=True
        )
        item = response.get("Item")
        return Confirmation.from_item(item) if item else None

    def of_user(self, user_id: str) -> list[Confirmation]:
        """Every confirmation the user has (they live a week), newest first."""
        found: list[Confirmation] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": items.s(user_pk(user_id)), ":prefix": items.s(_PREFIX)},
            "ConsistentRead": True,
        }
        while True:
            response = self._db.query(**kwargs)
            found.extend(Confirmation.from_item(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return sorted(found, key=lambda c: c.created_at, reverse=True)
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def latest_for(self, user_id: str, client_id: str, args_digest: str) -> Confirmation | None:
        """The newest confirmation this client asked for these exact arguments and has not yet
        been told the end of (the 2025-11-25 wire, where the retry is the same call). Ones already
        told are skipped, not a stop: two created in the same second sort in either order."""
        for confirmation in self.of_user(user_id):
            if (
                confirmation.client_id == client_id
                and confirmation.args_digest == args_digest
                and not confirmation.reported
            ):
                return confirmation
        return None

    def threshold(self, user_id: str) -> int | None:
        """The person's "confirm debits over" (US cents), as they set it; None: never set."""
        response = self._db.get_item(
            TableName=self.table,
            Key={"pk": items.s(user_pk(user_id)), "sk": items.s(_PREFERENCES)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return items.get_n(item, "confirm_over") if item else None

    def set_threshold(self, user_id: str, cents: int, *, now: int) -> None:
        self._db.update_item(
            TableName=self.table,
            Key={"pk": items.s(user_pk(user_id)), "sk": items.s(_PREFERENCES)},
            UpdateExpression="SET confirm_over = :cents, updated_at = :now",
            ExpressionAttributeValues={":cents": items.n(cents), ":now": items.n(now)},
        )

    def decide(
        self,
        user_id: str,
        op_digest: str,
        decision: Decision,
        *,
        now: int,
        also: Sequence[dict[str, Any]] = (),
    ) -> bool:
        """pending → approved | declined, only while it is live, committed with `also` (its audit
        event); False if it was not pending (then nothing is written)."""
        return self._transition(
            user_id,
            op_digest,
            "SET #status = :to, decided_at = :now",
            "#status = :pending AND confirm_by > :now",
            {":to": items.s(decision), ":now": items.n(now), ":pending": items.s("pending")},
            also,
        )

    def expire(self, user_id: str, op_digest: str, *, now: int, also: Sequence[dict[str, Any]] = ()) -> bool:
        """pending | approved → expired once its time has passed (the person can no longer act)."""
        return self._transition(
            user_id,
            op_digest,
            "SET #status = :to, decided_at = :now",
            "#status IN (:pending, :approved) AND confirm_by <= :now",
            {
                ":to": items.s("expired"),
                ":now": items.n(now),
                ":pending": items.s("pending"),
                ":approved": items.s("approved"),
            },
            also,
        )

    def mark_reported(self, user_id: str, op_digest: str) -> None:
        self._db.update_item(
            TableName=self.table,
            Key=self._key(user_id, op_digest),
            UpdateExpression="SET reported = :yes",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":yes": items.boolean(True)},
        )

    def use_action(
        self, user_id: str, op_digest: str, *, client_id: str, args_digest: str, transaction_id: str, now: int
    ) -> dict[str, Any]:
        """The TransactWriteItems action that spends an approved confirmation, committed with the
        wallet write it authorises: approved → used, only for this client and these arguments
        and before its time is up. A second retry, a concurrent one, or a changed argument fails
        the condition and the whole transaction with it (exactly once)."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._key(user_id, op_digest),
                "UpdateExpression": "SET #status = :used, transaction_id = :tx, used_at = :now",
                "ConditionExpression": (
                    "#status = :approved AND confirm_by > :now"
                    " AND client_id = :client AND args_digest = :args"
                ),
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":used": items.s("used"),
                    ":approved": items.s("approved"),
                    ":tx": items.s(transaction_id),
                    ":now": items.n(now),
                    ":client": items.s(client_id),
                    ":args": items.s(args_digest),
                },
            }
        }

    def _transition(
        self,
        user_id: str,
        op_digest: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        also: Sequence[dict[str, Any]] = (),
    ) -> bool:
        action = {
            "Update": {
                "TableName": self.table,
                "Key": self._key(user_id, op_digest),
                "UpdateExpression": update,
                "ConditionExpression": f"attribute_exists(pk) AND {condition}",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }
        reasons = commit(self._db, [action, *also])
        if reasons is None:
            return True
        if reasons[0] in LOST:
            return False
        raise RuntimeError(f"confirmation transition cancelled: {reasons}")
