"""Every MCP tool call in the audit trail (issue 18): who (user, client, the grant and token), which
tool, the arguments that concern money (account, amount, currency), the decision and the result.

Decisions: `allowed` (it ran), `confirmed` (it ran after the person approved it), `asked` (it
waits for the person), `declined` (the person said no), `refused_scope`, `refused_account`,
`refused_cap_per_transaction`, `refused_cap_per_day` (the limits chosen at consent),
`refused_confirmation` (an approval that was used, expired or for other arguments), `refused`
(anything else the wallet refused: bad input, an unknown account), `failed` (the wallet could
not be reached).

Cost on the hot path (docs/security.md § Every tool call audited): a tool that writes is
recorded before its answer leaves — one BatchWriteItem that carries the reads waiting beside it
(a money movement also has its `confirmation_executed` event, committed with it).
A read is buffered in the instance and written with the next write, or once 25 are waiting or the
oldest has waited 30 s, by the call that finds it so: most read calls make no AWS call for the
audit. The price: reads buffered when an instance is reclaimed are lost (at most 25 events or
30 s of one instance's reads); writes never are. `tools/list` never touches it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.owners import OwnerResolver

logger = logging.getLogger(__name__)

MONEY_ARGUMENTS: Final = ("accountId", "amount", "currency", "openingBalance", "type")
MAX_BUFFERED: Final = 25
MAX_WAIT: Final = 30.0
MAX_RESULT: Final = 200


class ToolAudit:
    def __init__(
        self,
        log: AuditLog,
        owners: OwnerResolver,
        *,
        retention: int,
        max_buffered: int = MAX_BUFFERED,
        max_wait: float = MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._owners = owners
        self._retention = retention
        self._max_buffered = max_buffered
        self._max_wait = max_wait
        self._clock = clock
        self._buffer: list[tuple[AuditEvent, int]] = []
        self._since: float | None = None
        self._lock = threading.Lock()

    def record(
        self,
        principal: AccessToken,
        tool: str,
        arguments: Mapping[str, Any] | None,
        decision: str,
        result: str,
        *,
        writes: bool,
    ) -> None:
        """One tool call: written now with what is waiting (`writes`), or buffered (a read)."""
        try:
            owner = self._owners.lookup(principal)  # the person (a client-credentials client's owner)
        except (ClientError, BotoCoreError):
            owner = None
        details: dict[str, Any] = {
            "tool": tool,
            "decision": decision,
            "result": result[:MAX_RESULT],
            "grant": f"{owner or principal.subject}/{principal.client_id}",
            "token": principal.jti,
        }
        for name in MONEY_ARGUMENTS:
            value = (arguments or {}).get(name)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                details[name] = str(value)[:64]
        event = AuditEvent(
            "tool_called",
            subject=owner or principal.subject,
            client_id=principal.client_id,
            details=details,
            retention=self._retention,
        )
        now_ms = int(time.time() * 1000)
        with self._lock:
            self._buffer.append((event, now_ms))
            if self._since is None:
                self._since = self._clock()
            due = (
                writes
                or len(self._buffer) >= self._max_buffered
                or self._clock() - self._since >= self._max_wait
            )
            if not due:
                return
            batch, self._buffer, self._since = self._buffer, [], None
        self._write(batch)

    def _write(self, batch: list[tuple[AuditEvent, int]]) -> None:
        try:
            self._log.record_many(batch)
        except (ClientError, BotoCoreError):
            # after the fact: the call's answer stands (a money movement has its own audit event,
            # committed with it); what was lost is logged, never with its arguments
            logger.error("tool-call audit not written", extra={"events": len(batch)})
