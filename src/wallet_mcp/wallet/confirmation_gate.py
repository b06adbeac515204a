"""The gate of an operation that needs the person's confirmation, shared by the MCP endpoint
(`mcp_server/confirmation.py`, which delivers it as a URL elicitation) and the wallet API (which
answers 403 `confirmation_required` with the URL): find or create the pending operation of a call,
bound to the user, the client and the SHA-256 of its exact arguments, and say whether to ask the
person, run it (with the conditions that spend the approval in the same transaction) or refuse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wallet_mcp.credentials import opaque
from wallet_mcp.storage.audit import AuditEvent, AuditLog, Event
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.confirmations import (
    CONFIRMATION_TTL,
    Confirmation,
    ConfirmationStore,
    Operation,
)
from wallet_mcp.wallet.money import format_money

CONFIRM_PATH: Final = "/account/confirm"
_OP_ID_LABEL: Final = b"wallet-mcp/confirmation-op-id/v1\0"
_OP_ID_KEY_INFO: Final = b"wallet-mcp/op-id/v1"


def derive_key(secret: bytes, info: bytes) -> bytes:
    """A key for one purpose, derived from the deployment's confirmation secret (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def op_id_key(secret: bytes) -> bytes:
    """The op-id key, derived from the deployment's confirmation secret (RFC 5869)."""
    return derive_key(secret, _OP_ID_KEY_INFO)


@dataclass(frozen=True, slots=True)
class Ask:
    """The person has not acted yet: show them the URL (again)."""

    url: str
    op_id: str
    elicitation_id: str
    message: str


@dataclass(frozen=True, slots=True)
class Proceed:
    """Approved, live, for these arguments and this client: execute with these conditions."""

    confirmation: Confirmation


@dataclass(frozen=True, slots=True)
class Refuse:
    """The operation will not run; the text says why (a tool result with `isError`)."""

    reason: Literal["declined", "expired", "used", "mismatch", "unknown"]
    message: str


Verdict = Ask | Proceed | Refuse


class ConfirmationGate:
    """Finds or creates the confirmation of a call and says what to answer."""

    def __init__(
        self,
        store: ConfirmationStore,
        audit: AuditLog,
        *,
        issuer: str,
        op_id_key: bytes,
        clock: Callable[[], int],
    ) -> None:
        """`op_id_key`: the secret op ids are derived from (`derive_op_id`), so a 2025-11-25 retry,
        which carries no state, can be shown the same URL again while the table keeps only the
        op id's digest."""
        self._store = store
        self._audit = audit
        self._base = issuer.rstrip("/") + CONFIRM_PATH
        self._key = op_id_key
        self._clock = clock

    # --- the one entry point --------------------------------------------------------------------

    def check(
        self,
        principal: AccessToken,
        owner: str,
        operation: Operation,
        args_digest: str,
        *,
        state: str | None,
        declined_in_client: bool = False,
    ) -> Verdict:
        """`state`: the op id the (unsealed) requestState names, on a 2026-07-28 retry."""
        now = self._clock()
        if state is not None:
            found = self._store.get(owner, state)
            if found is None:
                self._audit.record(
                    AuditEvent(
                        "confirmation_refused",
                        subject=owner,
                        client_id=principal.client_id,
                        details={"reason": "unknown", "tool": operation.tool, "token": principal.jti},
                    )
                )
                return Refuse("unknown", "This confirmation is unknown here; nothing was recorded.")
            if found.client_id != principal.client_id or found.args_digest != args_digest:
                self._record("confirmation_refused", found, {"reason": "mismatch", "by": principal.client_id})
                return Refuse(
                    "mismatch",
                    "The arguments differ from the ones the person was asked to confirm; nothing was "
                    "recorded. Ask again with the new arguments: the person will be asked to confirm them.",
                )
        else:
            found = self._store.latest_for(owner, principal.client_id, args_digest)
        if found is None:
            return self._create(principal, owner, operation, args_digest, now)
        verdict = self._settle(found, now, declined_in_client=declined_in_client)
        if isinstance(verdict, Refuse):
            if verdict.reason == "used":
                # a replay after execution, on record (declines and expiry have their own events)
                self._record("confirmation_refused", found, {"reason": "used"})
            if state is None:
                # told once on the stateless wire; the same call afterwards asks the person anew
                self._store.mark_reported(owner, found.op_digest)
        return verdict

    # --- steps --------------------------------------------------------------------------------

    def _settle(self, found: Confirmation, now: int, *, declined_in_client: bool) -> Verdict:
        op = found.operation
        what = f"{format_money(op.amount_minor, op.currency)} from {op.account_name}"
        match found.status:
            case "used":
                return Refuse(
                    "used",
                    f"This confirmation was already used: {what} was recorded once "
                    f"(transaction {found.transaction_id}) and was not recorded again.",
                )
            case "declined":
                return Refuse("declined", f"The person declined {what}. Nothing was recorded.")
            case "expired":
                return self._expired(what)
            case _ if not found.is_live(now):
                expired = self._event("confirmation_expired", found, {"status_was": found.status})
                self._store.expire(
                    found.user_id, found.op_digest, now=now, also=[self._audit.put_action(expired)]
                )
                return self._expired(what)
            case "pending" if declined_in_client:
                # the person declined to open the page in their client (URL mode: "decline")
                declined = self._event("confirmation_declined", found, {"where": "client"})
                self._store.decide(
                    found.user_id,
                    found.op_digest,
                    "declined",
                    now=now,
                    also=[self._audit.put_action(declined)],
                )
                return Refuse("declined", f"The person declined {what}. Nothing was recorded.")
            case "pending":
                return self._ask(found)
            case "approved":
                return Proceed(found)

    def record_refused_state(self, principal: AccessToken, tool: str) -> None:
        """A requestState the SDK's boundary refused (tampered, foreign, expired, other arguments):
        on record under the caller (the user, or for client credentials the client), with no
        operation to name, since a state that does not open names nothing."""
        self._audit.record(
            AuditEvent(
                "confirmation_refused",
                subject=principal.subject,
                client_id=principal.client_id,
                details={"reason": "invalid_request_state", "tool": tool[:100], "token": principal.jti},
            )
        )

    def authorising_actions(
        self, found: Confirmation, *, transaction_id: str, tool: str
    ) -> list[dict[str, Any]]:
        """What commits with the wallet write: the confirmation spent, and its audit event."""
        now = self._clock()
        spend = self._store.use_action(
            found.user_id,
            found.op_digest,
            client_id=found.client_id,
            args_digest=found.args_digest,
            transaction_id=transaction_id,
            now=now,
        )
        event = self._event("confirmation_executed", found, {"transaction_id": transaction_id, "tool": tool})
        return [spend, self._audit.put_action(event)]

    def _create(
        self, principal: AccessToken, owner: str, operation: Operation, args_digest: str, now: int
    ) -> Verdict:
        nonce = base64.urlsafe_b64encode(os.urandom(18)).decode("ascii")
        op_id = self.derive_op_id(nonce)
        confirmation = Confirmation(
            op_digest=opaque.digest(op_id),
            user_id=owner,
            client_id=principal.client_id,
            token_id=principal.jti,
            args_digest=args_digest,
            operation=operation,
            status="pending",
            created_at=now,
            expires_at=now + CONFIRMATION_TTL,
            nonce=nonce,
        )
        requested = self._event("confirmation_requested", confirmation, {})
        self._store.create(confirmation, also=[self._audit.put_action(requested)])
        return self._ask(confirmation)

    def derive_op_id(self, nonce: str) -> str:
        """op id = HMAC-SHA256(key, nonce): unguessable without the key, which only this function
        holds; the table keeps the nonce and the op id's digest, neither of which opens the page."""
        mac = hmac.new(self._key, _OP_ID_LABEL + nonce.encode("ascii"), hashlib.sha256).digest()
        return "op_" + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def _ask(self, confirmation: Confirmation) -> Ask:
        op_id = self.derive_op_id(confirmation.nonce)
        op = confirmation.operation
        amount = format_money(-op.amount_minor if op.amount_minor < 0 else op.amount_minor, op.currency)
        url = f"{self._base}?op={op_id}"
        what = (
            f"opening the account {op.account_name} with {amount}"
            if op.tool == "createAccount"
            else f"paying {amount} from {op.account_name} (“{op.description}”)"
        )
        message = (
            f"Confirm {what} in your wallet: "
            f"open {url} , approve it there, then ask again. It expires in {CONFIRMATION_TTL // 60} minutes."
        )
        return Ask(url=url, op_id=op_id, elicitation_id=confirmation.op_digest[:32], message=message)

    @staticmethod
    def _expired(what: str) -> Refuse:
        return Refuse(
            "expired",
            f"The confirmation of {what} expired before it was used; nothing was recorded. "
            "Ask again to start a new confirmation.",
        )

    def _event(self, event: Event, found: Confirmation, extra: dict[str, object]) -> AuditEvent:
        op = found.operation
        return AuditEvent(
            event,
            subject=found.user_id,
            client_id=found.client_id,
            details={
                "operation": found.op_digest[:16],
                "tool": op.tool,
                "account_id": op.account_id,
                "amount": op.amount_minor,
                "currency": op.currency,
                "token": found.token_id,
                **extra,
            },
        )

    def _record(self, event: Event, found: Confirmation, extra: dict[str, object]) -> None:
        self._audit.record(self._event(event, found, extra))
