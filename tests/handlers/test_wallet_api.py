"""The wallet Backend API through its real Lambda handler, with tokens from the real token endpoint:
every route against the seed, the bearer challenges, one user's wallet out of another's reach, bad
input refused before anything is written, idempotent creates, and the OpenAPI document."""

import json
import time
import uuid
from collections import Counter
from decimal import Decimal
from urllib.parse import quote

import pytest

from devstack.seed import DEMO_ACCOUNTS, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TRANSACTIONS, DEMO_USER_ID
from tests.conftest import BASE_URL, header, response_json
from wallet_mcp import aws
from wallet_mcp.api import routes, schemas
from wallet_mcp.credentials import opaque
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.tokens.access_tokens import access_token_claims, issue_access_token
from wallet_mcp.tokens.signer import KmsJwtSigner

API = f"{BASE_URL}/api"
PRM = f"{BASE_URL}/.well-known/oauth-protected-resource/api"
FORM = {"content-type": "application/x-www-form-urlencoded"}
WALLET_SCOPES = (
    "wallet:accounts:read wallet:accounts:write wallet:transactions:read wallet:transactions:write "
    "wallet:analytics:read"
)
OTHER_USER_ID = "3f6c2f0e-0000-4000-8000-000000000002"
OTHER_CLIENT_ID, OTHER_CLIENT_SECRET = "other-user-client", "other-secret-456"
OWNERLESS_CLIENT_ID, OWNERLESS_CLIENT_SECRET = "ownerless-client", "ownerless-secret-789"

# (method, path, the scope it needs); `{account}` is replaced by one of the demo user's account ids
ROUTES = [
    ("GET", "/api/balance", "wallet:accounts:read"),
    ("GET", "/api/accounts", "wallet:accounts:read"),
    ("GET", "/api/accounts/{account}", "wallet:accounts:read"),
    ("POST", "/api/accounts", "wallet:accounts:write"),
    ("GET", "/api/transactions", "wallet:transactions:read"),
    ("GET", "/api/accounts/{account}/transactions", "wallet:transactions:read"),
    ("POST", "/api/transactions", "wallet:transactions:write"),
    ("GET", "/api/analytics/spending", "wallet:analytics:read"),
]


# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def token_fn(load_function):
    return load_function("TokenFunction")


@pytest.fixture
def api(load_function, token_fn, demo_wallet):
    return load_function("WalletFunction")


@pytest.fixture
def clients(aws_stack):
    return ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])


def get_token(token_fn, *, scope=WALLET_SCOPES, resource=API, client=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)):
    body = f"grant_type=client_credentials&client_id={client[0]}&client_secret={client[1]}&scope={scope}"
    if resource:
        body += f"&resource={resource}"
    response = token_fn.request("POST", "/oauth/token", headers=FORM, body=body)
    assert response.status == 200, response.body
    return response_json(response)["access_token"]


@pytest.fixture
def token(token_fn):
    return get_token(token_fn)


def add_client(clients, client_id, secret, owner):
    clients.put(
        ClientRecord(
            client_id=client_id,
            client_name=client_id,
            token_endpoint_auth_method="client_secret_post",
            client_secret_hash=opaque.digest(secret),
            grant_types=("client_credentials",),
            redirect_uris=(),
            scope=tuple(WALLET_SCOPES.split()),
            created_at=int(time.time()),
            owner_user_id=owner,
        )
    )


@pytest.fixture
def other_token(token_fn, clients):
    """A client-credentials token acting on a second user's (empty) wallet."""
    add_client(clients, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, OTHER_USER_ID)
    return get_token(token_fn, client=(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET))


def call(api, method, path, token=None, *, body=None, query="", headers=None):
    hdrs = dict(headers or {})
    if token:
        hdrs["authorization"] = f"Bearer {token}"
    if body is not None and not isinstance(body, str | bytes):
        body = json.dumps(body)
    if body is not None:
        hdrs.setdefault("content-type", "application/json")
    return api.request(method, path, headers=hdrs, body=body if body is not None else b"", query=query)


def ok(response, status=200):
    assert response.status == status, response.body
    assert header(response, "cache-control") == "no-store"
    return response_json(response)


def refused(response, status, error):
    assert response.status == status, response.body
    assert header(response, "cache-control") == "no-store"
    body = response_json(response)
    assert body["error"] == error, body
    assert set(body) == {"error", "error_description"}
    return body["error_description"]


def accounts_by_name(api, token):
    return {a["name"]: a for a in ok(call(api, "GET", "/api/accounts", token))["accounts"]}


def all_transactions(api, token, path="/api/transactions", limit=100, extra=""):
    """Every page, following the cursor."""
    found, cursor = [], None
    while True:
        query = f"limit={limit}{extra}" + (f"&cursor={quote(cursor)}" if cursor else "")
        page = ok(call(api, "GET", path, token, query=query))
        schemas.TransactionsOut.model_validate(page)
        assert len(page["transactions"]) <= limit
        found.extend(page["transactions"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def demo_state(api, token):
    """The demo wallet's total balance and number of transactions."""
    balance = ok(call(api, "GET", "/api/balance", token))
    return balance["totals"][0]["amount"], len(all_transactions(api, token))


SEEDED = ("5432.10", len(DEMO_TRANSACTIONS))


def a_transaction(account_id, **changes):
    return {
        "account_id": account_id,
        "amount": "-12.34",
        "category": "groceries",
        "description": "Corner shop",
        **changes,
    }


# --- the routes against the seed ------------------------------------------------------------------


def test_the_balance_totals_the_seeded_wallet(api, token):
    body = ok(call(api, "GET", "/api/balance", token))
    schemas.BalanceOut.model_validate(body)
    assert body == {
        "totals": [
            {"currency": "USD", "amount": "5432.10", "amount_minor": 543210, "formatted": "$5,432.10"}
        ],
        "accounts": 3,
    }


def test_the_accounts_are_listed_and_each_is_readable_by_id(api, token):
    listed = ok(call(api, "GET", "/api/accounts", token))
    schemas.AccountsOut.model_validate(listed)
    expected = {name: (kind, final) for _, name, kind, final in DEMO_ACCOUNTS}
    assert {a["name"]: (a["type"], a["balance"]) for a in listed["accounts"]} == expected
    assert sum(Decimal(a["balance"]) for a in listed["accounts"]) == Decimal("5432.10")
    for account in listed["accounts"]:
        assert account["balance_minor"] == int(Decimal(account["balance"]) * 100)
        one = ok(call(api, "GET", f"/api/accounts/{account['id']}", token))
        schemas.AccountOut.model_validate(one)
        assert one == account


@pytest.mark.parametrize("account_id", ["0c8c92fe-50ef-4fc1-ae15-a48c90f1d404", "not-an-id!", "x" * 300])
def test_an_unknown_account_is_404(api, token, account_id):
    assert refused(call(api, "GET", f"/api/accounts/{quote(account_id)}", token), 404, "not_found")


def test_transactions_page_newest_first_with_the_cursor_without_gaps_or_duplicates(api, token):
    everything = ok(call(api, "GET", "/api/transactions", token, query="limit=100"))
    assert everything["next_cursor"] is None
    assert len(everything["transactions"]) == len(DEMO_TRANSACTIONS) == 32
    paged = all_transactions(api, token, limit=5)
    assert [t["id"] for t in paged] == [t["id"] for t in everything["transactions"]]
    assert len({t["id"] for t in paged}) == 32
    moments = [t["occurred_at"] for t in paged]
    assert moments == sorted(moments, reverse=True)
    first = ok(call(api, "GET", "/api/transactions", token))  # default page size
    assert len(first["transactions"]) == 20
    assert first["next_cursor"]
    newest = paged[0]
    assert (newest["description"], newest["amount"], newest["amount_minor"]) == (
        "Local grocer",
        "-38.45",
        -3845,
    )


def test_an_accounts_transactions_are_listed_by_account(api, token):
    accounts = accounts_by_name(api, token)
    seeded = Counter(key for key, *_ in DEMO_TRANSACTIONS)
    for key, name, _, _ in DEMO_ACCOUNTS:
        account_id = accounts[name]["id"]
        by_path = all_transactions(api, token, f"/api/accounts/{account_id}/transactions", limit=3)
        by_query = all_transactions(api, token, extra=f"&account_id={account_id}", limit=4)
        assert len(by_path) == seeded[key]
        assert [t["id"] for t in by_path] == [t["id"] for t in by_query]
        assert {t["account_id"] for t in by_path} == {account_id}
        assert len({t["id"] for t in by_path}) == len(by_path)


def test_spending_is_grouped_by_category_without_transfers_or_income(api, token):
    body = ok(call(api, "GET", "/api/analytics/spending", token, query="period=last_3_months"))
    schemas.SpendingOut.model_validate(body)
    expected: dict[str, list[Decimal | int]] = {}
    for _, _, amount, category, _ in DEMO_TRANSACTIONS:
        if Decimal(amount) < 0 and category != "transfer":
            entry = expected.setdefault(category, [Decimal(0), 0])
            entry[0] -= Decimal(amount)
            entry[1] += 1
    got = {c["category"]: [Decimal(c["spent"]), c["count"]] for c in body["categories"]}
    assert got == expected
    assert all(c["currency"] == "USD" for c in body["categories"])
    assert all(c["spent_minor"] == int(Decimal(c["spent"]) * 100) for c in body["categories"])
    spent = [c["spent_minor"] for c in body["categories"]]
    assert spent == sorted(spent, reverse=True)
    total = sum(v[0] for v in expected.values())
    count = sum(v[1] for v in expected.values())
    assert body["totals"] == [
        {"currency": "USD", "spent": f"{total:.2f}", "spent_minor": int(total * 100), "count": count}
    ]


def test_spending_defaults_to_this_month(api, token):
    body = ok(call(api, "GET", "/api/analytics/spending", token))
    this_month = time.strftime("%Y-%m", time.gmtime())
    assert body["period"] == {"first_month": this_month, "last_month": this_month}


def test_create_account_opens_it_with_its_balance(api, token):
    created = call(
        api,
        "POST",
        "/api/accounts",
        token,
        body={"name": "Holiday Fund", "type": "savings", "currency": "USD", "opening_balance": "100.50"},
    )
    account = ok(created, 201)
    schemas.AccountOut.model_validate(account)
    assert (account["name"], account["balance"], account["balance_minor"]) == (
        "Holiday Fund",
        "100.50",
        10050,
    )
    assert header(created, "location") == f"/api/accounts/{account['id']}"
    assert ok(call(api, "GET", f"/api/accounts/{account['id']}", token)) == account
    balance = ok(call(api, "GET", "/api/balance", token))
    assert (balance["totals"][0]["amount"], balance["accounts"]) == ("5532.60", 4)


def test_the_opening_balance_defaults_to_zero_and_other_currencies_total_apart(api, token):
    body = {"name": "Tokyo cash", "type": "cash", "currency": "JPY"}
    account = ok(call(api, "POST", "/api/accounts", token, body=body), 201)
    assert (account["balance"], account["balance_minor"]) == ("0", 0)
    tx = a_transaction(account["id"], amount="1200", category="income", description="Refund")
    ok(call(api, "POST", "/api/transactions", token, body=tx), 201)
    totals = ok(call(api, "GET", "/api/balance", token))["totals"]
    assert totals == [
        {"currency": "JPY", "amount": "1200", "amount_minor": 1200, "formatted": "¥1,200"},
        {"currency": "USD", "amount": "5432.10", "amount_minor": 543210, "formatted": "$5,432.10"},
    ]


def groceries_this_month(api, token):
    categories = ok(call(api, "GET", "/api/analytics/spending", token))["categories"]
    found = [(c["spent_minor"], c["count"]) for c in categories if c["category"] == "groceries"]
    return found[0] if found else (0, 0)


def test_create_transaction_changes_the_balance(api, token):
    checking = accounts_by_name(api, token)["Everyday Checking"]
    spent, count = groceries_this_month(api, token)
    created = ok(call(api, "POST", "/api/transactions", token, body=a_transaction(checking["id"])), 201)
    schemas.CreatedTransaction.model_validate(created)
    tx = created["transaction"]
    assert (tx["amount"], tx["amount_minor"], tx["currency"]) == ("-12.34", -1234, "USD")
    assert (tx["account_id"], tx["category"], tx["description"]) == (
        checking["id"],
        "groceries",
        "Corner shop",
    )
    assert created["account"]["id"] == checking["id"]
    assert created["account"]["balance_minor"] == checking["balance_minor"] - 1234
    assert demo_state(api, token) == ("5419.76", 33)
    assert all_transactions(api, token)[0]["id"] == tx["id"]  # occurred now: the newest
    assert groceries_this_month(api, token) == (spent + 1234, count + 1)


def test_a_transaction_may_be_dated_in_the_past(api, token):
    checking = accounts_by_name(api, token)["Everyday Checking"]
    tx = a_transaction(
        checking["id"], amount="250", category="income", occurred_at="2025-01-15T09:30:00+01:00"
    )
    created = ok(call(api, "POST", "/api/transactions", token, body=tx), 201)["transaction"]
    assert created["occurred_at"] == 1736929800000
    assert created["amount"] == "250.00"
    assert demo_state(api, token) == ("5682.10", 33)


# --- bearer challenges (RFC 6750 §3, RFC 9728 §5.1) -----------------------------------------------


def route_call(api, token, method, path, account_id):
    path = path.replace("{account}", account_id)
    body = None
    if path == "/api/accounts" and method == "POST":
        body = {"name": "New", "type": "cash", "currency": "USD"}
    elif method == "POST":
        body = a_transaction(account_id)
    return call(api, method, path, token, body=body)


@pytest.fixture
def demo_account_id(api, token):
    return accounts_by_name(api, token)["Everyday Checking"]["id"]


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_without_a_token_every_route_is_401_with_the_api_resource_metadata(
    api, demo_account_id, method, path, scope
):
    response = route_call(api, None, method, path, demo_account_id)
    assert refused(response, 401, "unauthorized")
    challenge = header(response, "www-authenticate")
    assert challenge == f'Bearer scope="{scope}", resource_metadata="{PRM}"'
    assert "error=" not in challenge  # RFC 6750 §3.1: no error code without credentials


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_a_token_without_the_routes_scope_is_403_naming_it(
    api, token_fn, demo_account_id, method, path, scope
):
    others = " ".join(s for s in WALLET_SCOPES.split() if s != scope)
    response = route_call(api, get_token(token_fn, scope=others), method, path, demo_account_id)
    assert "needs scope: " + scope in refused(response, 403, "insufficient_scope")
    challenge = header(response, "www-authenticate")
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{scope}"' in challenge
    assert f'resource_metadata="{PRM}"' in challenge


def test_a_token_minted_for_the_mcp_server_is_refused(api, token_fn):
    mcp_token = get_token(token_fn, scope=WALLET_SCOPES, resource=None)  # default audience: <issuer>/mcp
    response = call(api, "GET", "/api/balance", mcp_token)
    assert "not issued for this resource" in refused(response, 401, "invalid_token")
    challenge = header(response, "www-authenticate")
    assert 'error="invalid_token"' in challenge
    assert f'resource_metadata="{PRM}"' in challenge


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Bearer a.b.c", "Bearer ", "Bearer two tokens", "Basic ZGVtbzpkZW1v", "Bearer é"],
)
def test_a_malformed_or_bad_token_is_invalid_token(api, authorization):
    response = api.request("GET", "/api/balance", headers={"authorization": authorization})
    refused(response, 401, "invalid_token")
    assert header(response, "www-authenticate").startswith('Bearer error="invalid_token"')


def sign(token_fn, **claims):
    signer = KmsJwtSigner(
        aws.kms(), token_fn.module.deployment.keys, token_fn.module.SETTINGS.require_signing_key()
    )
    base = {"issuer": BASE_URL, "audience": API, "scope": WALLET_SCOPES, "ttl": 3600}
    return issue_access_token(signer, access_token_claims(**{**base, **claims}))


def test_an_expired_token_is_invalid_token(api, token_fn):
    expired = sign(token_fn, subject=DEMO_USER_ID, client_id=DEMO_CLIENT_ID, now=int(time.time()) - 7200)
    assert refused(call(api, "GET", "/api/balance", expired), 401, "invalid_token") == "token expired"


def test_a_revoked_token_is_invalid_token(api, token_fn, token):
    assert ok(call(api, "GET", "/api/balance", token))["accounts"] == 3
    revoked = token_fn.request(
        "POST",
        "/oauth/revoke",
        headers=FORM,
        body=f"token={token}&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}",
    )
    assert revoked.status == 200
    api.module.deployment.revocation_cache._fetched_at = None  # skip the poll interval
    assert refused(call(api, "GET", "/api/balance", token), 401, "invalid_token") == "token revoked"


def test_a_users_token_acts_on_that_users_wallet(api, token_fn):
    user_token = sign(token_fn, subject=DEMO_USER_ID, client_id=DEMO_CLIENT_ID)
    assert ok(call(api, "GET", "/api/balance", user_token))["totals"][0]["amount"] == "5432.10"


def test_a_client_credentials_token_of_a_client_nobody_owns_is_403_access_denied(api, token_fn, clients):
    add_client(clients, OWNERLESS_CLIENT_ID, OWNERLESS_CLIENT_SECRET, None)
    ownerless = get_token(token_fn, client=(OWNERLESS_CLIENT_ID, OWNERLESS_CLIENT_SECRET))
    response = call(api, "GET", "/api/balance", ownerless)
    assert "no wallet owner" in refused(response, 403, "access_denied")
    assert header(response, "www-authenticate") is None


# --- isolation ------------------------------------------------------------------------------------


def test_another_user_sees_an_empty_wallet(api, other_token):
    assert ok(call(api, "GET", "/api/balance", other_token)) == {"totals": [], "accounts": 0}
    assert ok(call(api, "GET", "/api/accounts", other_token)) == {"accounts": []}
    assert ok(call(api, "GET", "/api/transactions", other_token)) == {"transactions": [], "next_cursor": None}
    spending = ok(call(api, "GET", "/api/analytics/spending", other_token, query="period=last_3_months"))
    assert (spending["categories"], spending["totals"]) == ([], [])


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "/api/accounts/{account}", ""),
        ("GET", "/api/accounts/{account}/transactions", ""),
        ("GET", "/api/transactions", "account_id={account}"),
        ("POST", "/api/transactions", ""),
    ],
)
def test_the_demo_users_account_is_404_for_another_user(
    api, token, other_token, demo_account_id, method, path, query
):
    body = a_transaction(demo_account_id, amount="-1000.00") if method == "POST" else None
    response = call(
        api,
        method,
        path.replace("{account}", demo_account_id),
        other_token,
        body=body,
        query=query.replace("{account}", demo_account_id),
    )
    assert refused(response, 404, "not_found") == "no such account"
    assert demo_state(api, token) == SEEDED
    assert ok(call(api, "GET", "/api/transactions", other_token))["transactions"] == []


def test_another_users_writes_stay_in_their_own_wallet(api, token, other_token):
    account = {"name": "Mine", "type": "checking", "currency": "USD", "opening_balance": "10.00"}
    mine = ok(call(api, "POST", "/api/accounts", other_token, body=account), 201)
    ok(call(api, "POST", "/api/transactions", other_token, body=a_transaction(mine["id"])), 201)
    assert ok(call(api, "GET", "/api/balance", other_token))["totals"][0]["amount"] == "-2.34"
    assert demo_state(api, token) == SEEDED
    assert refused(call(api, "GET", f"/api/accounts/{mine['id']}", token), 404, "not_found")


# --- bad input: a clear 4xx, and nothing written --------------------------------------------------

CHECKING = "{checking}"

BAD_TRANSACTIONS = [
    # (body, status, error, the description starts with)
    (a_transaction(CHECKING, amount=-12.34), 400, "invalid_request", "amount: "),
    (a_transaction(CHECKING, amount=12), 400, "invalid_request", "amount: "),
    (a_transaction(CHECKING, amount=None), 400, "invalid_request", "amount: "),
    (a_transaction(str(uuid.uuid4())), 404, "not_found", "no such account"),
    (a_transaction(CHECKING, amount="0"), 400, "invalid_request", "amount must not be zero"),
    (a_transaction(CHECKING, amount="-0.00"), 400, "invalid_request", "amount must not be zero"),
    (a_transaction(CHECKING, amount="1e12"), 400, "invalid_request", "amount: "),
    (a_transaction(CHECKING, amount="99999999999"), 400, "invalid_request", "amount must not exceed"),
    (a_transaction(CHECKING, amount="-1000000000.01"), 400, "invalid_request", "amount must not exceed"),
    (a_transaction(CHECKING, amount="12.345"), 400, "invalid_request", "USD amounts have at most 2"),
    (a_transaction(CHECKING, amount="NaN"), 400, "invalid_request", "amount: "),
    (a_transaction(CHECKING, amount="1,000.00"), 400, "invalid_request", "amount: "),
    (a_transaction(CHECKING, amount="١٢"), 400, "invalid_request", "amount: "),  # Arabic-Indic digits
    (a_transaction(CHECKING, category="gambling"), 400, "invalid_request", "category: "),
    (a_transaction(CHECKING, description="x" * 201), 400, "invalid_request", "description: "),
    (a_transaction(CHECKING, description="   "), 400, "invalid_request", "description must not be empty"),
    (a_transaction(CHECKING, occurred_at="yesterday"), 400, "invalid_request", "occurred_at must be"),
    (a_transaction(CHECKING, occurred_at="2999-01-01T00:00:00Z"), 400, "invalid_request", "occurred_at must"),
    (a_transaction(CHECKING, occurred_at=1700000000), 400, "invalid_request", "occurred_at: "),
    ({**a_transaction(CHECKING), "account_id": ["a"]}, 400, "invalid_request", "account_id: "),
    (a_transaction(CHECKING, extra="field"), 400, "invalid_request", "extra: "),
    ({"account_id": CHECKING, "amount": "-1.00"}, 400, "invalid_request", "category: "),
    ([a_transaction(CHECKING)], 400, "invalid_request", ""),
    ("{", 400, "invalid_request", ""),
    ("", 400, "invalid_request", ""),
]

BAD_ACCOUNTS = [
    ({"name": ["Savings"], "type": "savings", "currency": "USD"}, 400, "invalid_request", "name: "),
    ({"name": "x" * 65, "type": "savings", "currency": "USD"}, 400, "invalid_request", "name: "),
    ({"name": "Pot", "type": "savings", "currency": "XYZ"}, 400, "invalid_request", "unsupported currency"),
    ({"name": "Pot", "type": "piggy_bank", "currency": "USD"}, 400, "invalid_request", "type: "),
    (
        {"name": "Pot", "type": "cash", "currency": "JPY", "opening_balance": "1.5"},
        400,
        "invalid_request",
        "JPY",
    ),
    (
        {"name": "Pot", "type": "cash", "currency": "USD", "opening_balance": 5.5},
        400,
        "invalid_request",
        "opening",
    ),
    (
        {"name": "Pot", "type": "cash", "currency": "USD", "opening_balance": "1e12"},
        400,
        "invalid_request",
        "open",
    ),
    ({"name": "Pot", "type": "cash", "currency": "USD", "balance": "1"}, 400, "invalid_request", "balance: "),
]


def fill(body, account_id):
    text = json.dumps(body) if not isinstance(body, str) else body
    return text.replace(CHECKING, account_id)


@pytest.mark.parametrize(("body", "status", "error", "description"), BAD_TRANSACTIONS)
def test_a_bad_transaction_is_refused_and_nothing_is_written(
    api, token, demo_account_id, body, status, error, description
):
    response = call(api, "POST", "/api/transactions", token, body=fill(body, demo_account_id))
    assert refused(response, status, error).startswith(description)
    assert demo_state(api, token) == SEEDED


@pytest.mark.parametrize(("body", "status", "error", "description"), BAD_ACCOUNTS)
def test_a_bad_account_is_refused_and_nothing_is_written(api, token, body, status, error, description):
    response = call(api, "POST", "/api/accounts", token, body=body)
    assert refused(response, status, error).startswith(description)
    assert len(accounts_by_name(api, token)) == 3


@pytest.mark.parametrize(
    ("path", "query", "description"),
    [
        ("/api/transactions", "cursor=garbage", "cursor is not one this server returned"),
        ("/api/transactions", "cursor=c1.%21%21%21", "cursor is not one this server returned"),
        ("/api/transactions", "cursor=c1.VVNFUiN4", "cursor is not one this server returned"),
        ("/api/transactions", "limit=0", "limit: "),
        ("/api/transactions", "limit=1000", "limit: "),
        ("/api/transactions", "limit=ten", "limit: "),
        ("/api/transactions", "limit=-1", "limit: "),
        ("/api/analytics/spending", "period=someday", "period must be one of"),
        ("/api/analytics/spending", "period=2020-01..2035-01", "a period spans at most 120 months"),
    ],
)
def test_bad_query_parameters_are_400(api, token, path, query, description):
    assert refused(call(api, "GET", path, token, query=query), 400, "invalid_request").startswith(description)


@pytest.mark.parametrize("declared", [False, True])
def test_a_body_over_16_kib_is_413_and_nothing_is_written(api, token, demo_account_id, declared):
    body = json.dumps(a_transaction(demo_account_id, padding="x" * routes.MAX_BODY_BYTES))
    headers = {"content-length": str(len(body))} if declared else None
    response = call(api, "POST", "/api/transactions", token, body=body, headers=headers)
    assert "at most 16384 bytes" in refused(response, 413, "invalid_request")
    assert demo_state(api, token) == SEEDED


def test_a_body_just_under_the_limit_is_parsed(api, token, demo_account_id):
    body = a_transaction(demo_account_id)
    body["description"] = "x" * 200
    text = json.dumps(body)
    text = text[:-1] + " " * (routes.MAX_BODY_BYTES - len(text)) + "}"
    assert len(text) == routes.MAX_BODY_BYTES
    ok(call(api, "POST", "/api/transactions", token, body=text), 201)


def test_a_body_that_is_not_json_is_refused(api, token, demo_account_id):
    response = call(
        api,
        "POST",
        "/api/transactions",
        token,
        body=fill(a_transaction(CHECKING), demo_account_id),
        headers={"content-type": "text/plain"},
    )
    refused(response, 400, "invalid_request")
    assert demo_state(api, token) == SEEDED


MALFORMED_BODIES = ['{"amount": ', "not json", b"\xff\xfe{}"]


@pytest.mark.parametrize("body", MALFORMED_BODIES)
@pytest.mark.parametrize(
    ("path", "scope"),
    [("/api/transactions", "wallet:transactions:write"), ("/api/accounts", "wallet:accounts:write")],
)
def test_a_malformed_body_without_a_token_is_401_not_400(api, token, path, scope, body):
    response = call(api, "POST", path, None, body=body)
    refused(response, 401, "unauthorized")
    assert header(response, "www-authenticate") == f'Bearer scope="{scope}", resource_metadata="{PRM}"'
    assert demo_state(api, token) == SEEDED


@pytest.mark.parametrize("body", MALFORMED_BODIES)
def test_a_malformed_body_with_a_bad_token_is_401_invalid_token(api, token, body):
    refused(call(api, "POST", "/api/transactions", "a.b.c", body=body), 401, "invalid_token")
    assert demo_state(api, token) == SEEDED


def test_a_malformed_body_with_a_token_short_of_the_scope_is_403(api, token_fn, token):
    reader = get_token(token_fn, scope="wallet:accounts:read wallet:transactions:read")
    response = call(api, "POST", "/api/transactions", reader, body='{"amount": ')
    refused(response, 403, "insufficient_scope")
    assert 'scope="wallet:transactions:write"' in header(response, "www-authenticate")
    assert demo_state(api, token) == SEEDED


@pytest.mark.parametrize("body", MALFORMED_BODIES)
def test_a_malformed_body_with_a_good_token_is_400(api, token, body):
    refused(call(api, "POST", "/api/transactions", token, body=body), 400, "invalid_request")
    assert demo_state(api, token) == SEEDED


# --- idempotency ----------------------------------------------------------------------------------


def test_the_same_idempotency_key_twice_creates_one_transaction(api, token, demo_account_id):
    key = {"Idempotency-Key": "order-2026-0001"}
    body = a_transaction(demo_account_id)
    first = ok(call(api, "POST", "/api/transactions", token, body=body, headers=key), 201)
    again = ok(call(api, "POST", "/api/transactions", token, body=body, headers=key), 201)
    assert again["transaction"] == first["transaction"]
    assert demo_state(api, token) == ("5419.76", 33)


def test_the_same_idempotency_key_with_another_body_is_409(api, token, demo_account_id):
    key = {"Idempotency-Key": "order-2026-0002"}
    ok(call(api, "POST", "/api/transactions", token, body=a_transaction(demo_account_id), headers=key), 201)
    changed = a_transaction(demo_account_id, amount="-99.99")
    response = call(api, "POST", "/api/transactions", token, body=changed, headers=key)
    assert "different request" in refused(response, 409, "conflict")
    assert demo_state(api, token) == ("5419.76", 33)


def test_an_idempotent_account_is_opened_once(api, token):
    key = {"idempotency-key": "open-holiday-fund"}
    body = {"name": "Holiday Fund", "type": "savings", "currency": "USD", "opening_balance": "1.00"}
    first = ok(call(api, "POST", "/api/accounts", token, body=body, headers=key), 201)
    again = ok(call(api, "POST", "/api/accounts", token, body=body, headers=key), 201)
    assert again["id"] == first["id"]
    assert len(accounts_by_name(api, token)) == 4


@pytest.mark.parametrize("key", ["short", "has spaces in it", "x" * 129])
def test_a_malformed_idempotency_key_is_400_and_nothing_is_written(api, token, demo_account_id, key):
    body = a_transaction(demo_account_id)
    response = call(api, "POST", "/api/transactions", token, body=body, headers={"Idempotency-Key": key})
    refused(response, 400, "invalid_request")
    assert demo_state(api, token) == SEEDED


# --- the OpenAPI document -------------------------------------------------------------------------


def test_the_openapi_document_is_served_without_a_token_and_lists_the_routes_and_scopes(api):
    response = api.request("GET", "/api/openapi.json")
    assert response.status == 200
    document = response_json(response)
    assert document["components"]["securitySchemes"]["bearer"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "",
    }
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) == {(m, p.replace("{account}", "{account_id}")) for m, p, _ in ROUTES}
    for method, path, scope in ROUTES:
        operation = operations[(method, path.replace("{account}", "{account_id}"))]
        assert operation["security"] == [{"bearer": [scope]}]
        assert scope in operation["description"]
        assert "422" not in operation["responses"]
        assert {"401", "403"} <= set(operation["responses"])
    assert operations[("POST", "/api/transactions")]["operationId"] == "createTransaction"
    amount = document["components"]["schemas"]["NewTransaction"]["properties"]["amount"]
    assert amount["type"] == "string"


def test_an_unknown_api_path_is_404(api, token):
    refused(call(api, "GET", "/api/nothing-here", token), 404, "not_found")
