"""The connection log: each step of a client's attempts to connect, kept a short while, so that an
administrator can see why "authorization with the MCP server failed" (ConnectionLogTable:
partition `client_id`, sort key `at`; sparse GSI `failures-index` on `failure_day`, `at`; TTL
`expires_at`; docs/storage.md).

One item per step — registration, a metadata-document fetch (`discovery`), the authorization
request and the redirect back, sign-in, consent, each token grant, and a client's first MCP call
with a new access token — with its outcome (`ok`, or the error code answered), a short description
in this server's words, the HTTP status and API Gateway's request id (the `correlation_id` of the
function's log lines). Never a secret: no code, token, verifier, password, client secret or cookie
reaches a step, and no username typed at a sign-in that failed.

Best effort by design: a request's steps are one PutItem (or one BatchWriteItem), through a client
that tries once with short timeouts (`aws.dynamodb_best_effort`); a failure is logged and counted
(`ConnectionLogDropped`), never raised. The token endpoint's successes ride in the transaction that
issues the token instead (`put_action`, committed as a best-effort action: no extra round trip).
The same failure repeated within `REPEAT_WINDOW` is written once per instance, so a client
retrying in a loop costs one write a minute, not one per request.

A failure also carries `failure_day` (its UTC date): the partition of `failures-index`, so the
recent failures of every client read newest first with one Query per day. TTL deletes lazily:
reads never look further back than the retention and skip items whose `expires_at` has passed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError

from wallet_mcp.observability import count, request_id
from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

logger = logging.getLogger(__name__)

Step = Literal["discovery", "registration", "authorize", "login", "consent", "token", "mcp_call"]
OK: Final = "ok"
UNREGISTERED: Final = "(unregistered)"
"""Where registrations that failed are kept: no client id was issued (`client_name` says who asked)."""
FAILURES_INDEX: Final = "failures-index"
REPEAT_WINDOW: Final = 60
MAX_DESCRIPTION: Final = 300
MAX_NAME: Final = 100
MAX_OUTCOME: Final = 64
MAX_CLIENT_ID_BYTES: Final = 1024
"""Longer client ids (no client has one) are not logged: the key stays small and bounded."""
_REMEMBERED: Final = 512


@dataclass(frozen=True, slots=True)
class ConnectionStep:
    """A step to record: `outcome` is `ok` or the error code the client (or the person) got."""

    client_id: str
    step: Step
    outcome: str
    description: str
    status: int
    client_name: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome != OK


def succeeded(
    client_id: str, step: Step, description: str, status: int = 200, *, client_name: str | None = None
) -> ConnectionStep:
    return ConnectionStep(client_id, step, OK, description, status, client_name)


def failed(
    client_id: str,
    step: Step,
    error: str,
    description: str,
    status: int,
    *,
    client_name: str | None = None,
) -> ConnectionStep:
    return ConnectionStep(client_id, step, error or "error", description, status, client_name)


@dataclass(frozen=True, slots=True)
class LoggedStep:
    """A step as read back."""

    client_id: str
    step: str
    outcome: str
    description: str
    status: int
    at_ms: int
    request_id: str | None
    client_name: str | None

    @property
    def failed(self) -> bool:
        return self.outcome != OK

    @property
    def at(self) -> int:
        """Seconds since the epoch."""
        return self.at_ms // 1000

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> LoggedStep:
        return cls(
            client_id=items.req_s(item, "client_id"),
            step=items.req_s(item, "step"),
            outcome=items.req_s(item, "outcome"),
            description=items.get_s(item, "description") or "",
            status=items.get_n(item, "status") or 0,
            at_ms=int(items.req_s(item, "at").split("#", 1)[0]),
            request_id=items.get_s(item, "request_id"),
            client_name=items.get_s(item, "client_name"),
        )


def clean(text: str, limit: int) -> str:
    """One line of printable text of at most `limit` characters (the page escapes it when shown)."""
    printable = "".join(c if c.isprintable() else " " for c in _encodable(text))
    line = " ".join(printable.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failure_day(epoch_ms: int) -> str:
    """The `failures-index` partition of a moment: its UTC date."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d")


def loggable_client_id(client_id: str) -> bool:
    return 0 < len(client_id.encode("utf-8", "surrogatepass")) <= MAX_CLIENT_ID_BYTES


def _encodable(text: str) -> str:
    """`text` without lone surrogates (a percent-decoded query may carry them; UTF-8 cannot)."""
    return text.encode("utf-8", "replace").decode("utf-8")


class ConnectionLog:
    """The store. `table` None: this function keeps no connection log, and recording is a no-op."""

    def __init__(
        self,
        dynamodb: Callable[[], DynamoDBClient],
        table: str | None,
        *,
        retention: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`dynamodb`: the client's factory, called on first use (a cold start does not build it)."""
        self._client = dynamodb
        self.table = table
        self.retention = retention
        self._clock = clock
        self._recent: OrderedDict[tuple[str, str, str, str], float] = OrderedDict()

    @cached_property
    def _db(self) -> DynamoDBClient:
        return self._client()

    # --- writing ---------------------------------------------------------------------------------

    def record(self, *steps: ConnectionStep) -> None:
        """Write `steps` (one request's), best effort: never raises, tries once."""
        if self.table is None:
            return
        now = self._clock()
        fresh = [step for step in steps if self._worth_writing(step, now)]
        if not fresh:
            return
        now_ms = int(now * 1000)
        # one millisecond apart: the steps of one request read back in the order they happened
        entries = [self._item(step, now_ms + i, int(now)) for i, step in enumerate(fresh)]
        try:
            if len(entries) == 1:
                self._db.put_item(TableName=self.table, Item=entries[0])
            else:
                response = self._db.batch_write_item(
                    RequestItems={self.table: [{"PutRequest": {"Item": e}} for e in entries]}
                )
                if response.get("UnprocessedItems"):
                    self._dropped("UnprocessedItems", len(entries))
        except (ClientError, BotoCoreError) as exc:
            self._dropped(_error_code(exc), len(entries))

    def put_action(self, step: ConnectionStep) -> dict[str, Any] | None:
        """`step` as a transaction's Put, for a caller that commits it as a best-effort action
        (`Database.commit(best_effort=...)`); None when there is nothing to write."""
        if self.table is None or not loggable_client_id(step.client_id):
            return None
        now = self._clock()
        return {"Put": {"TableName": self.table, "Item": self._item(step, int(now * 1000), int(now))}}

    def _worth_writing(self, step: ConnectionStep, now: float) -> bool:
        """Not a client id we cannot key, nor the same failure again within `REPEAT_WINDOW`."""
        if not loggable_client_id(step.client_id):
            return False
        if not step.failed:
            return True
        key = (step.client_id, step.step, step.outcome, step.description)
        last = self._recent.get(key)
        if last is not None and now - last < REPEAT_WINDOW:
            return False
        self._recent[key] = now
        self._recent.move_to_end(key)
        while len(self._recent) > _REMEMBERED:
            self._recent.popitem(last=False)
        return True

    def _item(self, step: ConnectionStep, at_ms: int, now: int) -> items.Item:
        correlation = request_id()
        return items.compact(
            {
                "client_id": items.s(_encodable(step.client_id)),
                "at": items.s(f"{at_ms:013d}#{uuid.uuid4().hex[:8]}"),
                "step": items.s(step.step),
                "outcome": items.s(clean(step.outcome, MAX_OUTCOME) or "error"),
                "description": items.s(clean(step.description, MAX_DESCRIPTION)),
                "status": items.n(step.status),
                "request_id": items.s(correlation) if correlation else None,
                "client_name": items.s(clean(step.client_name, MAX_NAME)) if step.client_name else None,
                "failure_day": items.s(failure_day(at_ms)) if step.failed else None,
                "expires_at": items.n(now + self.retention),
            }
        )

    def _dropped(self, error: str, steps: int) -> None:
        logger.warning("connection log not written", extra={"error": error, "steps": steps})
        count("ConnectionLogDropped")

    # --- reading ---------------------------------------------------------------------------------

    def of_client(self, client_id: str, *, limit: int = 50) -> list[LoggedStep] | None:
        """A client's steps, newest first, within the retention; None when the log cannot be read."""
        if self.table is None or not loggable_client_id(client_id):
            return []
        now = self._clock()
        try:
            response = self._db.query(
                TableName=self.table,
                KeyConditionExpression="client_id = :c AND #at >= :from",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={":c": items.s(client_id), ":from": items.s(self._cutoff(now))},
                ScanIndexForward=False,
                Limit=limit,
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("connection log not read", extra={"error": _error_code(exc)})
            return None
        return _live(response.get("Items", []), now)

    def recent_failures(self, *, limit: int = 50) -> list[LoggedStep] | None:
        """The failed steps of every client, newest first, within the retention: one Query of
        `failures-index` per day, today's first, until `limit` are found. None: cannot be read."""
        if self.table is None:
            return []
        now = self._clock()
        cutoff = self._cutoff(now)
        day = datetime.fromtimestamp(now, UTC).date()
        oldest = datetime.fromtimestamp(now - self.retention, UTC).date()
        found: list[LoggedStep] = []
        try:
            while len(found) < limit and day >= oldest:
                response = self._db.query(
                    TableName=self.table,
                    IndexName=FAILURES_INDEX,
                    KeyConditionExpression="failure_day = :d AND #at >= :from",
                    ExpressionAttributeNames={"#at": "at"},
                    ExpressionAttributeValues={":d": items.s(day.isoformat()), ":from": items.s(cutoff)},
                    ScanIndexForward=False,
                    Limit=limit - len(found),
                )
                found.extend(_live(response.get("Items", []), now))
                day -= timedelta(days=1)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("connection log not read", extra={"error": _error_code(exc)})
            return None
        return found[:limit]

    def _cutoff(self, now: float) -> str:
        """The smallest sort key still within the retention."""
        return f"{max(0, int((now - self.retention) * 1000)):013d}"


def _live(found: Sequence[Mapping[str, Any]], now: float) -> list[LoggedStep]:
    """The items TTL has not deleted yet but whose time is up, left out (TTL deletes lazily)."""
    return [LoggedStep.from_item(i) for i in found if (items.get_n(i, "expires_at") or 0) > now]


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__
