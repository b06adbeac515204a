"""Every MCP tool call audited (issue 18): user, client, grant, tool, the money arguments, the
decision and the result; kept as long as `ToolAuditRetentionSeconds` says; shown to the person on
/account and to an administrator on the client's /admin page. Each call's event is in the table
before its answer leaves (an instance reclaimed after answering loses nothing). And what it costs:
`tools/list` makes no AWS call, a read one `PutItem` (beside its own reads), a write two."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

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
from tests.support.faults import aws_fault
from wallet_mcp import aws
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.wallet.confirmations import ConfirmationStore
from wallet_mcp.wallet.store import WalletStore

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


def test_a_read_costs_one_put_item_a_write_two_and_the_catalog_none(fns, mcp, accounts, aws_stack):
    checking, savings = accounts["Everyday Checking"], accounts["Emergency Savings"]
    access = authorize_with(fns, scope=WRITES, only=(checking,))["access_token"]
    # warm: the keys, the revocation list, the connection log's "first call with this token"
    assert mcp_call(mcp, access, "tools/list").status == 200
    with counting_aws_calls() as calls:
        assert mcp_call(mcp, access, "tools/list").status == 200
    assert sum(calls.values()) == 0, calls
    with counting_aws_calls() as calls:
        for _ in range(3):
            assert "result" in tool(mcp, access, "getTotalBalance")
    # per read: the grant's limits (GetItem on the consent), the wallet's accounts (Query), its event
    assert calls == Counter({"GetItem": 3, "Query": 3, "PutItem": 3}), calls
    assert len(tool_calls(aws_stack)) == 3
    with counting_aws_calls() as calls:
        refused = tool(mcp, access, "getRecentTransactions", {"accountId": savings})
    assert refused["result"]["isError"]
    assert calls["PutItem"] == 2, calls  # expected "allowed", then what happened, under one key
    newest = tool_calls(aws_stack)[0]
    assert newest["details"]["tool"] == "getRecentTransactions"
    assert newest["details"]["decision"] == "refused" and newest["details"]["accountId"] == savings
    assert len(tool_calls(aws_stack)) == 4
    with counting_aws_calls() as calls:
        tool(mcp, access, "createTransaction", {**debit(checking), "amount": "12.00"})  # a credit
    assert calls["PutItem"] == 2 and "BatchWriteItem" not in calls, calls  # `started`, then what came of it
    assert tool_calls(aws_stack)[0]["details"]["decision"] == "allowed"
    assert len(tool_calls(aws_stack)) == 5


def test_a_reads_event_is_written_while_the_read_runs(fns, mcp, aws_stack):
    """Its PutItem starts before the tool's own Query has answered: the audit adds no round trip."""
    access = authorize_with(fns)["access_token"]
    assert mcp_call(mcp, access, "tools/list").status == 200
    spans: dict[str, list[float]] = {}
    original = BaseClient._make_api_call

    def timed(self: BaseClient, operation: str, params: Any) -> Any:
        started = time.monotonic()
        if operation == "Query":
            time.sleep(0.3)
        try:
            return original(self, operation, params)
        finally:
            spans[operation] = [started, time.monotonic()]

    BaseClient._make_api_call = timed  # type: ignore[method-assign]
    try:
        assert "result" in tool(mcp, access, "getTotalBalance")
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
    put_started, _ = spans["PutItem"]
    _, query_ended = spans["Query"]
    assert put_started < query_ended, spans
    assert len(tool_calls(aws_stack)) == 1


def test_a_read_whose_event_cannot_be_written_is_not_answered(fns, mcp, aws_stack):
    access = authorize_with(fns)["access_token"]
    assert mcp_call(mcp, access, "tools/list").status == 200  # the connection log's write done
    with aws_fault("dynamodb", "PutItem", "InternalServerError", status=500) as served:
        answer = tool(mcp, access, "getTotalBalance")["result"]
    assert served["count"] == 2  # the early write, then once more with the outcome
    assert answer["isError"] and "temporarily unavailable" in answer["content"][0]["text"]
    assert "structuredContent" not in answer and "$" not in answer["content"][0]["text"]
    assert tool_calls(aws_stack) == []
    assert "structuredContent" in tool(mcp, access, "getTotalBalance")["result"]  # and then it is


def test_a_write_runs_only_once_the_trail_has_it(fns, mcp, accounts, aws_stack):
    checking = accounts["Everyday Checking"]
    access = authorize_with(fns, scope=WRITES)["access_token"]
    assert mcp_call(mcp, access, "tools/list").status == 200
    store = WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    before = store.transactions(DEMO_USER_ID, limit=100).transactions
    with aws_fault("dynamodb", "PutItem", "InternalServerError", status=500) as served:
        answer = tool(mcp, access, "createTransaction", {**debit(checking), "amount": "12.00"})["result"]
    assert served["count"] == 1  # the `started` event, and nothing after it
    assert answer["isError"] and "nothing was changed" in answer["content"][0]["text"]
    assert store.transactions(DEMO_USER_ID, limit=100).transactions == before
    assert tool_calls(aws_stack) == []


def test_a_write_whose_outcome_cannot_be_written_still_says_what_it_did(fns, mcp, accounts, aws_stack):
    """The money moved in its own transaction: answering an error would invite a second movement.
    The trail keeps `started`: the call was made, what came of it is not recorded."""
    checking = accounts["Everyday Checking"]
    access = authorize_with(fns, scope=WRITES)["access_token"]
    assert mcp_call(mcp, access, "tools/list").status == 200
    puts = {"count": 0}
    original = BaseClient._make_api_call

    def second_put_fails(self: BaseClient, operation: str, params: Any) -> Any:
        if operation == "PutItem":
            puts["count"] += 1
            if puts["count"] == 2:
                raise ClientError(
                    {"Error": {"Code": "InternalServerError", "Message": "injected"}}, operation
                )
        return original(self, operation, params)

    BaseClient._make_api_call = second_put_fails  # type: ignore[method-assign]
    try:
        answer = tool(mcp, access, "createTransaction", {**debit(checking), "amount": "12.00"})["result"]
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
    assert not answer.get("isError") and "Recorded $12.00" in answer["content"][0]["text"]
    store = WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    assert store.transactions(DEMO_USER_ID, limit=1).transactions[0].amount == 1200
    (recorded,) = tool_calls(aws_stack)
    assert recorded["details"]["decision"] == "started" and recorded["details"]["amount"] == "12.00"


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


def test_a_read_is_in_the_audit_before_its_answer_even_if_the_instance_is_then_reclaimed(
    fns, load_function, aws_stack
):
    """Lambda freezes an instance after its answer and may discard it without running anything
    more: nothing buffered in it may be all there is of a call."""
    access = authorize_with(fns)["access_token"]
    instance = load_function("McpFunction")
    assert "result" in tool(instance, access, "getTotalBalance")
    del instance  # reclaimed: no further request, no flush
    (recorded,) = tool_calls(aws_stack)
    assert recorded["details"]["tool"] == "getTotalBalance"
    assert recorded["details"]["decision"] == "allowed"
    assert recorded["client_id"] == APP
    # a fresh instance starts with nothing of the old one's and adds only its own call
    tool(load_function("McpFunction"), access, "getUserAccounts")
    assert [e["details"]["tool"] for e in tool_calls(aws_stack)] == ["getUserAccounts", "getTotalBalance"]
