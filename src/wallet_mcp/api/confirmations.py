"""The wallet API's debits wait for the person too (issue 18): the same policy and the same gate
as the MCP tools (`wallet/confirmation_gate.py`), delivered the REST way.

A debit that needs the person's confirmation (every debit by default, or over the person's
threshold, or over a cap they set for this application with "ask me instead") answers
`403 {"error": "confirmation_required", "confirmation_url": …, "operation_id": …}` and writes
nothing. The person opens the URL in their own browser, signed in, and approves (or declines);
the client then sends the same request again (with the header `Confirmation-Id: <operation_id>`,
or without: the operation is then found by the arguments), and it is recorded exactly once (the approval is
spent in the transaction that records it, bound to the user, the client and the exact
arguments). A declined, expired or used approval: 403 `access_denied`. A client-credentials
client may ask only if an administrator allowed it payments.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

from wallet_mcp.api.auth import Caller
from wallet_mcp.wallet.confirmation_gate import Ask, ConfirmationGate, Proceed, Refuse
from wallet_mcp.wallet.confirmations import Operation, arguments_digest, needs_confirmation
from wallet_mcp.wallet.model import Account, Transaction
from wallet_mcp.wallet.owners import OwnerResolver
from wallet_mcp.wallet.service import ConfirmationRefused, Draft, WalletError, WalletService


class ConfirmationRequired(WalletError):
    """The person must approve this request at `url` before the same request is sent again."""

    status = 403
    code = "confirmation_required"

    def __init__(self, ask: Ask) -> None:
        super().__init__(ask.message)
        self.url = ask.url
        self.operation_id = ask.op_id

    def body(self) -> dict[str, Any]:
        return {
            "error": self.code,
            "error_description": self.message,
            "confirmation_url": self.url,
            "operation_id": self.operation_id,
        }


class MachineClientRefused(WalletError):
    status = 403
    code = "access_denied"

    def __init__(self) -> None:
        super().__init__(
            "this application acts without a person (client credentials) and may not move money "
            "unless an administrator allows it; nothing was recorded"
        )


class DebitConfirmations:
    def __init__(
        self,
        gate: Callable[[], ConfirmationGate],
        owners: OwnerResolver,
        *,
        threshold: Callable[[str], int] = lambda _owner: 0,
    ) -> None:
        """`gate`: built on the first debit (its key costs a KMS call: never on a read's cold
        start); `threshold`: the owner's effective "confirm debits over" in US cents."""
        self._make_gate = gate
        self._owners = owners
        self._threshold = threshold

    @cached_property
    def _gate(self) -> ConfirmationGate:
        return self._make_gate()

    def record(
        self,
        caller: Caller,
        wallet: WalletService,
        drafted: Draft,
        *,
        idempotency_key: str | None,
        operation_id: str | None = None,
    ) -> tuple[Transaction, Account]:
        """Record the drafted transaction, now or once the person has approved it. `operation_id`
        (the `Confirmation-Id` header): the retry names the operation, which must be this
        client's, for these very arguments (else refused); without it, the operation is found
        by the user, the client and the arguments."""
        tx, owner = drafted.tx, caller.owner
        over = wallet.over_cap(owner, drafted)
        if over is not None and not wallet.asks_over_cap():
            raise over  # the person's cap: refused before asking them anything
        threshold = self._threshold(owner) if tx.amount < 0 else 0
        if over is None and not needs_confirmation(tx.amount, tx.currency, threshold_minor=threshold):
            return wallet.record(owner, drafted, idempotency_key=idempotency_key)
        if not self._owners.may_debit(caller.principal):
            raise MachineClientRefused
        operation = Operation.transaction(drafted)
        arguments = {
            "surface": "api",
            "account_id": tx.account_id,
            "amount_minor": tx.amount,
            "currency": tx.currency,
            "category": tx.category,
            "description": tx.description,
            "occurred_at": drafted.occurred_at,
        }
        verdict = self._gate.check(
            caller.principal,
            owner,
            operation,
            arguments_digest("createTransaction", arguments),
            state=operation_id,
        )
        match verdict:
            case Proceed(confirmation=found):
                actions = self._gate.authorising_actions(
                    found, transaction_id=tx.transaction_id, tool="createTransaction"
                )
                return wallet.record(owner, drafted, idempotency_key=idempotency_key, authorised_by=actions)
            case Refuse(message=message):
                raise ConfirmationRefused(message)
            case Ask():
                raise ConfirmationRequired(verdict)
