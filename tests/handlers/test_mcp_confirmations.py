"""A debit waits for the person: createTransaction through the MCP handler on both wires, the
confirmation page through the account handler, and every refusal (mcp_server/confirmation.py).

The person is the demo user signed in to /account; the client is the demo client (client
credentials, owned by the demo user), so its wallet is the demo user's."""

from __future__ import annotations

import base64
import json
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_PASSWORD, DEMO_USER_ID
from tests.conftest import header, response_json, with_parameters
from tests.forms import parse
from tests.handlers.confirm_helpers import allow_debits
from tests.handlers.mcp_session import ALL, token
from tests.handlers.oauth_helpers import FORM
from tests.handlers.test_account import ORIGIN, sign_in
from wallet_mcp import aws
from wallet_mcp.credentials import opaque
from wallet_mcp.credentials.passwords import hash_password
from wallet_mcp.mcp_server.confirmation import ConfirmationGate
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.storage import items
from wallet_mcp.storage.audit import AuditLog
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.users import UserRecord, UserStore
from wallet_mcp.wallet.confirmations import Confirmation, ConfirmationStore, Operation
from wallet_mcp.wallet.service import ConfirmationRefused

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
URL_CAPABLE = {"elicitation": {"url": {}}}


@pytest.fixture
def fns(load_function, aws_stack, demo_wallet):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id="other-users-client",
            client_name="other-users-client",
            token_endpoint_auth_method="client_secret_post",
            client_secret_hash=opaque.digest("other-secret"),
            grant_types=("client_credentials",),
            redirect_uris=(),
            scope=SUPPORTED_SCOPES,
            created_at=0,
            owner_user_id="user-two",
        )
    )
    UserStore(aws.dynamodb(), aws_stack.physical_ids["UsersTable"]).create(
        UserRecord(
            username="mallory", user_id="user-mallory", password_hash=hash_password("m-pass"), created_at=0
        )
    )
    allow_debits(aws_stack.physical_ids["ClientsTable"])  # the demo client may ask for payments
    return load_function("TokenFunction"), load_function("McpFunction"), load_function("AccountFunction")


class Mcp:
    def __init__(self, fn, access_token, version=LEGACY, capabilities=None):
        self.fn, self.token, self.version, self.capabilities = fn, access_token, version, capabilities or {}
        self.ids = 0

    def send(self, name, arguments, **extra):
        self.ids += 1
        params = {"name": name, "arguments": arguments, **extra}
        headers = {
            "authorization": f"Bearer {self.token}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": self.version,
        }
        if self.version == MODERN:
            headers |= {"mcp-method": "tools/call", "mcp-name": name}
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": self.capabilities,
            }
        message = {"jsonrpc": "2.0", "id": self.ids, "method": "tools/call", "params": params}
        response = self.fn.request("POST", "/mcp", headers=headers, body=json.dumps(message))
        answer = response_json(response)
        # a JSON-RPC error may come with 400 on 2026-07-28 (transports §Error responses); never 5xx
        assert response.status == 200 or (response.status == 400 and "error" in answer), response.body
        return answer

    def balance_of(self, account_id):
        result = self.send("getUserAccounts", {})["result"]["structuredContent"]["accounts"]
        return next(a["balance_minor"] for a in result if a["id"] == account_id)

    def transactions(self):
        return self.send("getRecentTransactions", {"limit": 100})["result"]["structuredContent"][
            "transactions"
        ]


@pytest.fixture
def client(fns):
    token_fn, mcp_fn, _ = fns
    return Mcp(mcp_fn, token(token_fn))


@pytest.fixture
def account_id(client):
    return client.send("getUserAccounts", {})["result"]["structuredContent"]["accounts"][0]["id"]


@pytest.fixture
def browser(fns):
    """The demo user's browser, signed in to /account."""
    return Browser(fns[2], sign_in(fns[2])[1])


class Browser:
    def __init__(self, account_fn, cookies):
        self.fn, self.cookies = account_fn, cookies

    def open(self, url):
        parts = urlsplit(url)
        return self.fn.request("GET", parts.path, query=parts.query, cookies=self.cookies)

    def decide(self, url, decision):
        page = self.open(url)
        assert page.status == 200, page.body
        (*_, form), _ = parse(page.body.decode())
        submission = form.submission({"decision": decision})
        response = self.fn.request(
            "POST",
            "/account/confirm",
            headers={**FORM, **ORIGIN},
            body=urlencode(submission),
            cookies=self.cookies,
        )
        return response


def debit(account_id, amount="-7.25", description="Coffee beans"):
    return {"accountId": account_id, "amount": amount, "category": "groceries", "description": description}


def elicitation_of(error):
    assert error["code"] == -32042, error
    (elicitation,) = error["data"]["elicitations"]
    assert elicitation["mode"] == "url" and elicitation["elicitationId"]
    return elicitation


def audit_events(aws_stack, subject=DEMO_USER_ID):
    log = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"])
    return [e for e in log.of(subject, limit=200) if e["event"].startswith("confirmation_")]


def expire_all(aws_stack, user_id=DEMO_USER_ID):
    """Ten minutes pass: every confirmation's deadline moves into the past."""
    db, table = aws.dynamodb(), aws_stack.physical_ids["WalletTable"]
    found = db.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": items.s(f"USER#{user_id}"), ":p": items.s("CONFIRM#")},
    )["Items"]
    for item in found:
        db.update_item(
            TableName=table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET confirm_by = :past",
            ExpressionAttributeValues={":past": items.n(1)},
        )


# --- 2025-11-25: URLElicitationRequiredError, the same call again --------------------------------


def test_an_approved_debit_is_recorded_exactly_once(client, account_id, browser, aws_stack):
    before = client.balance_of(account_id)
    count = len(client.transactions())
    first = client.send("createTransaction", debit(account_id))
    elicitation = elicitation_of(first["error"])
    assert elicitation["url"].startswith("http://localhost:3000/account/confirm?op=op_")
    assert client.balance_of(account_id) == before  # nothing yet

    approved = browser.decide(elicitation["url"], "approve")
    assert approved.status == 200 and "Approved" in approved.body.decode()

    done = client.send("createTransaction", debit(account_id))["result"]
    assert not done.get("isError"), done
    assert done["structuredContent"]["transaction"]["amount"] == "-7.25"
    assert client.balance_of(account_id) == before - 725
    assert len(client.transactions()) == count + 1

    again = client.send("createTransaction", debit(account_id))["result"]
    assert again["isError"] and "already used" in again["content"][0]["text"]
    assert client.balance_of(account_id) == before - 725
    events = [e["event"] for e in audit_events(aws_stack)]
    assert events == [
        "confirmation_refused",
        "confirmation_executed",
        "confirmation_approved",
        "confirmation_requested",
    ]
    refused, executed = audit_events(aws_stack)[:2]
    assert refused["details"]["reason"] == "used"
    assert executed["client_id"] == DEMO_CLIENT_ID and executed["details"]["amount"] == -725
    assert executed["details"]["transaction_id"] == done["structuredContent"]["transaction"]["id"]


def test_a_retry_before_the_person_acted_asks_again(client, account_id):
    first = elicitation_of(client.send("createTransaction", debit(account_id))["error"])
    second = elicitation_of(client.send("createTransaction", debit(account_id))["error"])
    assert second["url"] == first["url"]


def test_a_declined_debit_records_nothing(client, account_id, browser, aws_stack):
    before, count = client.balance_of(account_id), len(client.transactions())
    url = elicitation_of(client.send("createTransaction", debit(account_id))["error"])["url"]
    declined = browser.decide(url, "decline")
    assert declined.status == 200 and "Declined" in declined.body.decode()
    result = client.send("createTransaction", debit(account_id))["result"]
    assert result["isError"] and "declined" in result["content"][0]["text"]
    assert client.balance_of(account_id) == before and len(client.transactions()) == count
    assert [e["event"] for e in audit_events(aws_stack)][:2] == [
        "confirmation_declined",
        "confirmation_requested",
    ]


def test_an_expired_approval_records_nothing(client, account_id, browser, aws_stack):
    before = client.balance_of(account_id)
    url = elicitation_of(client.send("createTransaction", debit(account_id))["error"])["url"]
    browser.decide(url, "approve")
    expire_all(aws_stack)
    result = client.send("createTransaction", debit(account_id))["result"]
    assert result["isError"] and "expired" in result["content"][0]["text"]
    assert client.balance_of(account_id) == before
    assert audit_events(aws_stack)[0]["event"] == "confirmation_expired"
    # told once; the same call afterwards asks the person anew
    assert elicitation_of(client.send("createTransaction", debit(account_id))["error"])["url"] != url


def test_changed_arguments_are_not_what_was_approved(client, account_id, browser):
    before = client.balance_of(account_id)
    url = elicitation_of(client.send("createTransaction", debit(account_id))["error"])["url"]
    browser.decide(url, "approve")
    changed = client.send("createTransaction", debit(account_id, amount="-725.00"))
    assert elicitation_of(changed["error"])["url"] != url  # a new confirmation, not the approved one
    assert client.balance_of(account_id) == before


def test_a_credit_needs_no_confirmation(client, account_id):
    before = client.balance_of(account_id)
    result = client.send(
        "createTransaction",
        {"accountId": account_id, "amount": "100", "category": "income", "description": "Pay"},
    )["result"]
    assert not result.get("isError") and client.balance_of(account_id) == before + 10000


def test_invalid_arguments_are_refused_before_anyone_is_asked(client, account_id, aws_stack):
    result = client.send("createTransaction", {**debit(account_id), "category": "gambling"})["result"]
    assert result["isError"]
    result = client.send("createTransaction", debit("no-such-account"))["result"]
    assert result["isError"] and "no such account" in result["content"][0]["text"]
    assert audit_events(aws_stack) == []


# --- the confirmation page ----------------------------------------------------------------------


def test_the_page_shows_what_is_asked_and_needs_a_session(fns, client, account_id):
    account_fn = fns[2]
    url = elicitation_of(
        client.send("createTransaction", debit(account_id, description="Blue <b>shoes</b>"))["error"]
    )["url"]
    parts = urlsplit(url)
    anonymous = account_fn.request("GET", parts.path, query=parts.query)
    assert anonymous.status == 303
    location = header(anonymous, "location")
    assert parse_qs(urlsplit(location).query)["next"] == [f"{parts.path}?{parts.query}"]

    signed_in = Browser(account_fn, sign_in(account_fn, next_path=f"{parts.path}?{parts.query}")[1])
    page = signed_in.open(url).body.decode()
    text = unescape(page)
    assert "$7.25" in text and "Blue <b>shoes</b>" in text and "<b>shoes" not in page
    assert "Demo" in text or DEMO_CLIENT_ID in text  # the requesting client's name
    verified = ClientStore(aws.dynamodb(), fns[0].stack.physical_ids["ClientsTable"]).get(
        DEMO_CLIENT_ID, now=0
    )
    assert ("not verified" in text) is not verified.verified
    assert "Approve payment" in text and "Decline" in text


def test_another_users_session_cannot_see_or_decide(fns, client, account_id, aws_stack):
    account_fn = fns[2]
    url = elicitation_of(client.send("createTransaction", debit(account_id))["error"])["url"]
    mallory = Browser(account_fn, sign_in(account_fn, "mallory", "m-pass")[1])
    page = mallory.open(url)
    assert page.status == 404 and "No such confirmation" in page.body.decode()
    op = parse_qs(urlsplit(url).query)["op"][0]
    forged = account_fn.request(
        "POST",
        "/account/confirm",
        headers={**FORM, **ORIGIN},
        body=urlencode({"op": op, "decision": "approve", "csrf_token": "x"}),
        cookies=mallory.cookies,
    )
    assert forged.status == 403  # no CSRF token of this session
    # still waiting: the client is asked again
    assert elicitation_of(client.send("createTransaction", debit(account_id))["error"])["url"] == url


def test_a_decision_needs_the_pages_csrf_token(fns, client, account_id, browser):
    url = elicitation_of(client.send("createTransaction", debit(account_id))["error"])["url"]
    op = parse_qs(urlsplit(url).query)["op"][0]
    response = browser.fn.request(
        "POST",
        "/account/confirm",
        headers={**FORM, **ORIGIN},
        body=urlencode({"op": op, "decision": "approve"}),
        cookies=browser.cookies,
    )
    assert response.status == 403
    assert elicitation_of(client.send("createTransaction", debit(account_id))["error"])["url"] == url


def test_account_lists_pending_and_recent_confirmations(client, account_id, browser):
    elicitation_of(client.send("createTransaction", debit(account_id, description="Waiting one"))["error"])
    page = unescape(browser.fn.request("GET", "/account", cookies=browser.cookies).body.decode())
    assert "Payment confirmations" in page and "Waiting one" in page and "Waiting for you" in page


# --- 2026-07-28: InputRequiredResult and a sealed requestState -----------------------------------


@pytest.fixture
def modern(fns):
    token_fn, mcp_fn, _ = fns
    return Mcp(mcp_fn, token(token_fn), MODERN, URL_CAPABLE)


def input_required(response):
    result = response["result"]
    assert result["resultType"] == "input_required", result
    request = result["inputRequests"]["confirm"]
    assert request["method"] == "elicitation/create" and request["params"]["mode"] == "url"
    return request["params"]["url"], result["requestState"]


def test_mrtr_approved_runs_once_with_the_sealed_state(modern, account_id, browser):
    before = modern.balance_of(account_id)
    url, state = input_required(modern.send("createTransaction", debit(account_id)))
    op = parse_qs(urlsplit(url).query)["op"][0]
    assert op not in state  # sealed: the client cannot read the op id out of it
    # before the person acts: the elicitation again
    assert input_required(modern.send("createTransaction", debit(account_id), requestState=state))[0] == url
    browser.decide(url, "approve")
    answers = {"confirm": {"action": "accept"}}
    done = modern.send("createTransaction", debit(account_id), requestState=state, inputResponses=answers)[
        "result"
    ]
    assert not done.get("isError"), done
    assert modern.balance_of(account_id) == before - 725
    replay = modern.send("createTransaction", debit(account_id), requestState=state, inputResponses=answers)
    assert replay["result"]["isError"] and "already used" in replay["result"]["content"][0]["text"]
    assert modern.balance_of(account_id) == before - 725


def test_mrtr_decline_in_the_client_ends_it(modern, account_id, aws_stack):
    before = modern.balance_of(account_id)
    _, state = input_required(modern.send("createTransaction", debit(account_id)))
    result = modern.send(
        "createTransaction",
        debit(account_id),
        requestState=state,
        inputResponses={"confirm": {"action": "decline"}},
    )["result"]
    assert result["isError"] and "declined" in result["content"][0]["text"]
    assert modern.balance_of(account_id) == before
    assert audit_events(aws_stack)[0]["details"]["where"] == "client"


def _tamper(state):
    raw = bytearray(base64.urlsafe_b64decode(state[3:] + "=" * (-len(state[3:]) % 4)))
    raw[-1] ^= 1
    return "v1." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_mrtr_refuses_a_tampered_state(modern, account_id, browser, aws_stack):
    url, state = input_required(modern.send("createTransaction", debit(account_id)))
    browser.decide(url, "approve")
    before = modern.balance_of(account_id)
    for forged in (_tamper(state), "v1.AAAA", "op_" + "A" * 43, parse_qs(urlsplit(url).query)["op"][0]):
        error = modern.send("createTransaction", debit(account_id), requestState=forged)["error"]
        assert error["code"] == -32602 and error["data"]["reason"] == "invalid_request_state"
    assert modern.balance_of(account_id) == before
    refused = [e for e in audit_events(aws_stack, DEMO_CLIENT_ID) if e["event"] == "confirmation_refused"]
    assert len(refused) == 4 and {e["details"]["reason"] for e in refused} == {"invalid_request_state"}


def test_mrtr_refuses_the_state_with_changed_arguments(modern, account_id, browser):
    url, state = input_required(modern.send("createTransaction", debit(account_id)))
    browser.decide(url, "approve")
    before = modern.balance_of(account_id)
    error = modern.send("createTransaction", debit(account_id, amount="-9999"), requestState=state)["error"]
    assert error["code"] == -32602
    assert modern.balance_of(account_id) == before


def test_mrtr_refuses_another_clients_state(fns, modern, account_id, browser):
    token_fn, mcp_fn, _ = fns
    url, state = input_required(modern.send("createTransaction", debit(account_id)))
    browser.decide(url, "approve")
    other = Mcp(mcp_fn, token(token_fn, ALL, ("other-users-client", "other-secret")), MODERN, URL_CAPABLE)
    error = other.send("createTransaction", debit(account_id), requestState=state)["error"]
    assert error["code"] == -32602


def test_mrtr_after_expiry_is_refused(modern, account_id, browser, aws_stack):
    url, state = input_required(modern.send("createTransaction", debit(account_id)))
    browser.decide(url, "approve")
    expire_all(aws_stack)
    result = modern.send("createTransaction", debit(account_id), requestState=state)["result"]
    assert result["isError"] and "expired" in result["content"][0]["text"]


def test_a_client_without_url_elicitation_is_told_what_to_do(fns, account_id):
    token_fn, mcp_fn, _ = fns
    plain = Mcp(mcp_fn, token(token_fn), MODERN, {})
    result = plain.send("createTransaction", debit(account_id))["result"]
    assert result["isError"]
    text = result["content"][0]["text"]
    assert "/account/confirm?op=op_" in text and "ask again" in text
    # the same call again: the same confirmation, not a new one each time
    again = plain.send("createTransaction", debit(account_id))["result"]["content"][0]["text"]
    assert again.split("open ")[1].split(" ")[0] == text.split("open ")[1].split(" ")[0]


# --- exactly once is a DynamoDB condition, not the order of reads ---------------------------------


def test_two_retries_racing_after_one_approval_record_once(fns, client, account_id, browser, aws_stack):
    """Both retries read "approved" before either writes (what two Lambda instances can do): the
    approved → used condition in the wallet write's transaction lets exactly one through, and
    after the deadline none."""
    module = fns[1].module
    deployment = module.deployment
    gate = ConfirmationGate(
        deployment.stores.confirmations,
        deployment.stores.audit,
        issuer="http://localhost:3000",
        op_id_key=b"k" * 32,
        clock=deployment.clock,
    )
    url = elicitation_of(client.send("createTransaction", debit(account_id))["error"])["url"]
    browser.decide(url, "approve")
    op_id = parse_qs(urlsplit(url).query)["op"][0]
    found = deployment.stores.confirmations.get(DEMO_USER_ID, op_id)
    assert found is not None and found.status == "approved"
    service = deployment.wallet
    before, count = client.balance_of(account_id), len(client.transactions())

    def retry():
        draft = service.draft_transaction(
            DEMO_USER_ID,
            account_id=account_id,
            amount="-7.25",
            category="groceries",
            description="Coffee beans",
        )
        return service.record(
            DEMO_USER_ID,
            draft,
            authorised_by=gate.authorising_actions(found, transaction_id=draft.tx.transaction_id, tool="t"),
        )

    retry()
    with pytest.raises(ConfirmationRefused):
        retry()
    assert client.balance_of(account_id) == before - 725 and len(client.transactions()) == count + 1

    # a second approved confirmation, past its deadline when the write comes: refused by the condition
    url = elicitation_of(client.send("createTransaction", debit(account_id, description="Later"))["error"])[
        "url"
    ]
    browser.decide(url, "approve")
    found = deployment.stores.confirmations.get(DEMO_USER_ID, parse_qs(urlsplit(url).query)["op"][0])
    expire_all(aws_stack)
    with pytest.raises(ConfirmationRefused):
        retry()
    assert client.balance_of(account_id) == before - 725


# --- machines acting without a person -------------------------------------------------------------


def test_a_client_credentials_token_moves_no_money_unless_an_admin_allows_it(
    fns, client, account_id, aws_stack
):
    clients = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    clients.update(DEMO_CLIENT_ID, {"debits_allowed": items.boolean(False)})
    before = client.balance_of(account_id)
    refused = client.send("createTransaction", debit(account_id))["result"]
    assert refused["isError"] and "administrator" in refused["content"][0]["text"]
    assert audit_events(aws_stack) == []  # nobody was asked: there was nothing to ask
    credit = {"accountId": account_id, "amount": "1", "category": "income", "description": "Refund"}
    assert not client.send("createTransaction", credit)["result"].get("isError")  # credits move none out
    assert client.balance_of(account_id) == before + 100
    clients.update(DEMO_CLIENT_ID, {"debits_allowed": items.boolean(True)})
    elicitation_of(
        client.send("createTransaction", debit(account_id))["error"]
    )  # allowed: the owner is asked


def test_an_admin_allows_and_stops_a_clients_payments_on_its_page(fns, aws_stack):
    account_fn = fns[2]
    admin = UserStore(aws.dynamodb(), aws_stack.physical_ids["UsersTable"])
    admin.create(
        UserRecord(
            username="root",
            user_id="user-root",
            password_hash=hash_password("r-pass"),
            created_at=0,
            roles=("admin",),
        )
    )
    cookies = sign_in(account_fn, "root", "r-pass")[1]
    clients = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    for action, expected in (("refuse_debits", False), ("allow_debits", True)):
        page = account_fn.request(
            "GET", "/admin/client", query=urlencode({"client_id": DEMO_CLIENT_ID}), cookies=cookies
        )
        forms, _ = parse(page.body.decode())
        (form,) = (f for f in forms if f.fields.get("action") == action)
        done = account_fn.request(
            "POST",
            "/admin/client",
            headers={**FORM, **ORIGIN},
            body=urlencode(form.submission()),
            cookies=cookies,
        )
        assert done.status == 200, done.body
        assert clients.get(DEMO_CLIENT_ID, now=0).debits_allowed is expected
    log = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"])
    events = [e["event"] for e in log.of(DEMO_CLIENT_ID, limit=10)] + [
        e["event"] for e in log.of("user-root", limit=10)
    ]
    assert "client_debits_allowed" in events and "client_debits_refused" in events


# --- the person's threshold, within the administrator's maximum -----------------------------------


def set_threshold(account_fn, cookies, amount):
    page = account_fn.request("GET", "/account", cookies=cookies)
    forms, _ = parse(page.body.decode())
    (form,) = (f for f in forms if f.action == "/account/confirmations/threshold")
    return account_fn.request(
        "POST",
        "/account/confirmations/threshold",
        headers={**FORM, **ORIGIN},
        body=urlencode(form.submission({"threshold": amount})),
        cookies=cookies,
    )


def test_by_default_every_debit_needs_the_person(fns, client, account_id, browser):
    page = unescape(browser.fn.request("GET", "/account", cookies=browser.cookies).body.decode())
    assert "allows no threshold" in page and 'name="threshold"' not in page
    tiny = client.send("createTransaction", debit(account_id, amount="-0.01"))
    elicitation_of(tiny["error"])


def test_a_person_sets_a_threshold_within_the_administrators_maximum(load_function, fns, aws_stack):
    token_fn, _, _ = fns
    variant = with_parameters(aws_stack, ConfirmationThresholdMaxUsd="50")
    account_fn, mcp_fn = load_function("AccountFunction", variant), load_function("McpFunction", variant)
    cookies = sign_in(account_fn)[1]
    too_high = set_threshold(account_fn, cookies, "50.01")
    assert too_high.status == 400 and "from 0 to $50.00" in unescape(too_high.body.decode())
    saved = set_threshold(account_fn, cookies, "25")
    assert saved.status == 303
    page = unescape(account_fn.request("GET", "/account", cookies=cookies).body.decode())
    assert "Payments over $25.00 need your confirmation" in page

    mcp = Mcp(mcp_fn, token(token_fn))
    account_id = mcp.send("getUserAccounts", {})["result"]["structuredContent"]["accounts"][0]["id"]
    before = mcp.balance_of(account_id)
    small = mcp.send("createTransaction", debit(account_id, amount="-25.00"))["result"]
    assert not small.get("isError"), small  # not over the threshold: recorded at once
    elicitation_of(mcp.send("createTransaction", debit(account_id, amount="-25.01"))["error"])
    assert mcp.balance_of(account_id) == before - 2500
    events = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"]).of(DEMO_USER_ID, limit=20)
    assert any(
        e["event"] == "confirmation_threshold_set" and e["details"]["confirm_over"] == 2500 for e in events
    )

    # the administrator lowers the maximum: every threshold above it is lowered with it
    lowered = with_parameters(aws_stack, ConfirmationThresholdMaxUsd="5")
    strict = Mcp(load_function("McpFunction", lowered), token(token_fn))
    elicitation_of(
        strict.send("createTransaction", debit(account_id, amount="-10", description="After"))["error"]
    )


# --- a large payment: the password again -----------------------------------------------------------


def test_approving_a_large_payment_asks_for_the_password_again(client, account_id, browser, aws_stack):
    before = client.balance_of(account_id)
    large = debit(account_id, amount="-500.01", description="New laptop")
    url = elicitation_of(client.send("createTransaction", large)["error"])["url"]
    assert 'name="password"' in browser.open(url).body.decode()
    assert (
        'name="password"'
        not in browser.open(
            elicitation_of(client.send("createTransaction", debit(account_id, amount="-500"))["error"])["url"]
        ).body.decode()
    )

    for password in ("", "wrong-password"):
        page = browser.open(url)
        (*_, form), _ = parse(page.body.decode())
        refused = browser.fn.request(
            "POST",
            "/account/confirm",
            headers={**FORM, **ORIGIN},
            body=urlencode(form.submission({"decision": "approve", "password": password})),
            cookies=browser.cookies,
        )
        assert "Not approved" in unescape(refused.body.decode())  # the page again, as sign-in answers
        elicitation_of(client.send("createTransaction", large)["error"])  # still waiting for the person
    failures = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"]).of(DEMO_USER_ID, limit=50)
    assert sum(e["event"] == "login_failed" for e in failures) == 2

    page = browser.open(url)
    (*_, form), _ = parse(page.body.decode())
    approved = browser.fn.request(
        "POST",
        "/account/confirm",
        headers={**FORM, **ORIGIN},
        body=urlencode(form.submission({"decision": "approve", "password": DEMO_PASSWORD})),
        cookies=browser.cookies,
    )
    assert approved.status == 200 and "Approved" in approved.body.decode()
    assert not client.send("createTransaction", large)["result"].get("isError")
    assert client.balance_of(account_id) == before - 50001


@pytest.mark.parametrize("used_first", [True, False])
def test_a_stateless_retry_finds_the_open_confirmation_within_the_same_second(aws_stack, used_first):
    """Two confirmations of the same call created in one second sort in key order: the one already
    told to the client must not hide the open one (else every retry would ask anew)."""
    store = ConfirmationStore(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    operation = Operation("createTransaction", "a", "Checking", -100, "USD", "dining", "x", None)

    def record(digest, status, reported):
        return Confirmation(
            op_digest=digest,
            user_id="user-same-second",
            client_id="c",
            token_id="t",
            args_digest="d",
            operation=operation,
            status=status,
            created_at=1_000,
            expires_at=1_600,
            nonce="n",
            reported=reported,
        )

    first, second = ("0" * 64, "f" * 64) if used_first else ("f" * 64, "0" * 64)
    store.create(record(first, "used", True))
    store.create(record(second, "approved", False))
    found = store.latest_for("user-same-second", "c", "d")
    assert found is not None and found.op_digest == second
