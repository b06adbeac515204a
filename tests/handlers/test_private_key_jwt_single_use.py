"""A `private_key_jwt` assertion's `jti` is spent in the transaction that issues the token
(RFC 7523 §3 item 7, FAPI 2.0 §5.3.2.1; `storage/assertion_jtis.py`): no write of its own on
success, a replay refused `invalid_client` with nothing issued, even one that got past the read,
and the assertion of a refused request spent all the same."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import response_json
from tests.handlers.test_private_key_jwt import assertion, form, post, refused, token_fn  # noqa: F401
from wallet_mcp import aws
from wallet_mcp.storage.assertion_jtis import UsedAssertions
from wallet_mcp.storage.audit import AuditLog

CLIENT = "pkjwt-client"


def issued_tokens(aws_stack) -> int:
    events = AuditLog(aws.dynamodb(), aws_stack.physical_ids["AuditTable"]).of(CLIENT, limit=500)
    return sum(1 for e in events if e["event"] == "token_issued")


@pytest.fixture
def dynamodb_calls() -> Iterator[list[str]]:
    """The DynamoDB operations the function calls (on its main client), in order."""
    calls: list[str] = []
    client = aws.dynamodb()

    def seen(model, **_: object) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb", seen)
    yield calls
    client.meta.events.unregister("before-call.dynamodb", seen)


def test_an_accepted_assertion_costs_no_write_of_its_own(token_fn, dynamodb_calls):  # noqa: F811
    value = assertion()
    assert post(token_fn, form(value)).status == 200
    # one read (client, counters, the jti's marker) and one transaction (token, marker, audit)
    assert "PutItem" not in dynamodb_calls, dynamodb_calls
    assert dynamodb_calls.count("TransactWriteItems") == 1
    # and the marker it wrote spends the jti
    assert "already used" in refused(post(token_fn, form(value)))


def test_a_replay_that_got_past_the_read_loses_the_transaction(
    token_fn,  # noqa: F811
    aws_stack,
    monkeypatch,
):
    """Two requests with one assertion at the same moment both read "unused": the issuing
    transactions decide, and the second loses its condition — invalid_client, nothing issued."""
    value = assertion()
    assert post(token_fn, form(value)).status == 200
    before = issued_tokens(aws_stack)
    monkeypatch.setattr(UsedAssertions, "in_use", staticmethod(lambda item, *, now: False))
    assert "already used" in refused(post(token_fn, form(value)))
    assert issued_tokens(aws_stack) == before


@pytest.mark.parametrize(
    ("extra", "status", "error"),
    [
        (
            {
                "grant_type": "authorization_code",
                "code": "x",
                "redirect_uri": "https://a.example/cb",
                "code_verifier": "v" * 50,
            },
            400,
            "unauthorized_client",
        ),
        ({"resource": "https://elsewhere.example/mcp"}, 400, "invalid_target"),
    ],
)
def test_the_assertion_of_a_refused_request_is_spent(token_fn, aws_stack, extra, status, error):  # noqa: F811
    """A refused request issues nothing, but its assertion cannot serve another request."""
    value = assertion()
    failed = post(token_fn, {**form(value), **extra})
    assert failed.status == status, failed.body
    assert response_json(failed)["error"] == error
    before = issued_tokens(aws_stack)
    assert "already used" in refused(post(token_fn, form(value)))
    assert issued_tokens(aws_stack) == before
