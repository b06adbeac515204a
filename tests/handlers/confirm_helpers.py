"""For tests about something else than the confirmation itself (balances, idempotency, faults,
prompts): the person approves whatever is pending, as the confirmation page would have done it.
The page and every refusal are tested in test_mcp_confirmations.py."""

from __future__ import annotations

import time

from devstack.seed import DEMO_CLIENT_ID, DEMO_USER_ID
from wallet_mcp import aws
from wallet_mcp.storage import items
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.wallet.confirmations import ConfirmationStore


def approve_pending(wallet_table: str, user_id: str = DEMO_USER_ID) -> int:
    """Approve every pending confirmation of the user; how many there were."""
    store = ConfirmationStore(aws.dynamodb(), wallet_table)
    pending = [c for c in store.of_user(user_id) if c.status == "pending"]
    for confirmation in pending:
        assert store.decide(user_id, confirmation.op_digest, "approved", now=int(time.time()))
    return len(pending)


def allow_debits(clients_table: str, client_id: str = DEMO_CLIENT_ID) -> None:
    """What an administrator's "Allow payments" on /admin/client does: the client's
    client-credentials tokens may ask for debits (each still confirmed by its owner)."""
    ClientStore(aws.dynamodb(), clients_table).update(client_id, {"debits_allowed": items.boolean(True)})
