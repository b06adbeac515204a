"""The wallet API against its own OpenAPI document, with schemathesis: cases generated from the document
the WalletFunction serves (`GET /api/openapi.json`), sent through the real Lambda handler with a token
carrying every wallet scope. No 5xx, statuses and bodies as documented, and a request that is not
answered 2xx leaves the demo wallet as it was (balance and transaction count, read through the API)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests
import schemathesis
from hypothesis import event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import BASE_URL
from tests.fuzz.gateway import demo_client_token, describe, json_or_none, send
from tests.fuzz.strategies import FUZZ

pytestmark = pytest.mark.fuzz

WALLET_SCOPES = (
    "wallet:accounts:read wallet:accounts:write wallet:transactions:read wallet:transactions:write "
    "wallet:analytics:read"
)
OPERATIONS = (
    "GET /api/balance",
    "GET /api/accounts",
    "GET /api/accounts/{account_id}",
    "POST /api/accounts",
    "GET /api/transactions",
    "GET /api/accounts/{account_id}/transactions",
    "POST /api/transactions",
    "GET /api/analytics/spending",
)
"""Every operation of the document (checked below), one test each: schemathesis's lazy pytest loader
(`schemathesis.pytest.from_fixture`) does not run under the installed pytest 9 (it reads
`request.node._nodeid`), so the cases are drawn from each operation's strategy here."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def wallet_api(load_function, demo_wallet):
    return load_function("WalletFunction")


@pytest.fixture
def api_token(load_function) -> str:
    return demo_client_token(load_function("TokenFunction"), WALLET_SCOPES, f"{BASE_URL}/api")


@pytest.fixture
def wallet_schema(wallet_api) -> schemathesis.BaseSchema:
    """The document the function serves, as schemathesis reads it."""
    response = send(wallet_api, "GET", "/api/openapi.json")
    assert response.status == 200, describe(response)
    return schemathesis.openapi.from_dict(json.loads(response.body))


def wallet_state(api, token: str) -> tuple[Any, int]:
    """The demo wallet's totals and its number of transactions, through the API itself."""
    auth = [("authorization", f"Bearer {token}")]
    balance = json_or_none(send(api, "GET", "/api/balance", headers=auth))
    count, cursor = 0, None
    while True:
        query = "limit=100" + (f"&cursor={quote(cursor)}" if cursor else "")
        page = json_or_none(send(api, "GET", "/api/transactions", headers=auth, query=query))
        count += len(page["transactions"])
        cursor = page["next_cursor"]
        if not cursor:
            return balance["totals"], count


def as_request(
    case: schemathesis.Case,
    token: str,
    account_id: str | None,
    amount: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[str, str, list[tuple[str, str]], bytes, str]:
    """What the generated case says to send: method, path, headers, body and query.

    With `account_id`, the case's account (path, query or body), currency and (given) amount are made
    real, so that generated writes can succeed: schemathesis cannot know the ids of existing accounts.
    `idempotency_key` replaces the generated header (`""` drops it), so that each write is a new one
    rather than a replay of an earlier generated key."""
    path_parameters = dict(case.path_parameters or {})
    case_body, case_query = case.body, dict(case.query or {})
    if account_id is not None:
        if "account_id" in path_parameters:
            path_parameters["account_id"] = account_id
        if "account_id" in case_query:
            case_query["account_id"] = account_id
        if isinstance(case_body, dict):
            case_body = dict(case_body)
            if "account_id" in case_body:
                case_body["account_id"] = account_id
            if "currency" in case_body:
                case_body["currency"] = "EUR"
            if "amount" in case_body and amount is not None:
                case_body["amount"] = amount
    path = case.path
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    replaced = {"authorization", "idempotency-key"} if idempotency_key is not None else {"authorization"}
    headers = [(k, str(v)) for k, v in (case.headers or {}).items() if k.lower() not in replaced]
    if idempotency_key:
        headers.append(("idempotency-key", idempotency_key))
    headers.append(("authorization", f"Bearer {token}"))
    body = b""
    if case_body is not NOT_SET:
        body = json.dumps(case_body).encode() if not isinstance(case_body, bytes) else case_body
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("content-type", case.media_type or "application/json"))
    query = urlencode(
        [
            (k, "" if v is None else str(v))
            for k, vs in case_query.items()
            for v in (vs if isinstance(vs, list) else [vs])
        ]
    )
    return case.method.upper(), path, headers, body, query


def as_schemathesis_response(
    method, path, headers, body, query, response, elapsed: float
) -> schemathesis.Response:
    prepared = requests.Request(
        method, f"{BASE_URL}{path}" + (f"?{query}" if query else ""), headers=dict(headers), data=body
    ).prepare()
    grouped: dict[str, list[str]] = {}
    for name, value in response.headers:
        grouped.setdefault(name, []).append(value)
    return schemathesis.Response(
        status_code=response.status,
        headers=grouped,
        content=response.body,
        request=prepared,
        elapsed=elapsed,
        verify=True,
    )


def test_every_documented_operation_is_fuzzed(wallet_schema):
    documented = {op.ok().label for op in wallet_schema.get_all_operations()}
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_the_wallet_api_keeps_its_documented_contract(wallet_schema, wallet_api, api_token, label):
    method, path = label.split(" ", 1)
    operation = wallet_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    last = [wallet_state(wallet_api, api_token)]  # nothing else writes: the state after the previous case
    accounts = json_or_none(
        send(wallet_api, "GET", "/api/accounts", headers=[("authorization", f"Bearer {api_token}")])
    )
    account_ids = [a["id"] for a in accounts["accounts"]]

    @settings(FUZZ, max_examples=30)
    @given(
        case=cases,
        account_id=st.one_of(st.none(), st.sampled_from(account_ids)),
        amount=st.sampled_from([None, "-12.34", "100", "-0.5"]),
        key=st.sampled_from([None, "", "", "fuzz-key-0001"]),
    )
    def keeps_the_contract(
        case: schemathesis.Case, account_id: str | None, amount: str | None, key: str | None
    ) -> None:
        method, path, headers, body, query = as_request(case, api_token, account_id, amount, key)
        started = time.monotonic()
        response = send(wallet_api, method, path, headers=headers, body=body, query=query)
        elapsed = time.monotonic() - started
        now = wallet_state(wallet_api, api_token)
        previous, last[0] = last[0], now
        event(f"{response.status}")
        assert response.status < 500, describe(response)
        case.validate_response(
            as_schemathesis_response(method, path, headers, body, query, response, elapsed), checks=CHECKS
        )
        if not 200 <= response.status < 300:
            assert now == previous, describe(response)

    keeps_the_contract()
