"""The connection log's pure pieces: what a step's text may hold, which day a failure is filed
under, and when a best-effort action is to blame for a transaction that failed."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from wallet_mcp.storage.connection_log import (
    MAX_CLIENT_ID_BYTES,
    ConnectionLog,
    clean,
    failed,
    failure_day,
    loggable_client_id,
    succeeded,
)
from wallet_mcp.storage.database import _caused_by_extras


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("plain words", 50, "plain words"),
        ("line\nbreak\tand\x00nul", 50, "line break and nul"),
        ("  spaced   out  ", 50, "spaced out"),
        ("x" * 20, 10, "x" * 9 + "…"),
        ("lone \udc80 surrogate", 50, "lone ? surrogate"),
        ("\u202eright-to-left override", 50, "right-to-left override"),
    ],
)
def test_text_is_one_printable_bounded_line(text, limit, expected):
    assert clean(text, limit) == expected


def test_a_failure_is_filed_under_its_utc_day():
    assert failure_day(0) == "1970-01-01"
    assert failure_day(86_400_000 - 1) == "1970-01-01"
    assert failure_day(86_400_000) == "1970-01-02"


@pytest.mark.parametrize(
    ("client_id", "loggable"),
    [("mcp_abc", True), ("", False), ("é" * (MAX_CLIENT_ID_BYTES // 2), True), ("é" * 513, False)],
)
def test_only_client_ids_of_a_bounded_size_are_logged(client_id, loggable):
    assert loggable_client_id(client_id) is loggable


def _cancelled(*reasons: str) -> ClientError:
    response = {
        "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
        "CancellationReasons": [{"Code": reason} for reason in reasons],
    }
    return ClientError(response, "TransactWriteItems")  # type: ignore[arg-type]


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "TransactWriteItems")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "blamed"),
    [
        (_cancelled("None", "None", "ThrottlingError"), True),  # the best-effort action throttled
        (_cancelled("ThrottlingError", "None", "None"), False),  # the request's own action did
        (_cancelled("None", "None", "None"), False),
        (_error("ResourceNotFoundException"), True),  # which table is missing: retrying tells
        (_error("AccessDeniedException"), True),
        (_error("InternalServerError"), False),
    ],
)
def test_a_best_effort_action_is_blamed_only_when_it_may_be_the_cause(error, blamed):
    assert _caused_by_extras(error, own=2) is blamed


def test_without_a_table_nothing_is_written_or_read():
    def no_client():
        raise AssertionError("no client is built")

    log = ConnectionLog(no_client, None, retention=3600)
    log.record(failed("c", "token", "invalid_grant", "x", 400), succeeded("c", "token", "y"))
    assert log.put_action(succeeded("c", "token", "y")) is None
    assert log.of_client("c") == []
    assert log.recent_failures() == []
