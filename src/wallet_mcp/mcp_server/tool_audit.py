"""Every MCP tool call in the audit trail (issue 18): who (user, client, the grant and token), which
tool, the arguments that concern money (account, amount, currency), the decision and the result.

Decisions: `allowed` (it ran), `confirmed` (it ran after the person approved it), `asked` (it
waits for the person), `declined` (the person said no), `refused_scope`, `refused_account`,
`refused_cap_per_transaction`, `refused_cap_per_day` (the limits chosen at consent),
`refused_confirmation` (an approval that was used, expired or for other arguments), `refused`
(anything else the wallet refused: bad input, an unknown account), `failed` (the wallet could
not be reached), `started` (a write that began and whose outcome could not be recorded).

Each call's event is in the table before its answer leaves: Lambda may freeze an instance after
its answer and discard it without running anything more, so nothing is kept back in memory.
Cost on the hot path (docs/security.md § Every tool call audited): a read makes one `PutItem`,
started with the call as what nearly every read comes to (`allowed`, `ok`), so it runs beside the
tool's own reads; a read that ends otherwise (refused, failed) writes the same item again with
what happened. A write makes two: `started` before it runs (it runs only once that is in the
table), then its outcome under the same key. `tools/list` never touches it.

If an event cannot be written: a read is not answered (it changed nothing, so trying again is
safe); a write is not run when its `started` event fails, and when its outcome fails after it ran
the answer stands (what it did is done) and the trail keeps `started` — the call was made, its
outcome not recorded. A money movement that needed the person's confirmation also has its
`confirmation_executed` event, committed in its own transaction.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.owners import OwnerResolver

logger = logging.getLogger(__name__)

MONEY_ARGUMENTS: Final = ("accountId", "amount", "currency", "openingBalance", "type")
MAX_RESULT: Final = 200
EXPECTED_READ: Final = ("allowed", "ok")
"""What a read tool call nearly always comes to: its event is written with it, beside the read."""
STARTED: Final = ("started", "begun; what came of it could not be recorded")
"""A write's event before it runs: replaced by the outcome, and what stays if that cannot be written."""


_EARLY: Final = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tool-audit")
"""Where a read's event is written beside the read: one per process, its threads started on the
first call, not at import (nothing runs in a SnapStart snapshot)."""


class ToolAudit:
    def __init__(self, log: AuditLog, owners: OwnerResolver, *, retention: int) -> None:
        self._log = log
        self._owners = owners
        self._retention = retention

    def begin(
        self,
        principal: AccessToken,
        tool: str,
        arguments: Mapping[str, Any] | None,
        *,
        expect: tuple[str, str] | None = None,
    ) -> PendingCall:
        """A call about to run. `expect`: the decision and result it will most likely come to,
        written now, while the call runs (`finish` corrects it if the call came to something else)."""
        return PendingCall(self, principal, tool, arguments, expect)

    def record(
        self,
        principal: AccessToken,
        tool: str,
        arguments: Mapping[str, Any] | None,
        decision: str,
        result: str,
    ) -> bool:
        """A call whose decision is already known (refused before it ran): written now."""
        return self.begin(principal, tool, arguments).finish(decision, result)

    def _event(
        self,
        principal: AccessToken,
        tool: str,
        arguments: Mapping[str, Any] | None,
        decision: str,
        result: str,
    ) -> AuditEvent:
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
        return AuditEvent(
            "tool_called",
            subject=owner or principal.subject,
            client_id=principal.client_id,
            details=details,
            retention=self._retention,
        )


class PendingCall:
    """One tool call's event: one item (its key fixed when the call began), written once, or
    twice when what was expected is not what happened."""

    def __init__(
        self,
        audit: ToolAudit,
        principal: AccessToken,
        tool: str,
        arguments: Mapping[str, Any] | None,
        expect: tuple[str, str] | None,
    ) -> None:
        self._audit = audit
        self._principal = principal
        self._tool = tool
        self._arguments = dict(arguments or {})
        self._at_ms = int(time.time() * 1000)
        self._suffix = uuid.uuid4().hex[:12]
        self._expected = expect
        self._early: Future[bool] | None = None
        if expect is not None:
            self._early = _EARLY.submit(self._put, *expect)

    def written(self) -> bool:
        """Whether the expected event is in the table (waits for it)."""
        return self._early is not None and self._early.result()

    def finish(self, decision: str, result: str) -> bool:
        """The call's decision and result, in the table once this returns; False if they could
        not be written (logged, never with the arguments)."""
        if self._early is not None:
            written = self._early.result()
            if written and (decision, result) == self._expected:
                return True
        # a refused or failed read overwrites the expected event (same key): the trail says what
        # happened; if this write fails, the item may still say "allowed" for a call that was
        # not answered with data — it can overstate what an app got, never hide it
        return self._put(decision, result)

    def _put(self, decision: str, result: str) -> bool:
        event = self._audit._event(self._principal, self._tool, self._arguments, decision, result)
        try:
            self._audit._log.put(event, self._at_ms, self._suffix)
        except (ClientError, BotoCoreError):
            logger.error("tool-call audit not written", extra={"tool": self._tool, "decision": decision})
            return False
        return True
