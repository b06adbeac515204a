"""Every MCP tool call audited (issue 18): user, client, grant, tool, the money arguments, the
decision and the result; kept as long as `ToolAuditRetentionSeconds` says; shown to the person on
/account and to an administrator on the client's /admin page. And what it costs: `tools/list`
makes no AWS call, a read makes none for the audit until 25 are waiting, a write makes one."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.client import BaseClient

from devstack.seed import DEMO_USER_ID
from tests.conftest import response_json, with_parameters
from tests.handlers.confirm_helpers import approve_pending
from tests.handlers.oauth_helpers import mcp_call
from tests.handlers.test_account import sign_in
from tests.handlers.test_grant_limits import (
    APP,
    READS,
    WRITES,
    account_ids,
    app_functions,
    authorize_with,
    debit,
    tool,
)
from wallet_mcp import aws
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.wallet.confirmations import ConfirmationStore

DAY = 86400


def tool_calls(aws_stack) -> list[dict[str, Any]]:
    log = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"])
    return log.of(DEMO_USER_ID, limit=200, event="tool_called")


def raw_items(aws_stack) -> list[dict[str, Any]]:
    response = aws.dynamodb().scan(TableName=aws_stack.physical_ids["AuditTable"])
    return [i for i in response["Items"] if i["event"]["S"] == "tool_called"]


@contextmanager
def counting_aws_calls() -> Iterator[Counter[str]]:
    """Every AWS API call made meanwhile, by operation name."""
    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counted(self: BaseClient, operation: str, params: Any) -> Any:
        calls[operation] += 1
        return original(self, operation, params)

    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


@pytest.fixture
def fns(load_function, aws_stack, demo_wallet):
    return app_functions(load_function, aws_stack)


@pytest.fixture
def accounts(aws_stack, demo_wallet) -> dict[str, str]:
    return account_ids(aws_stack)


@pytest.fixture
def mcp(load_function, aws_stack):
    """The MCP function, keeping tool-call records for one day."""
    return load_function("McpFunction", with_parameters(aws_stack, ToolAuditRetentionSeconds=str(DAY)))


def test_each_decision_is_recorded_with_who_what_and_the_money(fns, mcp, accounts, aws_stack):
    checking, savings = accounts["Everyday Checking"], accounts["Emergency Savings"]
    access = authorize_with(fns, scope=WRITES, only=(checking,), cap_per_transaction="50")["access_token"]
    assert tool(mcp, access, "getUserAccounts")["result"]["structuredContent"]  # allowed (a read)
    tool(mcp, access, "createTransaction", debit(checking, "-50.01"))  # over the cap
    tool(mcp, access, "createTransaction", debit(savings, "-1"))  # an account not chosen
    asked = response_json(
        mcp_call(
            mcp, access, "tools/call", {"name": "createTransaction", "arguments": debit(checking, "-20")}
        )
    )
    assert asked["error"]["code"] == -32042
    assert approve_pending(aws_stack.physical_ids["WalletTable"]) == 1
    tool(mcp, access, "createTransaction", debit(checking, "-20"))  # confirmed
    response_json(
        mcp_call(mcp, access, "tools/call", {"name": "createTransaction", "arguments": debit(checking, "-7")})
    )
    store = ConfirmationStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    (pending,) = [c for c in store.of_user(DEMO_USER_ID) if c.status == "pending"]
    assert store.decide(DEMO_USER_ID, pending.op_digest, "declined", now=int(time.time()))
    tool(mcp, access, "createTransaction", debit(checking, "-7"))  # declined
    reader = authorize_with(fns, scope=READS)["access_token"]
    refused = mcp_call(mcp, reader, "tools/call", {"name": "createTransaction", "arguments": debit(checking)})
    assert refused.status == 403  # no wallet:transactions:write

    recorded = list(reversed(tool_calls(aws_stack)))
    decisions = [(e["details"]["tool"], e["details"]["decision"]) for e in recorded]
    assert decisions == [
        ("getUserAccounts", "allowed"),
        ("createTransaction", "refused_cap_per_transaction"),
        ("createTransaction", "refused_account"),
        ("createTransaction", "asked"),
        ("createTransaction", "confirmed"),
        ("createTransaction", "asked"),
        ("createTransaction", "declined"),
        ("createTransaction", "refused_scope"),
    ]
    over = recorded[1]
    assert over["client_id"] == APP
    assert over["details"]["accountId"] == checking and over["details"]["amount"] == "-50.01"
    assert over["details"]["grant"] == f"{DEMO_USER_ID}/{APP}"
    assert "per transaction" in over["details"]["result"]
    assert "Recorded -$20.00" in recorded[4]["details"]["result"]
    # kept as long as the parameter says
    for item in raw_items(aws_stack):
        kept = int(item["expires_at"]["N"]) - int(item["at"]["S"].split("#")[0]) // 1000
        assert DAY - 5 <= kept <= DAY


def test_reads_are_batched_and_the_catalog_makes_no_aws_call(fns, mcp, aws_stack):
    access = authorize_with(fns)["access_token"]
    # warm: the keys, the revocation list, the connection log's "first call with this token"
    assert mcp_call(mcp, access, "tools/list").status == 200
    with counting_aws_calls() as calls:
        assert mcp_call(mcp, access, "tools/list").status == 200
    assert sum(calls.values()) == 0, calls
    with counting_aws_calls() as calls:
        for _ in range(24):
            assert "result" in tool(mcp, access, "getTotalBalance")
    assert "BatchWriteItem" not in calls and "PutItem" not in calls, calls
    # per read: the grant's limits (GetItem on the consent) and the wallet's accounts (Query)
    assert calls["GetItem"] == 24 and calls["Query"] == 24, calls
    assert tool_calls(aws_stack) == []
    with counting_aws_calls() as calls:
        tool(mcp, access, "getTotalBalance")  # the 25th: the batch is written
    assert calls["BatchWriteItem"] == 1, calls
    assert len(tool_calls(aws_stack)) == 25


def test_the_person_and_the_administrator_see_the_calls(fns, mcp, accounts, load_function, aws_stack):
    checking = accounts["Everyday Checking"]
    access = authorize_with(fns, scope=WRITES, cap_per_transaction="5")["access_token"]
    tool(mcp, access, "createTransaction", debit(checking, "-9.99"))
    account = load_function("AccountFunction")
    _, cookies = sign_in(account)  # the demo user is an administrator too
    page = account.request("GET", "/account", cookies=cookies).body.decode()
    assert "Activity of your apps" in page
    assert "Limited App" in page and "over your limit per payment" in page and "-9.99" in page
    admin = account.request("GET", "/admin/client", query=f"client_id={APP}", cookies=cookies).body.decode()
    assert "Tool calls" in admin and DEMO_USER_ID in admin and "over your limit per payment" in admin
