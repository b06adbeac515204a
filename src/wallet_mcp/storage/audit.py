"""The audit trail of security events (AuditTable: partition `subject`, sort key `at`; TTL `expires_at`).

One item per event, kept 90 days: sign-ins and failed sign-ins (with a password or an upstream
identity provider), consent, tokens issued and revoked, reuse of a refresh token or a code, users
created and identities linked by an upstream sign-in, each step of a money movement's
confirmation (requested, approved, declined, expired, executed, refused), the limits a person
changes, and every MCP tool call (`tool_called`, kept as long as `ToolAuditRetentionSeconds`
says; `mcp_server/tool_audit.py`). The subject is the
user (or, without one, the client); the events of one subject read newest first with one Query.
Written in the same transaction as what it records where there is one, so the trail never claims
what did not happen (one exception, `mcp_server/tool_audit.py`: a read tool call's event is
written beside the read as `allowed` and corrected if the read ended otherwise; should the
correction fail, it overstates what the app got, never hides it).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

RETENTION: Final = 90 * 24 * 3600
CLIENT_INDEX: Final = "client-index"
"""Sparse: the events that name a client, by client and time (the /admin client page)."""

Event = Literal[
    "login_succeeded",
    "login_failed",
    "login_locked_out",
    "consent_granted",
    "token_issued",
    "token_revoked",
    "refresh_token_reuse_detected",
    "authorization_code_replay_detected",
    "client_registered",
    "grant_revoked",
    "client_created",
    "client_updated",
    "client_secret_rotated",
    "client_disabled",
    "client_enabled",
    "client_deleted",
    "signed_out",
    "upstream_login_succeeded",
    "upstream_login_failed",
    "upstream_identity_linked",
    "user_created",
    "user_disabled",
    "user_enabled",
    "personal_token_revoked",
    "client_verified",
    "client_unverified",
    "idp_cut_off",
    "idp_restored",
    "client_lifetimes_updated",
    "client_debits_allowed",
    "client_debits_refused",
    "confirmation_threshold_set",
    "confirmation_requested",
    "confirmation_approved",
    "confirmation_declined",
    "confirmation_expired",
    "confirmation_executed",
    "confirmation_refused",
    "client_keys_set",
    "limits_changed",
    "tool_called",
]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    event: Event
    subject: str
    client_id: str | None = None
    source: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """Never a secret: ids, scopes, grant types, counts."""
    retention: int = RETENTION
    """Seconds the event is kept (the tool calls: the `ToolAuditRetentionSeconds` parameter)."""

    def to_item(self, now_ms: int, suffix: str | None = None) -> items.Item:
        """`suffix`: the end of the sort key (random unless given: an event written again under
        the same key replaces the first, `AuditLog.put`)."""
        return items.compact(
            {
                "subject": items.s(self.subject[:512] or "unknown"),
                "at": items.s(f"{now_ms:013d}#{suffix or uuid.uuid4().hex[:12]}"),
                "event": items.s(self.event),
                "client_id": items.s(self.client_id) if self.client_id else None,
                "source": items.s(self.source) if self.source else None,
                "details": items.s(json.dumps(self.details, separators=(",", ":"), sort_keys=True)),
                "expires_at": items.n(now_ms // 1000 + self.retention),
            }
        )


class AuditLog:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    def put_action(self, event: AuditEvent) -> dict[str, Any]:
        return {"Put": {"TableName": self.table, "Item": event.to_item(int(time.time() * 1000))}}

    def record(self, event: AuditEvent) -> None:
        self._db.put_item(TableName=self.table, Item=event.to_item(int(time.time() * 1000)))

    def put(self, event: AuditEvent, at_ms: int, suffix: str) -> None:
        """An event that happened at `at_ms`, under a key of its own (`suffix`): written again with
        the same key, it replaces what was written first (an MCP tool call's event, corrected
        once its outcome is known: `mcp_server/tool_audit.py`)."""
        self._db.put_item(TableName=self.table, Item=event.to_item(at_ms, suffix))

    def of(self, subject: str, *, limit: int = 50, event: Event | None = None) -> list[dict[str, Any]]:
        """A subject's events (only `event`, if given), newest first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "subject = :s",
            "ExpressionAttributeValues": {":s": items.s(subject)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if event is not None:
            kwargs["FilterExpression"] = "event = :e"
            kwargs["ExpressionAttributeValues"][":e"] = items.s(event)
        return [_event(i) for i in self._db.query(**kwargs).get("Items", [])]

    def of_client(
        self, client_id: str, *, limit: int = 50, event: Event | None = None
    ) -> list[dict[str, Any]]:
        """The events naming a client (index `client-index`), newest first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": CLIENT_INDEX,
            "KeyConditionExpression": "client_id = :c",
            "ExpressionAttributeValues": {":c": items.s(client_id)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if event is not None:
            kwargs["FilterExpression"] = "event = :e"
            kwargs["ExpressionAttributeValues"][":e"] = items.s(event)
        return [
            {**_event(i), "subject": items.req_s(i, "subject")}
            for i in self._db.query(**kwargs).get("Items", [])
        ]


def _event(i: items.Item) -> dict[str, Any]:
    return {
        "event": items.req_s(i, "event"),
        "at": int(items.req_s(i, "at").split("#")[0]),
        "client_id": items.get_s(i, "client_id"),
        "source": items.get_s(i, "source"),
        "details": json.loads(items.get_s(i, "details") or "{}"),
    }
