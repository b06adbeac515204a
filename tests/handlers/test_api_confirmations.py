"""The wallet API's debits wait for the person (`ConfirmApiDebits`, issue 18): 403
`confirmation_required` with the URL of our confirmation page and the operation's id, nothing
recorded; the same request after the person approved records it exactly once; a decline, a used
approval or other arguments record nothing; machine clients only when an administrator allows."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode, urlsplit

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USER_ID
from tests.conftest import BASE_URL, response_json, with_parameters
from tests.handlers.confirm_helpers import allow_debits, approve_pending
from tests.handlers.test_account import sign_in
from tests.handlers.test_grant_limits import API, WRITES, account_ids, api, app_functions, authorize_with
from wallet_mcp import aws
from wallet_mcp.wallet.confirmations import ConfirmationStore
from wallet_mcp.wallet.store import WalletStore


@pytest.fixture
def fns(load_function, aws_stack, demo_wallet):
    authorize, token, mcp, _ = app_functions(load_function, aws_stack)
    wallet = load_function("WalletFunction", with_parameters(aws_stack, ConfirmApiDebits="true"))
    return authorize, token, mcp, wallet


@pytest.fixture
def checking(aws_stack, demo_wallet) -> str:
    return account_ids(aws_stack)["Everyday Checking"]


def body(amount: str, account_id: str) -> dict:
    return {"account_id": account_id, "amount": amount, "category": "dining", "description": "Dinner"}


def balance(aws_stack, account_id: str) -> int:
    store = WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    account = store.account(DEMO_USER_ID, account_id)
    assert account is not None
    return account.balance


def test_a_debit_waits_for_the_person_then_is_recorded_once(fns, checking, load_function, aws_stack):
    access = authorize_with(fns, scope=WRITES, resource=API)["access_token"]
    before = balance(aws_stack, checking)
    asked = api(fns[3], access, "POST", "/api/transactions", body("-42.00", checking))
    assert asked.status == 403, asked.body
    answer = response_json(asked)
    assert answer["error"] == "confirmation_required"
    url = urlsplit(answer["confirmation_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{BASE_URL}/account/confirm"
    assert url.query == f"op={answer['operation_id']}"
    assert balance(aws_stack, checking) == before
    # the person sees it on their own page, signed in
    account = load_function("AccountFunction")
    _, cookies = sign_in(account)
    page = account.request("GET", "/account/confirm", query=url.query, cookies=cookies)
    assert page.status == 200 and "$42.00" in page.body.decode()
    assert approve_pending(aws_stack.physical_ids["WalletTable"]) == 1
    done = api(fns[3], access, "POST", "/api/transactions", body("-42.00", checking))
    assert done.status == 201, done.body
    assert balance(aws_stack, checking) == before - 4200
    replay = api(fns[3], access, "POST", "/api/transactions", body("-42.00", checking))
    assert replay.status == 403 and response_json(replay)["error"] == "access_denied"  # used once
    assert balance(aws_stack, checking) == before - 4200


def test_a_declined_or_changed_debit_records_nothing(fns, checking, aws_stack):
    access = authorize_with(fns, scope=WRITES, resource=API)["access_token"]
    before = balance(aws_stack, checking)
    assert api(fns[3], access, "POST", "/api/transactions", body("-5.00", checking)).status == 403
    assert approve_pending(aws_stack.physical_ids["WalletTable"]) == 1
    changed = api(fns[3], access, "POST", "/api/transactions", body("-500.00", checking))
    assert response_json(changed)["error"] == "confirmation_required"  # other arguments: asked anew
    store = ConfirmationStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    (pending,) = [c for c in store.of_user(DEMO_USER_ID) if c.status == "pending"]
    assert store.decide(DEMO_USER_ID, pending.op_digest, "declined", now=int(time.time()))
    declined = api(fns[3], access, "POST", "/api/transactions", body("-500.00", checking))
    assert declined.status == 403 and response_json(declined)["error"] == "access_denied"
    assert balance(aws_stack, checking) == before
    credit = api(fns[3], access, "POST", "/api/transactions", body("15.00", checking))
    assert credit.status == 201  # a credit moves no money out


def test_over_a_cap_the_api_refuses_or_asks_as_the_person_chose(fns, checking):
    refuse = authorize_with(fns, scope=WRITES, resource=API, cap_per_transaction="10")["access_token"]
    refused = api(fns[3], refuse, "POST", "/api/transactions", body("-10.01", checking))
    assert refused.status == 403 and "per transaction" in response_json(refused)["error_description"]
    ask = authorize_with(fns, scope=WRITES, resource=API, cap_per_transaction="10", over_cap="confirm")
    asked = api(fns[3], ask["access_token"], "POST", "/api/transactions", body("-10.01", checking))
    assert response_json(asked)["error"] == "confirmation_required"


def test_a_machine_client_pays_only_when_an_administrator_allows_it(fns, checking, aws_stack):
    issued = fns[1].request(
        "POST",
        "/oauth/token",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "scope": "wallet:transactions:write",
                "resource": API,
            }
        ),
    )
    access = response_json(issued)["access_token"]
    refused = api(fns[3], access, "POST", "/api/transactions", body("-1.00", checking))
    assert refused.status == 403 and "client credentials" in response_json(refused)["error_description"]
    allow_debits(aws_stack.physical_ids["ClientsTable"])
    asked = api(fns[3], access, "POST", "/api/transactions", body("-1.00", checking))
    assert response_json(asked)["error"] == "confirmation_required"


def test_the_retry_may_name_the_operation_and_only_its_own(fns, checking, aws_stack):
    access = authorize_with(fns, scope=WRITES, resource=API)["access_token"]
    asked = response_json(api(fns[3], access, "POST", "/api/transactions", body("-3.00", checking)))
    assert approve_pending(aws_stack.physical_ids["WalletTable"]) == 1
    named = {"confirmation-id": asked["operation_id"]}
    # the approved operation named with other arguments: refused, nothing recorded, still usable
    other = api_with(fns[3], access, body("-30.00", checking), named)
    assert other.status == 403 and "differ" in response_json(other)["error_description"]
    unknown = api_with(fns[3], access, body("-3.00", checking), {"confirmation-id": "op_" + "A" * 43})
    assert unknown.status == 403 and response_json(unknown)["error"] == "access_denied"
    done = api_with(fns[3], access, body("-3.00", checking), named)
    assert done.status == 201, done.body


def api_with(fn, access: str, payload: dict, headers: dict[str, str]):
    return fn.request(
        "POST",
        "/api/transactions",
        headers={"authorization": f"Bearer {access}", "content-type": "application/json", **headers},
        body=json.dumps(payload),
    )
