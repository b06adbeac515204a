"""Limits chosen at consent (issue 18): the accounts an app may see and use, its caps per
transaction and per day, what happens over a cap, and how long the grant lasts.

Each test tries to break one limit, over HTTP through the handlers: the person (the demo user)
authorizes an app on the real consent page with their choices, and the app calls /mcp and /api
with the tokens it got. The token carries only the grant: edits apply to the very next call."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from devstack.seed import DEMO_PASSWORD, DEMO_USER_ID, DEMO_USERNAME
from tests.conftest import BASE_URL, header, response_json, set_cookies
from tests.forms import parse
from tests.handlers.confirm_helpers import approve_pending
from tests.handlers.oauth_helpers import FORM, REDIRECT, VERIFIER, exchange, mcp_call, token_request
from tests.handlers.test_account import ORIGIN, sign_in
from wallet_mcp import aws
from wallet_mcp.primitives import pkce
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.consents import ConsentStore, Limits
from wallet_mcp.wallet.service import WalletService
from wallet_mcp.wallet.store import WalletStore

APP = "limited-app"
MCP = f"{BASE_URL}/mcp"
API = f"{BASE_URL}/api"
READS = "mcp:tools:list mcp:tools:call wallet:accounts:read wallet:transactions:read wallet:analytics:read"
WRITES = READS + " wallet:transactions:write"


def register_app(aws_stack, scope: str) -> None:
    """The limited app: a public client allowed `scope`."""
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id=APP,
            client_name="Limited App",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(REDIRECT,),
            scope=tuple(scope.split()),
            created_at=0,
        )
    )


def app_functions(load_function, aws_stack):
    """The limited app (a public client), and the functions it and the person use."""
    register_app(aws_stack, WRITES)
    return (
        load_function("AuthorizeFunction"),
        load_function("TokenFunction"),
        load_function("McpFunction"),
        load_function("WalletFunction"),
    )


def account_ids(aws_stack) -> dict[str, str]:
    """The demo user's accounts: name → id."""
    store = WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    return {a.name: a.account_id for a in store.accounts(DEMO_USER_ID)}


@pytest.fixture
def fns(load_function, aws_stack, demo_wallet):
    return app_functions(load_function, aws_stack)


@pytest.fixture
def accounts(aws_stack, demo_wallet) -> dict[str, str]:
    return account_ids(aws_stack)


def consent_page(authorize, scope: str, resource: str):
    query = {
        "response_type": "code",
        "client_id": APP,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "s",
        "code_challenge": pkce.s256(VERIFIER),
        "code_challenge_method": "S256",
        "resource": resource,
    }
    page = authorize.request("GET", "/oauth/authorize", query=urlencode(query))
    cookies = set_cookies(page)
    (form,), _ = parse(page.body.decode())
    login = {"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    shown = authorize.request(
        "POST", "/oauth/authorize", headers=FORM, body=urlencode(form.submission(login)), cookies=cookies
    )
    assert shown.status == 200, shown.body
    return shown, cookies | set_cookies(shown)


def authorize_with(
    fns, *, scope: str = READS, resource: str = MCP, only: tuple[str, ...] | None = None, **choices: str
) -> dict:
    """The person allows the app with these choices (`only`: the account ids left ticked); the
    app's token response."""
    authorize, token, _, _ = fns
    shown, cookies = consent_page(authorize, scope, resource)
    (form,), _ = parse(shown.body.decode())
    submission = form.submission(choices, button=("decision", "approve"))
    if only is not None:
        for name in [n for n in submission if n.startswith("account:")]:
            if name.removeprefix("account:") not in only:
                del submission[name]  # an unticked box is not sent
    done = authorize.request(
        "POST", "/oauth/authorize", headers=FORM, body=urlencode(submission), cookies=cookies
    )
    assert done.status == 303, done.body
    code = parse_qs(urlsplit(header(done, "location")).query)["code"][0]
    response = exchange(token, code, APP)
    assert response.status == 200, response.body
    return response_json(response)


def tool(mcp, access: str, name: str, arguments: dict | None = None) -> dict:
    response = mcp_call(mcp, access, "tools/call", {"name": name, "arguments": arguments or {}})
    assert response.status == 200, response.body
    return response_json(response)


def api(fn, access: str, method: str, path: str, body: dict | None = None):
    headers = {"authorization": f"Bearer {access}"}
    if body is not None:
        headers["content-type"] = "application/json"
    return fn.request(method, path, headers=headers, body=json.dumps(body) if body is not None else b"")


def debit(account_id: str, amount: str = "-10.00") -> dict:
    return {"accountId": account_id, "amount": amount, "category": "dining", "description": "Lunch"}


def api_debit(account_id: str, amount: str) -> dict:
    return {"account_id": account_id, "amount": amount, "category": "dining", "description": "Lunch"}


def consents(aws_stack) -> ConsentStore:
    return ConsentStore(aws.dynamodb(), aws_stack.physical_ids["ConsentsTable"])


# --- the page ------------------------------------------------------------------------------------


def test_the_consent_page_offers_accounts_and_for_writes_caps_and_a_duration(fns, accounts):
    authorize = fns[0]
    reading, _ = consent_page(authorize, READS, MCP)
    (form,), text = parse(reading.body.decode())
    assert {f"account:{i}" for i in accounts.values()} <= set(form.fields)
    assert "cap_per_transaction" not in form.fields  # no money moves: no caps to set
    assert "Everyday Checking" in text
    writing, _ = consent_page(authorize, WRITES, MCP)
    (form,), _ = parse(writing.body.decode())
    assert {"cap_per_transaction", "cap_per_day"} <= set(form.fields)
    assert 'name="over_cap"' in writing.body.decode() and 'name="duration"' in writing.body.decode()


def test_a_cap_that_is_not_an_amount_is_refused_and_nothing_is_granted(fns, aws_stack):
    authorize = fns[0]
    shown, cookies = consent_page(authorize, WRITES, MCP)
    (form,), _ = parse(shown.body.decode())
    bad = form.submission({"cap_per_transaction": "-5"}, button=("decision", "approve"))
    response = authorize.request(
        "POST", "/oauth/authorize", headers=FORM, body=urlencode(bad), cookies=cookies
    )
    assert response.status == 400
    assert consents(aws_stack).get(DEMO_USER_ID, APP) is None


def test_without_choices_the_app_sees_every_account_as_before(fns, accounts, aws_stack):
    tokens = authorize_with(fns)
    listed = tool(fns[2], tokens["access_token"], "getUserAccounts")["result"]["structuredContent"]
    assert {a["id"] for a in listed["accounts"]} == set(accounts.values())
    assert consents(aws_stack).get(DEMO_USER_ID, APP).limits == Limits()


# --- accounts ------------------------------------------------------------------------------------


def test_a_hidden_account_is_absent_from_every_read_on_mcp(fns, accounts):
    checking, savings = accounts["Everyday Checking"], accounts["Emergency Savings"]
    access = authorize_with(fns, only=(checking,))["access_token"]
    mcp = fns[2]
    listed = tool(mcp, access, "getUserAccounts")["result"]["structuredContent"]["accounts"]
    assert [a["id"] for a in listed] == [checking]
    balance = tool(mcp, access, "getTotalBalance")["result"]["structuredContent"]
    assert balance["accounts"] == 1
    assert balance["totals"] == [{"currency": "USD", "amount": listed[0]["balance"]}]
    recent = tool(mcp, access, "getRecentTransactions", {"limit": 100})["result"]["structuredContent"]
    assert recent["transactions"] and {t["account_id"] for t in recent["transactions"]} == {checking}
    asked = tool(mcp, access, "getRecentTransactions", {"accountId": savings})["result"]
    assert asked["isError"] and "no such account" in asked["content"][0]["text"]
    spending = tool(mcp, access, "getSpendingAnalytics", {"period": "last_12_months"})["result"]
    cash_only = [c for c in spending["structuredContent"]["categories"] if c["category"] == "dining"]
    assert sum(c["count"] for c in cash_only) >= 1  # checking's own dining, never the cash wallet's café
    read = response_json(mcp_call(mcp, access, "resources/read", {"uri": f"wallet://accounts/{savings}"}))
    assert "error" in read or read["result"].get("isError"), read


def test_the_spending_of_a_limited_app_counts_only_its_accounts(fns, accounts, aws_stack):
    cash = accounts["Cash Wallet"]
    store = WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    expected: dict[str, int] = {}
    for tx in store.transactions(DEMO_USER_ID, limit=100, account_id=cash).transactions:
        if tx.amount < 0 and tx.category != "transfer":
            expected[tx.category] = expected.get(tx.category, 0) - tx.amount
    assert expected  # the demo cash wallet has spending of its own
    access = authorize_with(fns, only=(cash,))["access_token"]
    spending = tool(fns[2], access, "getSpendingAnalytics", {"period": "last_12_months"})["result"]
    categories = spending["structuredContent"]["categories"]
    assert {c["category"]: c["spent_minor"] for c in categories} == expected


def test_a_hidden_account_is_absent_from_every_read_on_the_api(fns, accounts):
    checking, savings = accounts["Everyday Checking"], accounts["Emergency Savings"]
    access = authorize_with(fns, resource=API, only=(checking,))["access_token"]
    wallet = fns[3]
    listed = response_json(api(wallet, access, "GET", "/api/accounts"))["accounts"]
    assert [a["id"] for a in listed] == [checking]
    assert api(wallet, access, "GET", f"/api/accounts/{savings}").status == 404
    assert api(wallet, access, "GET", f"/api/accounts/{savings}/transactions").status == 404
    recent = response_json(api(wallet, access, "GET", "/api/transactions"))
    assert {t["account_id"] for t in recent["transactions"]} == {checking}


def test_a_debit_on_an_account_not_chosen_is_refused_on_both_surfaces(fns, accounts, aws_stack):
    checking, savings = accounts["Everyday Checking"], accounts["Emergency Savings"]
    store = WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    balance = store.account(DEMO_USER_ID, savings).balance
    tokens = authorize_with(fns, scope=WRITES, only=(checking,))
    refused = tool(fns[2], tokens["access_token"], "createTransaction", debit(savings))["result"]
    assert refused["isError"] and "accounts you chose" in refused["content"][0]["text"]
    api_access = authorize_with(fns, scope=WRITES, resource=API, only=(checking,))["access_token"]
    response = api(fns[3], api_access, "POST", "/api/transactions", api_debit(savings, "-1.00"))
    assert response.status == 403 and response_json(response)["error"] == "access_denied"
    assert store.account(DEMO_USER_ID, savings).balance == balance  # untouched


# --- caps ----------------------------------------------------------------------------------------


def test_a_debit_over_the_cap_per_transaction_is_refused_before_asking_anyone(fns, accounts, aws_stack):
    checking = accounts["Everyday Checking"]
    access = authorize_with(fns, scope=WRITES, cap_per_transaction="25")["access_token"]
    refused = tool(fns[2], access, "createTransaction", debit(checking, "-25.01"))
    assert refused["result"]["isError"], refused
    assert "over the limit of 25.00 USD per transaction" in refused["result"]["content"][0]["text"]
    assert approve_pending(aws_stack.physical_ids["WalletTable"]) == 0  # no confirmation was created
    within = response_json(
        mcp_call(
            fns[2], access, "tools/call", {"name": "createTransaction", "arguments": debit(checking, "-25")}
        )
    )
    assert within["error"]["code"] == -32042  # within the cap: the usual confirmation
    credit = tool(fns[2], access, "createTransaction", debit(checking, "100.00"))["result"]
    assert not credit.get("isError"), credit  # a credit moves no money out: no cap


def test_two_debits_that_together_pass_the_daily_cap_the_second_is_refused(fns, accounts, aws_stack):
    checking = accounts["Everyday Checking"]
    access = authorize_with(fns, scope=WRITES, resource=API, cap_per_day="100")["access_token"]
    wallet = fns[3]
    assert api(wallet, access, "POST", "/api/transactions", api_debit(checking, "-60.00")).status == 201
    second = api(wallet, access, "POST", "/api/transactions", api_debit(checking, "-40.01"))
    assert second.status == 403, second.body
    assert "per day" in response_json(second)["error_description"]
    assert api(wallet, access, "POST", "/api/transactions", api_debit(checking, "-40.00")).status == 201
    assert api(wallet, access, "POST", "/api/transactions", api_debit(checking, "-0.01")).status == 403


def test_the_daily_cap_counts_debits_made_through_mcp_too(fns, accounts, aws_stack):
    checking = accounts["Everyday Checking"]
    access = authorize_with(fns, scope=WRITES, cap_per_day="50")["access_token"]
    first = response_json(
        mcp_call(
            fns[2], access, "tools/call", {"name": "createTransaction", "arguments": debit(checking, "-30")}
        )
    )
    assert first["error"]["code"] == -32042
    assert approve_pending(aws_stack.physical_ids["WalletTable"]) == 1
    assert not tool(fns[2], access, "createTransaction", debit(checking, "-30"))["result"].get("isError")
    second = tool(fns[2], access, "createTransaction", debit(checking, "-30"))["result"]
    assert second["isError"] and "per day" in second["content"][0]["text"]


def test_over_a_cap_the_person_may_be_asked_instead(fns, accounts, aws_stack):
    checking = accounts["Everyday Checking"]
    access = authorize_with(fns, scope=WRITES, cap_per_transaction="25", over_cap="confirm")["access_token"]
    arguments = debit(checking, "-80")
    asked = response_json(
        mcp_call(fns[2], access, "tools/call", {"name": "createTransaction", "arguments": arguments})
    )
    assert asked["error"]["code"] == -32042  # the confirmation, not a refusal
    assert approve_pending(aws_stack.physical_ids["WalletTable"]) == 1
    done = tool(fns[2], access, "createTransaction", arguments)["result"]
    assert not done.get("isError"), done
    assert done["structuredContent"]["transaction"]["amount"] == "-80.00"


# --- edits and the grant's end -------------------------------------------------------------------


def test_an_edit_applies_to_the_next_call_with_the_same_token(fns, accounts, aws_stack):
    checking = accounts["Everyday Checking"]
    access = authorize_with(fns)["access_token"]
    before = tool(fns[2], access, "getUserAccounts")["result"]["structuredContent"]["accounts"]
    assert len(before) == 3
    assert consents(aws_stack).set_limits(
        DEMO_USER_ID, APP, Limits(accounts=(checking,)), now=int(time.time())
    )
    after = tool(fns[2], access, "getUserAccounts")["result"]["structuredContent"]["accounts"]
    assert [a["id"] for a in after] == [checking]


def test_a_grant_past_its_duration_is_refused_at_mcp_the_api_and_refresh(fns, aws_stack):
    mcp_tokens = authorize_with(fns, duration="1d")
    api_tokens = authorize_with(fns, resource=API, duration="30d")
    consent = consents(aws_stack).get(DEMO_USER_ID, APP)
    assert consent.limits.expires_at is not None
    assert abs(consent.limits.expires_at - (time.time() + 30 * 86400)) < 60
    assert tool(fns[2], mcp_tokens["access_token"], "getUserAccounts")["result"].get("isError") is not True
    ended = Limits(expires_at=int(time.time()) - 1)
    assert consents(aws_stack).set_limits(DEMO_USER_ID, APP, ended, now=int(time.time()))
    refused = mcp_call(
        fns[2], mcp_tokens["access_token"], "tools/call", {"name": "getUserAccounts", "arguments": {}}
    )
    assert refused.status == 401
    assert 'error="invalid_token"' in header(refused, "www-authenticate")
    assert "run out" in header(refused, "www-authenticate")
    assert api(fns[3], api_tokens["access_token"], "GET", "/api/accounts").status == 401
    refresh = token_request(
        fns[1],
        {"grant_type": "refresh_token", "refresh_token": mcp_tokens["refresh_token"], "client_id": APP},
    )
    assert refresh.status == 400 and response_json(refresh)["error"] == "invalid_grant"


# --- /account ------------------------------------------------------------------------------------


def test_the_person_sees_and_changes_the_limits_on_their_account_page(
    fns, accounts, load_function, aws_stack
):
    checking, cash = accounts["Everyday Checking"], accounts["Cash Wallet"]
    access = authorize_with(fns, scope=WRITES, cap_per_transaction="25")["access_token"]
    account = load_function("AccountFunction")
    _, cookies = sign_in(account)
    listed = account.request("GET", "/account", cookies=cookies).body.decode()
    assert "all accounts, at most 25 per payment, refused over a limit, until revoked" in listed
    assert "/account/limits?client_id=" + APP in listed
    page = account.request("GET", "/account/limits", query=urlencode({"client_id": APP}), cookies=cookies)
    assert page.status == 200
    (form,) = [f for f in parse(page.body.decode())[0] if f.action == "/account/limits"]
    assert form.fields["cap_per_transaction"] == "25"
    values = form.submission({"cap_per_transaction": "10"})
    for name in [n for n in values if n.startswith("account:") and n != f"account:{checking}"]:
        del values[name]
    # another site's form, or one without the session's CSRF token: refused, nothing changes
    foreign = {**FORM, "origin": "https://evil.example"}
    assert (
        account.request(
            "POST", "/account/limits", headers=foreign, body=urlencode(values), cookies=cookies
        ).status
        == 403
    )
    forged = {**values, "csrf_token": "forged"}
    assert (
        account.request(
            "POST", "/account/limits", headers={**FORM, **ORIGIN}, body=urlencode(forged), cookies=cookies
        ).status
        == 403
    )
    assert consents(aws_stack).get(DEMO_USER_ID, APP).limits.accounts is None
    saved = account.request(
        "POST", "/account/limits", headers={**FORM, **ORIGIN}, body=urlencode(values), cookies=cookies
    )
    assert saved.status == 303 and header(saved, "location") == "/account?done=limits"
    # the same token, the next call
    after = tool(fns[2], access, "getUserAccounts")["result"]["structuredContent"]["accounts"]
    assert [a["id"] for a in after] == [checking]
    over = tool(fns[2], access, "createTransaction", debit(checking, "-10.01"))["result"]
    assert over["isError"] and "10.00 USD per transaction" in over["content"][0]["text"]
    hidden = tool(fns[2], access, "createTransaction", debit(cash, "-1"))["result"]
    assert hidden["isError"] and "accounts you chose" in hidden["content"][0]["text"]
    events = [e for e in AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"]).of(DEMO_USER_ID)]
    changed = [e for e in events if e["event"] == "limits_changed"]
    assert changed and changed[0]["details"]["cap_per_transaction"] == "10"


def test_a_bad_cap_on_the_account_page_changes_nothing(fns, load_function, aws_stack):
    authorize_with(fns, scope=WRITES, cap_per_day="100")
    account = load_function("AccountFunction")
    _, cookies = sign_in(account)
    page = account.request("GET", "/account/limits", query=urlencode({"client_id": APP}), cookies=cookies)
    (form,) = [f for f in parse(page.body.decode())[0] if f.action == "/account/limits"]
    bad = form.submission({"cap_per_day": "lots"})
    response = account.request(
        "POST", "/account/limits", headers={**FORM, **ORIGIN}, body=urlencode(bad), cookies=cookies
    )
    assert response.status == 400
    assert consents(aws_stack).get(DEMO_USER_ID, APP).limits.cap_per_day == "100"
    unknown = account.request(
        "GET", "/account/limits", query=urlencode({"client_id": "nobody"}), cookies=cookies
    )
    assert unknown.status == 404


def test_allowing_reading_again_keeps_the_caps_set_for_payments(fns, aws_stack):
    authorize_with(fns, scope=WRITES, cap_per_day="100", over_cap="confirm")
    authorize_with(fns, scope=READS)  # the page for reading shows no caps: they stay
    limits = consents(aws_stack).get(DEMO_USER_ID, APP).limits
    assert (limits.cap_per_day, limits.over_cap) == ("100", "confirm")


# --- saved reports ---------------------------------------------------------------------------------


def test_a_limited_app_reads_only_saved_reports_of_accounts_it_may_see(fns, accounts, aws_stack):
    """A report saved with every account in it (by the person's other apps) would tell an app
    limited to some accounts the totals of the others: it is neither listed, read nor deleted."""
    checking = accounts["Everyday Checking"]
    store = WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    store.put_report(DEMO_USER_ID, "everything", "Everything", {"period": "this_month"}, int(time.time()))
    resources = " mcp:resources:read mcp:resources:write"
    register_app(aws_stack, WRITES + resources)
    access = authorize_with(fns, scope=READS + resources, only=(checking,))["access_token"]
    mcp = fns[2]
    saved = tool(mcp, access, "saveSpendingReport", {"name": "Mine", "period": "this_month"})["result"]
    assert not saved.get("isError"), saved

    def uris() -> set[str]:
        listed = response_json(mcp_call(mcp, access, "resources/list", {}))["result"]["resources"]
        return {r["uri"] for r in listed if r["uri"].startswith("wallet://reports/")}

    assert uris() == {"wallet://reports/mine"}
    mine = response_json(mcp_call(mcp, access, "resources/read", {"uri": "wallet://reports/mine"}))
    assert json.loads(mine["result"]["contents"][0]["text"])["name"] == "Mine"
    other = response_json(mcp_call(mcp, access, "resources/read", {"uri": "wallet://reports/everything"}))
    assert "error" in other, other
    deleted = tool(mcp, access, "deleteSpendingReport", {"slug": "everything"})["result"]
    assert deleted["isError"]
    assert store.report(DEMO_USER_ID, "everything") is not None
    # what the limited app saved is kept with the accounts it covers
    report = store.report(DEMO_USER_ID, "mine")
    assert report is not None and report[0].covers == (checking,)


def test_a_limited_apps_month_suggestions_come_from_its_accounts_alone(fns, accounts, aws_stack):
    """A prompt's month completion names the months with spending: for an app limited to some
    accounts, a month in which only another account spent would tell it that account's activity."""
    checking, savings = accounts["Everyday Checking"], accounts["Emergency Savings"]
    wallet = WalletService(WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"]))
    for account_id, when in ((savings, "2024-03-15T12:00:00Z"), (checking, "2024-05-02T09:30:00Z")):
        wallet.create_transaction(
            DEMO_USER_ID,
            account_id=account_id,
            amount="-25.00",
            category="shopping",
            description="Old purchase",
            occurred_at=when,
        )
    mcp = fns[2]

    def months(access: str, typed: str) -> list[str]:
        params = {
            "ref": {"type": "ref/prompt", "name": "monthly_spending_review"},
            "argument": {"name": "month", "value": typed},
        }
        return response_json(mcp_call(mcp, access, "completion/complete", params))["result"]["completion"][
            "values"
        ]

    everything = authorize_with(fns)["access_token"]
    assert months(everything, "2024") == ["2024-05", "2024-03"]
    limited = authorize_with(fns, only=(checking,))["access_token"]
    assert months(limited, "2024") == ["2024-05"]
    assert months(limited, "2024-0") == ["2024-05"]
    assert months(limited, "2024-03") == []
    recent = months(limited, "")
    assert "2024-03" not in recent and "2024-05" in recent
    assert recent == sorted(recent, reverse=True)
    assert months(authorize_with(fns, only=(savings,))["access_token"], "2024") == ["2024-03"]


def test_another_apps_idempotency_key_does_not_replay_an_account_the_app_may_not_see(
    fns, accounts, aws_stack
):
    """Idempotency keys are the person's: a limited app sending the key (and the request) another
    app used would be handed that app's account — its id and today's balance."""
    checking = accounts["Everyday Checking"]
    key = "open-travel-fund-0001"
    wallet = WalletService(WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"]))
    hidden = wallet.create_account(
        DEMO_USER_ID, name="Travel Fund", account_type="savings", currency="USD", idempotency_key=key
    )
    wallet.create_transaction(
        DEMO_USER_ID, account_id=hidden.account_id, amount="4321.00", category="income", description="Bonus"
    )
    writes = READS + " wallet:accounts:write"
    register_app(aws_stack, writes)
    access = authorize_with(fns, scope=writes, only=(checking,))["access_token"]
    same = {"name": "Travel Fund", "type": "savings", "currency": "USD", "idempotencyKey": key}
    opened = tool(fns[2], access, "createAccount", same)["result"]
    assert not opened.get("isError"), opened
    assert hidden.account_id not in json.dumps(opened) and "4321" not in json.dumps(opened)
    # the app's own retry with its key still replays its own account
    again = tool(fns[2], access, "createAccount", same)["result"]
    assert again["structuredContent"]["account"]["id"] == opened["structuredContent"]["account"]["id"]
    # and its own key with another request is a conflict, as ever
    other = tool(fns[2], access, "createAccount", {**same, "name": "Other", "idempotencyKey": key})["result"]
    assert other["isError"] and "idempotency" in other["content"][0]["text"]


def test_a_limited_apps_prompts_and_resources_show_its_accounts_alone(fns, accounts, aws_stack):
    """Beyond the tools: the prompts' texts, their argument suggestions and the resources (list,
    template completions, reads) of an app limited to the cash wallet name nothing of the others."""
    cash, checking = accounts["Cash Wallet"], accounts["Everyday Checking"]
    store = WalletStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    own = {t.description for t in store.transactions(DEMO_USER_ID, limit=100, account_id=cash).transactions}
    every = store.transactions(DEMO_USER_ID, limit=100).transactions
    others = [t for t in every if t.account_id != cash and t.description not in own]
    assert others
    resources = " mcp:resources:read"
    register_app(aws_stack, WRITES + resources)
    access = authorize_with(fns, scope=READS + resources, only=(cash,))["access_token"]
    mcp = fns[2]

    def result(method: str, params: dict) -> dict:
        answer = response_json(mcp_call(mcp, access, method, params))
        assert "result" in answer, answer
        return answer["result"]

    def error(method: str, params: dict) -> dict:
        answer = response_json(mcp_call(mcp, access, method, params))
        assert "error" in answer, answer
        return answer["error"]

    def prompt(name: str, arguments: dict) -> str:
        got = result("prompts/get", {"name": name, "arguments": arguments})
        return got["messages"][0]["content"]["text"]

    def complete(ref: dict, name: str, value: str = "") -> list[str]:
        params = {"ref": ref, "argument": {"name": name, "value": value}}
        return result("completion/complete", params)["completion"]["values"]

    hidden_names = ("Everyday Checking", "Emergency Savings")
    # account_activity: another account is not found, and the refusal lists only the app's own
    refused = error(
        "prompts/get", {"name": "account_activity", "arguments": {"account": "Everyday Checking"}}
    )
    assert refused["message"].endswith('your accounts: "Cash Wallet"'), refused
    activity = prompt("account_activity", {"account": "Cash Wallet"})
    assert not any(t.description in activity for t in others)
    # explain_transaction: another account's transaction is not among "your recent transactions"
    wanted = others[0]
    refused = error(
        "prompts/get", {"name": "explain_transaction", "arguments": {"transaction": wanted.transaction_id}}
    )
    assert wanted.description not in refused["message"]
    review = prompt("monthly_spending_review", {"month": "last_month"}) + prompt(
        "budget_check", {"limit": "100", "month": "last_month"}
    )
    assert not any(n in review for n in hidden_names)
    prompt_ref = {"type": "ref/prompt"}
    assert complete({**prompt_ref, "name": "account_activity"}, "account") == ["Cash Wallet"]
    suggested = complete({**prompt_ref, "name": "explain_transaction"}, "transaction")
    assert suggested and not any(t.description in suggested for t in others)
    # resources: listed, completed and read as the app's own
    listed = {r["uri"] for r in result("resources/list", {})["resources"]}
    assert f"wallet://accounts/{cash}" in listed and f"wallet://accounts/{checking}" not in listed
    assert complete({"type": "ref/resource", "uri": "wallet://accounts/{id}"}, "id") == [cash]
    everything = json.loads(result("resources/read", {"uri": "wallet://accounts"})["contents"][0]["text"])
    assert [a["id"] for a in everything["accounts"]] == [cash]
    recent = json.loads(
        result("resources/read", {"uri": "wallet://transactions/recent"})["contents"][0]["text"]
    )
    assert {t["account_id"] for t in recent["transactions"]} == {cash}
