"""The MCP endpoint under generated JSON-RPC traffic, with a valid token carrying every scope: never a
5xx, and the demo wallet changes only through an accepted createTransaction or createAccount (a tool
result with `isError: true`, a JSON-RPC error or a refused request writes nothing)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from devstack.seed import DEMO_USER_ID
from tests.conftest import BASE_URL
from tests.fuzz.gateway import demo_client_token, describe, json_or_none, send
from tests.fuzz.strategies import (
    FORM,
    FUZZ,
    LONE_SURROGATES,
    chance,
    dumps,
    from_schema,
    header_text,
    json_values,
    mostly,
    nested,
    odd_text,
)
from wallet_mcp import aws
from wallet_mcp.mcp_server.catalog import build_registry
from wallet_mcp.mcp_server.wallet_tools import wallet_tools
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.wallet.store import WalletStore, encode_cursor

pytestmark = pytest.mark.fuzz

LONE = "@@lone-surrogate@@"
TOKEN = "@@token@@"
ACCOUNTS = ("@@account-0@@", "@@account-1@@", "@@account-2@@")
"""Placeholders: the strategies run before the fixtures, so the token and the demo user's account ids
are put in when the request is sent."""
TOOLS = {
    spec.name: spec.definition().input_schema
    for spec in build_registry(wallet_tools(None, None, None))  # type: ignore[arg-type]  # schemas only
}
"""Each tool's input schema, exactly as `tools/list` serves it."""
WRITING_TOOLS = {"createTransaction", "createAccount"}
METHODS = [
    "tools/list",
    "resources/read",
    "resources/list",
    "resources/templates/list",
    "initialize",
    "ping",
    "notifications/initialized",
    "prompts/list",
    "server/discover",
    "completion/complete",
    "logging/setLevel",
    "tools/call/",
    "TOOLS/CALL",
    "",
    "rpc.discover",
]
PROTOCOL_VERSIONS = [
    "2025-11-25",
    "2025-06-18",
    "2025-03-26",
    "2024-11-05",
    "2026-07-28",
    "2099-01-01",
    "",
    "x",
]
VALID: dict[str, list[Any]] = {
    "accountId": list(ACCOUNTS),
    "amount": ["-12.34", "5", "-0.01", "250.00", -7, 3, 0.1],
    "openingBalance": ["0", "250.00", "-5", 100, 0.3],
    "currency": ["USD", "EUR"],
    "occurredAt": [None, "2026-11-20T12:30:00Z", "2026-11-20", "2026-11-20T12:30:00+05:30"],
    "description": ["Coffee", "Rent — Nov", "Ünïcødé ✓", "  padded  "],
    "name": ["Holiday fund", "Q4 spending", "Épargne"],
    "period": ["this_month", "last_12_months", "2026-11", "2025-12..2026-11"],
    "idempotencyKey": [None, None, "retry-key-0001", "retry-key-0002"],
    "limit": [1, 10, 100],
    "cursor": [None, encode_cursor("TX#9999999999999#z")],
    "slug": ["q4-spending"],
}
"""Values each tool accepts, so that a generated call can succeed (and, for the creates, write)."""
INVALID: dict[str, list[Any]] = {
    "accountId": ["nope", "", "x" * 65],
    "amount": ["0", "-0", "1e3", "12.345", "-999999999.99", "1,000", "NaN", "١٢", 1e-7, 2**63, True],
    "openingBalance": ["1.5", "1e12", "١٢", "12.345"],
    "currency": ["XYZ", "usd", "US", "JPY"],
    "occurredAt": [
        "yesterday",
        "2090-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2026-11-20T12:30:00+25:00",
        "1970-01-01T00:00:00Z",
    ],
    "description": ["", "   ", "\x00\x07", "x" * 201],
    "name": ["", "\u202e", "x" * 65],
    "period": ["2026-13", "1969-01..2026-01", "2020-01..2035-01", "0000-01", "9999-12..9999-12", "forever"],
    "idempotencyKey": ["short", "has space here", "k" * 129],
    "limit": [0, 101, -1, "10", 10.0],
    "cursor": ["forged", "c1.", "c1.VFgjMDAwMDAwMDAwMDAwMCN4", "c1.%%%"],
    "slug": ["../x", "x" * 65],
}
PLAUSIBLE = {
    name: mostly(
        st.sampled_from(VALID[name]), st.one_of(st.sampled_from(INVALID[name]), odd_text()), one_in=3
    )
    for name in VALID
}


@dataclass(frozen=True)
class WalletState:
    balances: tuple[tuple[str, int], ...]
    accounts: int
    transactions: int


def wallet_state(stack) -> WalletState:
    store = WalletStore(aws.dynamodb(), stack.physical_ids["WalletTable"])
    totals: dict[str, int] = {}
    accounts = store.accounts(DEMO_USER_ID)
    for account in accounts:
        totals[account.currency] = totals.get(account.currency, 0) + account.balance
    count, start = 0, None
    while True:
        page = aws.dynamodb().query(
            TableName=stack.physical_ids["WalletTable"],
            KeyConditionExpression="pk = :pk AND begins_with(sk, :tx)",
            ExpressionAttributeValues={":pk": {"S": f"USER#{DEMO_USER_ID}"}, ":tx": {"S": "TX#"}},
            Select="COUNT",
            **({"ExclusiveStartKey": start} if start else {}),
        )
        count += page["Count"]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    return WalletState(tuple(sorted(totals.items())), len(accounts), count)


@dataclass(frozen=True)
class Demo:
    token: str
    account_ids: tuple[str, ...]

    def fill(self, text: str) -> str:
        for placeholder, account_id in zip(ACCOUNTS, self.account_ids, strict=True):
            text = text.replace(placeholder, account_id)
        return text.replace(TOKEN, self.token)


@dataclass(frozen=True)
class McpRequest:
    body: bytes
    headers: tuple[tuple[str, str], ...]


@pytest.fixture
def mcp_fn(load_function):
    return load_function("McpFunction")


@pytest.fixture
def demo(load_function, aws_stack, demo_wallet) -> Demo:
    token = demo_client_token(load_function("TokenFunction"), " ".join(SUPPORTED_SCOPES))
    store = WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    return Demo(token, tuple(a.account_id for a in store.accounts(DEMO_USER_ID)))


@st.composite
def tool_arguments(draw: st.DrawFn, name: str) -> Any:
    """Arguments valid for the tool's schema, then made plausible (real account ids, real-looking
    amounts) or broken one field at a time; sometimes anything at all."""
    schema = TOOLS.get(name)
    kind = draw(mostly(mostly(st.just("valid"), st.just("mutated"), one_in=2), st.just("anything")))
    if schema is None or kind == "anything":
        return draw(json_values)
    arguments = draw(from_schema(schema))
    known = set(VALID) & set(schema.get("properties", {}))
    for field in sorted(known | set(arguments)):
        if field in known and (kind == "valid" or not draw(chance(4))):
            arguments[field] = draw(st.sampled_from(VALID[field]) if kind == "valid" else PLAUSIBLE[field])
    arguments = {k: v for k, v in arguments.items() if v is not None or k not in schema.get("required", ())}
    if kind == "valid":
        return arguments
    for _ in range(draw(mostly(st.just(0), st.integers(1, 2), one_in=3))):
        op = draw(st.sampled_from(["set", "drop", "extra"]))
        if op == "extra" or not arguments:
            arguments[draw(odd_text(12))] = draw(json_values)
        else:
            field = draw(st.sampled_from(sorted(arguments)))
            if op == "drop":
                del arguments[field]
            else:
                arguments[field] = draw(st.one_of(json_values, st.just(f"x{LONE}"), odd_text()))
    return arguments


@st.composite
def messages(draw: st.DrawFn) -> Any:
    method = draw(mostly(st.sampled_from(METHODS), odd_text(20)))
    if not draw(chance(3)):
        method = "tools/call"  # two calls in three: the tools are where the wallet is
    message: dict[str, Any] = {"jsonrpc": draw(mostly(st.just("2.0"), st.sampled_from(["1.0", 2.0, None])))}
    ident = draw(
        mostly(
            st.one_of(st.integers(-(2**63), 2**63), st.text(max_size=8)),
            st.sampled_from([None, [1], {"a": 1}, 1.5, "absent"]),
        )
    )
    if ident != "absent":
        message["id"] = ident
    message["method"] = method
    if method == "tools/call":
        name = draw(mostly(st.sampled_from([*TOOLS, *sorted(WRITING_TOOLS) * 3]), odd_text(20)))
        params: Any = {"name": name, "arguments": draw(tool_arguments(name))}
        if draw(chance(20)):
            params = draw(st.one_of(json_values, st.just({"name": name}), st.just({"arguments": {}})))
    elif method == "resources/read":
        uri = st.sampled_from(
            [
                "wallet://accounts",
                f"wallet://accounts/{ACCOUNTS[0]}",
                "wallet://accounts/nope",
                "wallet://transactions/recent",
                "wallet://reports/q4",
                "wallet://accounts/../reports/x",
                "file:///etc/passwd",
                "",
                f"wallet://reports/{LONE}",
            ]
        )
        params = {"uri": draw(st.one_of(uri, odd_text(), json_values))}
    elif method == "initialize":
        params = {
            "protocolVersion": draw(st.one_of(st.sampled_from(PROTOCOL_VERSIONS), json_values)),
            "capabilities": draw(st.one_of(st.just({}), json_values)),
            "clientInfo": draw(st.one_of(st.just({"name": "fuzz", "version": "1"}), json_values)),
        }
    else:
        params = draw(
            st.one_of(
                st.none(), json_values, st.just({"cursor": "x"}), st.just({"_meta": {"progressToken": 1}})
            )
        )
    if params is not None:
        message["params"] = params
    return message


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(mostly(st.just("message"), st.sampled_from(["batch", "any", "nested", "broken", "huge"])))
    if kind == "nested":
        return nested(draw(st.sampled_from([100, 990, 1200, 5000]))).encode()
    if kind == "broken":
        return draw(
            st.sampled_from([b"{", b"", b"\xff\xfe", b'{"jsonrpc":"2.0","id":1,"method":"ping"', b"null"])
        )
    if kind == "huge":
        return dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "x" * (1024 * 1024)}}
        ).encode()
    if kind == "any":
        value = draw(json_values)
    elif kind == "batch":
        value = draw(st.lists(messages(), min_size=0, max_size=3))
    else:
        value = draw(messages())
    return dumps(value).replace(LONE, draw(st.sampled_from(LONE_SURROGATES))).encode()


ACCEPT = mostly(
    st.just("application/json, text/event-stream"),
    st.sampled_from(["application/json", "text/event-stream", "*/*", "text/html", "", None]),
)
CONTENT_TYPES = mostly(
    st.just("application/json"),
    st.sampled_from(["application/json; charset=utf-8", "text/plain", FORM, "", None]),
)


@st.composite
def headers(draw: st.DrawFn) -> list[tuple[str, str]]:
    found = [("authorization", f"Bearer {TOKEN}")]
    for name, values in (("accept", ACCEPT), ("content-type", CONTENT_TYPES)):
        value = draw(values)
        if value is not None:
            found.append((name, value))
    version = draw(
        mostly(
            st.just("2025-11-25"), st.one_of(st.sampled_from(PROTOCOL_VERSIONS), st.none(), header_text(12))
        )
    )
    if version is not None:
        found.append(("mcp-protocol-version", version))
    if draw(chance(10)):
        origin = draw(
            st.one_of(st.sampled_from([BASE_URL, "https://evil.example.com", "null"]), header_text())
        )
        found.append(("origin", origin))
    if draw(chance(20)):
        found.append(("mcp-session-id", draw(header_text(20))))
    return found


STANDARD_HEADERS = (
    ("authorization", f"Bearer {TOKEN}"),
    ("content-type", "application/json"),
    ("accept", "application/json, text/event-stream"),
    ("mcp-protocol-version", "2025-11-25"),
)
mcp_requests = st.builds(McpRequest, body=bodies(), headers=headers().map(tuple))


def results(answer: Any) -> list[dict[str, Any]]:
    """The JSON-RPC responses in an answer (one, or a batch)."""
    replies = answer if isinstance(answer, list) else [answer]
    return [r for r in replies if isinstance(r, dict)]


def accepted_writes(answer: Any) -> tuple[list[dict[str, Any]], int]:
    """Transactions recorded and accounts opened, as the tool results report them."""
    transactions, accounts = [], 0
    for reply in results(answer):
        result = reply.get("result")
        if not isinstance(result, dict) or result.get("isError") is not False:
            continue
        structured = result.get("structuredContent") or {}
        if "transaction" in structured:
            transactions.append(structured["transaction"])
        elif set(structured) == {"account"}:
            accounts += 1
    return transactions, accounts


def summary(body: bytes, status: int, answer: Any) -> str:
    """`<method or tool> -> <status> <outcome>`, for the statistics of a run."""
    try:
        sent = json.loads(body)
    except (ValueError, RecursionError):
        sent = None
    what = str(sent.get("method"))[:25] if isinstance(sent, dict) else type(sent).__name__
    if what == "tools/call" and isinstance(sent.get("params"), dict):
        what = f"call {str(sent['params'].get('name'))[:20]}"
    codes = [r["error"].get("code") for r in results(answer) if isinstance(r.get("error"), dict)]
    tool_error = any(
        isinstance(r.get("result"), dict) and r["result"].get("isError") for r in results(answer)
    )
    return f"{what} -> {status} {f'rpc error {codes[0]}' if codes else 'tool error' if tool_error else ''}"


@example(  # nesting deeper than Python's recursion limit: RecursionError out of json.loads
    McpRequest(body=nested(5000).encode(), headers=STANDARD_HEADERS)
)
@settings(FUZZ, max_examples=300)
@given(mcp_requests)
def test_mcp_is_never_a_5xx_and_writes_only_through_accepted_creates(mcp_fn, aws_stack, demo, request):
    body = demo.fill(request.body.decode("latin-1")).encode("latin-1")  # any bytes, placeholders filled
    sent_headers = [(name, demo.fill(value)) for name, value in request.headers]
    before = wallet_state(aws_stack)
    response = send(mcp_fn, "POST", "/mcp", headers=sent_headers, body=body)
    after = wallet_state(aws_stack)
    answer = json_or_none(response)
    event(summary(body, response.status, answer))
    assert response.status < 500, describe(response)
    # -32603 is the SDK's answer to an exception in a handler: a crash behind a 200
    assert -32603 not in [
        r["error"].get("code") for r in results(answer) if isinstance(r.get("error"), dict)
    ], describe(response)

    transactions, accounts = accepted_writes(answer) if response.status == 200 else ([], 0)
    if not transactions and not accounts:
        assert after == before, (describe(response), before, after)
        return
    assert after.transactions - before.transactions <= len(transactions), (describe(response), before, after)
    assert after.accounts - before.accounts <= accounts, (describe(response), before, after)
    if len(transactions) == 1 and not accounts and after.transactions == before.transactions + 1:
        tx = transactions[0]
        expected = dict(before.balances)
        expected[tx["currency"]] = expected.get(tx["currency"], 0) + tx["amount_minor"]
        assert dict(after.balances) == expected, (describe(response), before, after)
