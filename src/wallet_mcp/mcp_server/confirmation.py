"""The person's confirmation of a money movement, asked through URL-mode elicitation.

A tool call that moves money out (`wallet.confirmations.needs_confirmation`) does not run on the
token alone: it creates a pending operation bound to the user, the client and the SHA-256 of its
exact arguments, and asks the person to approve it on our own page, `/account/confirm?op=<id>`,
in their own browser, signed in (MCP 2025-11-25 client/elicitation §URL Mode: "sensitive
interactions that must not pass through the MCP client"). The client and the model see only the
URL; approving needs the person's session and a CSRF token the client cannot read, so nothing they
can send stands in for it (docs/security.md § Confirmations).

Delivered statelessly, on each wire as it allows:

- 2026-07-28: an `InputRequiredResult` with a URL-mode `elicitation/create` and a `requestState`
  naming the operation (basic/patterns/mrtr); the SDK's `RequestStateBoundary` seals it (AES-GCM
  under a key derived from a KMS HMAC key) and binds it to the method, tool, arguments, principal
  and this resource, so a tampered, foreign or re-aimed state is refused before the handler runs.
- 2025-11-25: a `URLElicitationRequiredError` (-32042, client/elicitation §Error Handling); the
  client retries the same call, found again by (user, client, arguments).
- A client that declared no URL-mode elicitation: a tool result telling the person which URL to
  open and to ask again afterwards (client/elicitation §Capabilities: a server MUST NOT send a
  mode the client did not declare).

The gate itself (`wallet/confirmation_gate.py`) is shared with the wallet API, which answers
403 `confirmation_required` with the same URL.

The retry executes the operation once if the person approved it, it has not expired and the
arguments are the same: the wallet write and the approved → used transition commit in one
DynamoDB transaction (`ConfirmationStore.use_action`).
"""

from __future__ import annotations

from typing import Any, Final

from mcp.server.context import ServerRequestContext
from mcp.server.request_state import RequestStateSecurity

from wallet_mcp.mcp_server.principal import current_principal
from wallet_mcp.wallet.confirmation_gate import (
    CONFIRM_PATH,
    Ask,
    ConfirmationGate,
    Proceed,
    Refuse,
    Verdict,
    derive_key,
    op_id_key,
)
from wallet_mcp.wallet.confirmations import CONFIRMATION_TTL

__all__ = [
    "CONFIRM_PATH",
    "Ask",
    "ConfirmationGate",
    "Proceed",
    "Refuse",
    "Verdict",
    "op_id_key",
    "request_state_security",
]

_STATE_KEY_INFO: Final = b"wallet-mcp/request-state/v1"
STATE_LIFETIME: Final = CONFIRMATION_TTL + 60
"""A sealed requestState outlives the confirmation it names by a minute, so a late retry is told
"expired" with the operation named, not "invalid requestState"."""


def _principal(_ctx: ServerRequestContext[Any]) -> str:
    """Whom a requestState is bound to: the client and the subject of the access token (the SDK's
    default reads the SDK's auth middleware, which this server does not use)."""
    principal = current_principal()
    return f"{principal.client_id}\n{principal.subject}"


def request_state_security(secret: bytes, *, audience: str) -> RequestStateSecurity:
    """The SDK's sealing of `requestState` (AES-256-GCM, expiry, bound to the method, tool,
    arguments and principal) under a key derived from the deployment's confirmation secret, for
    this resource only (`audience`)."""
    return RequestStateSecurity(
        keys=[derive_key(secret, _STATE_KEY_INFO)],
        ttl=STATE_LIFETIME,
        bind_principal=_principal,
        audience=audience,
    )
