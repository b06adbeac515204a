"""An administrator may require the person's confirmation for createAccount too
(`RequireCreateAccountConfirmation`, issue 18): the call waits for the person like a debit, runs
once they approve (exactly once), and a decline creates nothing. Off (the default): as before."""

from __future__ import annotations

import time

import pytest

from devstack.seed import DEMO_USER_ID
from tests.conftest import response_json, with_parameters
from tests.handlers.confirm_helpers import approve_pending
from tests.handlers.mcp_session import Session, token, wallet_functions
from wallet_mcp import aws
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.wallet.confirmations import ConfirmationStore
from wallet_mcp.wallet.store import WalletStore

NEW = {"name": "Holiday fund", "type": "savings", "currency": "USD", "openingBalance": "250.00"}


@pytest.fixture
def ruled(load_function, aws_stack, demo_wallet):
    token_fn, _ = wallet_functions(load_function, aws_stack)
    mcp = load_function("McpFunction", with_parameters(aws_stack, RequireCreateAccountConfirmation="true"))
    return Session(mcp, token(token_fn))


def names(aws_stack) -> list[str]:
    store = WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    return [a.name for a in store.accounts(DEMO_USER_ID)]


def test_with_the_rule_a_new_account_waits_for_the_person_then_opens_once(ruled, aws_stack):
    first = response_json(ruled.rpc("tools/call", {"name": "createAccount", "arguments": NEW}))
    assert first["error"]["code"] == -32042, first
    assert "Holiday fund" not in names(aws_stack)
    assert approve_pending(ruled.wallet_table) == 1
    opened = ruled.call("createAccount", NEW)
    assert not opened.get("isError"), opened
    assert opened["structuredContent"]["account"]["balance"] == "250.00"
    again = response_json(ruled.rpc("tools/call", {"name": "createAccount", "arguments": NEW}))
    # the approval was spent: the same call again opens nothing (refused, or asked anew)
    assert again.get("result", {}).get("isError") or again["error"]["code"] == -32042, again
    assert names(aws_stack).count("Holiday fund") == 1
    executed = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"]).of(DEMO_USER_ID)
    assert any(
        e["event"] == "confirmation_executed" and e["details"]["tool"] == "createAccount" for e in executed
    )


def test_with_the_rule_a_declined_account_is_never_opened(ruled, aws_stack):
    response_json(ruled.rpc("tools/call", {"name": "createAccount", "arguments": NEW}))
    store = ConfirmationStore(aws.dynamodb(), ruled.wallet_table)
    (pending,) = [c for c in store.of_user(DEMO_USER_ID) if c.status == "pending"]
    assert pending.operation.tool == "createAccount" and pending.operation.amount_minor == 25000
    assert store.decide(DEMO_USER_ID, pending.op_digest, "declined", now=int(time.time()))
    refused = ruled.call("createAccount", NEW)
    assert refused["isError"] and "Holiday fund" not in names(aws_stack)


def test_without_the_rule_an_account_opens_at_once(load_function, aws_stack, demo_wallet):
    token_fn, mcp = wallet_functions(load_function, aws_stack)
    session = Session(mcp, token(token_fn))
    opened = session.call("createAccount", NEW)
    assert not opened.get("isError"), opened
    assert "Holiday fund" in names(aws_stack)
