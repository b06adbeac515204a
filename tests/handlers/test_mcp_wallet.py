"""The wallet tools and resources through the MCP function's handler."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from tests.conftest import header, response_json
from tests.handlers.mcp_session import Session, token, wallet_functions

CONTRACT_TOOLS = [
    "ping",
    "getTotalBalance",
    "getUserAccounts",
    "getRecentTransactions",
    "createAccount",
    "createTransaction",
    "getSpendingAnalytics",
]


@pytest.fixture
def fns(load_function, aws_stack, demo_wallet):
    return wallet_functions(load_function, aws_stack)


@pytest.fixture
def demo(fns):
    token_fn, mcp_fn = fns
    return Session(mcp_fn, token(token_fn))


def balance(session) -> str:
    return session.call("getTotalBalance")["content"][0]["text"]


def count_transactions(session) -> int:
    return len(session.transactions())


def test_tools_list_is_deterministic_and_complete(demo):
    first = response_json(demo.rpc("tools/list"))["result"]["tools"]
    second = response_json(demo.rpc("tools/list"))["result"]["tools"]
    assert first == second
    names = [t["name"] for t in first]
    assert names[: len(CONTRACT_TOOLS)] == CONTRACT_TOOLS
    for tool in first:
        assert tool["inputSchema"]["type"] == "object"
        assert "readOnlyHint" in tool["annotations"]
    hints = {t["name"]: t["annotations"] for t in first}
    assert hints["getTotalBalance"]["readOnlyHint"] is True
    assert hints["createTransaction"]["readOnlyHint"] is False
    assert hints["createTransaction"]["destructiveHint"] is False


def _union_types(schema, where="$"):
    """Places where `type` is a list: Ajv's strict mode (the MCP Inspector's validator) refuses
    them (`strictTypes`); `anyOf` says the same in a form every validator takes."""
    found = []
    if isinstance(schema, dict):
        if isinstance(schema.get("type"), list):
            found.append(where)
        for key, value in schema.items():
            found += _union_types(value, f"{where}.{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found += _union_types(value, f"{where}[{index}]")
    return found


def test_every_schema_is_valid_and_takes_strict_validators(demo):
    for tool in response_json(demo.rpc("tools/list"))["result"]["tools"]:
        for name in ("inputSchema", "outputSchema"):
            schema = tool.get(name)
            if schema is None:
                continue
            Draft202012Validator.check_schema(schema)
            assert _union_types(schema) == [], (tool["name"], name)


def test_get_total_balance_answers_the_contract_text(demo):
    result = demo.call("getTotalBalance")
    assert result["content"][0]["text"] == (
        "💰 Total Balance: $5,432.10\nAccounts: 3\nRetrieved with OAuth scope: wallet:accounts:read"
    )
    assert result["structuredContent"]["totals"] == [{"currency": "USD", "amount": "5432.10"}]


def test_accounts_and_recent_transactions_match_the_seed(demo):
    accounts = demo.call("getUserAccounts")["structuredContent"]["accounts"]
    assert sorted(a["name"] for a in accounts) == ["Cash Wallet", "Emergency Savings", "Everyday Checking"]
    assert sum(a["balance_minor"] for a in accounts) == 543210
    recent = demo.call("getRecentTransactions", {"limit": 5})
    txs = recent["structuredContent"]["transactions"]
    assert len(txs) == 5
    assert [t["occurred_at"] for t in txs] == sorted((t["occurred_at"] for t in txs), reverse=True)
    assert txs[0]["description"] == "Local grocer"
    assert recent["structuredContent"]["next_cursor"]
    assert count_transactions(demo) == 32
    checking = next(a for a in accounts if a["name"] == "Cash Wallet")
    only_cash = demo.call("getRecentTransactions", {"limit": 100, "accountId": checking["id"]})
    assert {t["account_id"] for t in only_cash["structuredContent"]["transactions"]} == {checking["id"]}
    assert len(only_cash["structuredContent"]["transactions"]) == 5


def test_create_transaction_changes_the_total_balance(demo):
    account = demo.call("getUserAccounts")["structuredContent"]["accounts"][0]
    result = demo.confirmed(
        "createTransaction",
        {"accountId": account["id"], "amount": "-12.10", "category": "dining", "description": "Lunch"},
    )
    assert not result["isError"], result
    assert result["structuredContent"]["transaction"]["amount"] == "-12.10"
    assert balance(demo).startswith("💰 Total Balance: $5,420.00\n")
    assert count_transactions(demo) == 33


def test_a_retried_create_with_the_same_key_never_duplicates(demo):
    account = demo.call("getUserAccounts")["structuredContent"]["accounts"][0]
    arguments = {
        "accountId": account["id"],
        "amount": -5,
        "category": "dining",
        "description": "Coffee",
        "idempotencyKey": "retry-key-0001",
    }
    first = demo.confirmed("createTransaction", arguments)
    # the confirmation is spent; retried with the same key, the person is asked again, and the
    # approved retry replays the first transaction instead of recording a second one
    second = demo.call("createTransaction", arguments)
    assert second["isError"] and "already used" in second["content"][0]["text"]
    third = demo.confirmed("createTransaction", arguments)
    assert first["structuredContent"]["transaction"]["id"] == third["structuredContent"]["transaction"]["id"]
    assert balance(demo).startswith("💰 Total Balance: $5,427.10\n")
    conflict = demo.confirmed("createTransaction", {**arguments, "amount": "-6"})
    assert conflict["isError"] and "idempotency key" in conflict["content"][0]["text"]


def test_create_account_and_spending_analytics(demo):
    created = demo.call(
        "createAccount",
        {"name": "Holiday fund", "type": "savings", "currency": "EUR", "openingBalance": "250.00"},
    )
    assert not created["isError"], created
    assert created["structuredContent"]["account"]["currency"] == "EUR"
    assert balance(demo) == (
        "💰 Total Balance: €250.00 + $5,432.10\nAccounts: 4\nRetrieved with OAuth scope: wallet:accounts:read"
    )
    spending = demo.call("getSpendingAnalytics", {"period": "last_3_months"})["structuredContent"]
    by_category = {c["category"]: c for c in spending["categories"]}
    assert by_category["housing"]["spent"] == "3300.00"
    assert "transfer" not in by_category and "income" not in by_category


BAD_INPUTS = [
    ("createTransaction", {"amount": "-1", "category": "dining", "description": "x"}),  # no account
    ("createTransaction", {"accountId": "nope", "amount": "-1", "category": "dining", "description": "x"}),
    (
        "createTransaction",
        {"accountId": "{acct}", "amount": "-1", "category": "gambling", "description": "x"},
    ),
    ("createTransaction", {"accountId": "{acct}", "amount": "0", "category": "dining", "description": "x"}),
    (
        "createTransaction",
        {"accountId": "{acct}", "amount": "-1.001", "category": "dining", "description": "x"},
    ),
    (
        "createTransaction",
        {"accountId": "{acct}", "amount": "-99999999999", "category": "dining", "description": "x"},
    ),
    (
        "createTransaction",
        {"accountId": "{acct}", "amount": "1e12", "category": "dining", "description": "x"},
    ),
    ("createTransaction", {"accountId": "{acct}", "amount": "NaN", "category": "dining", "description": "x"}),
    ("createTransaction", {"accountId": "{acct}", "amount": True, "category": "dining", "description": "x"}),
    (
        "createTransaction",
        {"accountId": "{acct}", "amount": "-1", "category": "dining", "description": "x" * 201},
    ),
    (
        "createTransaction",
        {"accountId": "{acct}", "amount": "-1", "category": "dining", "description": "   "},
    ),
    (
        "createTransaction",
        {
            "accountId": "{acct}",
            "amount": "-1",
            "category": "dining",
            "description": "x",
            "occurredAt": "yesterday",
        },
    ),
    (
        "createTransaction",
        {
            "accountId": "{acct}",
            "amount": "-1",
            "category": "dining",
            "description": "x",
            "occurredAt": "2090-01-01",
        },
    ),
    (
        "createTransaction",
        {"accountId": "{acct}", "amount": "-1", "category": "dining", "description": "x", "x": 1},
    ),
    ("createAccount", {"name": "x", "type": "savings", "currency": "XYZ"}),
    ("createAccount", {"name": "x", "type": "savings", "currency": "usd"}),
    ("createAccount", {"name": "x", "type": "piggy_bank"}),
    ("createAccount", {"name": "x" * 65, "type": "savings"}),
    ("createAccount", {"name": ["x"], "type": "savings"}),
    ("createAccount", {"name": "x", "type": "savings", "openingBalance": "12.345"}),
    ("getRecentTransactions", {"limit": 0}),
    ("getRecentTransactions", {"limit": 1000}),
    ("getRecentTransactions", {"limit": "10"}),
    ("getRecentTransactions", {"cursor": "forged"}),
    ("getRecentTransactions", {"accountId": "not-mine"}),
    ("getSpendingAnalytics", {"period": "forever"}),
    ("getSpendingAnalytics", {"period": "2026-13"}),
]


@pytest.mark.parametrize(("tool", "arguments"), BAD_INPUTS)
def test_bad_input_is_a_clear_tool_error_and_writes_nothing(demo, tool, arguments):
    account = demo.call("getUserAccounts")["structuredContent"]["accounts"][0]["id"]
    arguments = {k: (account if v == "{acct}" else v) for k, v in arguments.items()}
    before = balance(demo)
    result = demo.call(tool, arguments)
    assert result["isError"] is True
    assert result["content"][0]["text"]
    assert balance(demo) == before
    assert count_transactions(demo) == 32
    assert len(demo.call("getUserAccounts")["structuredContent"]["accounts"]) == 3


def test_a_missing_write_scope_is_a_step_up_challenge(fns):
    token_fn, mcp_fn = fns
    session = Session(mcp_fn, token(token_fn, scope="mcp:tools:list mcp:tools:call wallet:accounts:read"))
    response = session.rpc(
        "tools/call", {"name": "createAccount", "arguments": {"name": "x", "type": "cash"}}
    )
    assert response.status == 403
    challenge = header(response, "www-authenticate")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="mcp:tools:list mcp:tools:call wallet:accounts:read wallet:accounts:write"' in challenge
    assert "needs scope: mcp:tools:call wallet:accounts:write" in challenge
    assert "resource_metadata=" in challenge


def test_another_users_token_never_sees_the_demo_wallet(fns, demo):
    token_fn, mcp_fn = fns
    other = Session(mcp_fn, token(token_fn, client=("other-users-client", "other-secret")))
    demo_account = demo.call("getUserAccounts")["structuredContent"]["accounts"][0]["id"]
    assert other.call("getTotalBalance")["content"][0]["text"].startswith(
        "💰 Total Balance: $0.00\nAccounts: 0"
    )
    assert other.call("getUserAccounts")["structuredContent"]["accounts"] == []
    assert other.call("getRecentTransactions")["structuredContent"]["transactions"] == []
    assert (
        other.call("getSpendingAnalytics", {"period": "last_12_months"})["structuredContent"]["categories"]
        == []
    )
    stolen = other.call(
        "createTransaction",
        {"accountId": demo_account, "amount": "-100", "category": "other", "description": "x"},
    )
    assert stolen["isError"] and "no such account" in stolen["content"][0]["text"]
    assert other.call("getRecentTransactions", {"accountId": demo_account})["isError"]
    demo_cursor = demo.call("getRecentTransactions", {"limit": 1})["structuredContent"]["next_cursor"]
    assert (
        other.call("getRecentTransactions", {"cursor": demo_cursor})["structuredContent"]["transactions"]
        == []
    )
    read = other.rpc("resources/read", {"uri": f"wallet://accounts/{demo_account}"})
    assert "error" in response_json(read)
    listed = response_json(other.rpc("resources/list"))["result"]["resources"]
    assert demo_account not in json.dumps(listed)
    assert balance(demo).startswith("💰 Total Balance: $5,432.10")


def test_a_client_without_a_wallet_owner_gets_a_clear_403(fns):
    token_fn, mcp_fn = fns
    session = Session(mcp_fn, token(token_fn, client=("ownerless-client", "other-secret")))
    response = session.rpc("tools/call", {"name": "getTotalBalance", "arguments": {}})
    assert response.status == 403
    assert response_json(response)["error"] == "access_denied"
    assert "owner" in response_json(response)["error_description"]
    assert session.call("ping")["isError"] is False  # no wallet involved


def test_resources_list_and_read(demo):
    listed = response_json(demo.rpc("resources/list"))["result"]["resources"]
    uris = [r["uri"] for r in listed]
    assert "wallet://accounts" in uris and "wallet://transactions/recent" in uris
    assert sum(u.startswith("wallet://accounts/") for u in uris) == 3
    templates = response_json(demo.rpc("resources/templates/list"))["result"]["resourceTemplates"]
    assert {t["uriTemplate"] for t in templates} == {"wallet://accounts/{id}", "wallet://reports/{slug}"}
    accounts = json.loads(
        response_json(demo.rpc("resources/read", {"uri": "wallet://accounts"}))["result"]["contents"][0][
            "text"
        ]
    )
    assert len(accounts["accounts"]) == 3
    one = next(u for u in uris if u.startswith("wallet://accounts/"))
    content = response_json(demo.rpc("resources/read", {"uri": one}))["result"]["contents"][0]
    assert content["mimeType"] == "application/json" and json.loads(content["text"])["currency"] == "USD"
    recent = json.loads(
        response_json(demo.rpc("resources/read", {"uri": "wallet://transactions/recent"}))["result"][
            "contents"
        ][0]["text"]
    )
    assert len(recent["transactions"]) == 20
    missing = response_json(demo.rpc("resources/read", {"uri": "wallet://accounts/nope"}))
    assert missing["error"]["code"] == -32002


def test_resources_need_the_resource_scope_and_the_data_scope(fns):
    token_fn, mcp_fn = fns
    session = Session(mcp_fn, token(token_fn, scope="mcp:resources:read"))
    response = session.rpc("resources/read", {"uri": "wallet://transactions/recent"})
    assert response.status == 403
    assert 'scope="mcp:resources:read wallet:transactions:read"' in header(response, "www-authenticate")
    no_resources = Session(mcp_fn, token(token_fn, scope="mcp:tools:call wallet:accounts:read"))
    assert no_resources.rpc("resources/list").status == 403


def test_saved_reports_are_resources_governed_by_mcp_resources_write(fns, demo):
    token_fn, mcp_fn = fns
    reader = Session(mcp_fn, token(token_fn, scope="mcp:tools:call wallet:analytics:read"))
    response = reader.rpc(
        "tools/call", {"name": "saveSpendingReport", "arguments": {"name": "Q4", "period": "last_3_months"}}
    )
    assert response.status == 403
    assert "mcp:resources:write" in header(response, "www-authenticate")
    saved = demo.call("saveSpendingReport", {"name": "Q4 spending", "period": "last_3_months"})
    assert saved["structuredContent"]["uri"] == "wallet://reports/q4-spending"
    listed = [r["uri"] for r in response_json(demo.rpc("resources/list"))["result"]["resources"]]
    assert "wallet://reports/q4-spending" in listed
    report = json.loads(
        response_json(demo.rpc("resources/read", {"uri": "wallet://reports/q4-spending"}))["result"][
            "contents"
        ][0]["text"]
    )
    assert report["name"] == "Q4 spending" and report["categories"]
    assert demo.call("deleteSpendingReport", {"slug": "q4-spending"})["isError"] is False
    assert demo.call("deleteSpendingReport", {"slug": "q4-spending"})["isError"] is True
