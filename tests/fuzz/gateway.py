"""Requests as API Gateway delivers them, from a chosen source address, and what they leave behind.

`Function.request` always sends from 127.0.0.1; the per-address rate limits would then answer 429 to
nearly every generated request after the first few dozen, and the fuzzing would stop reaching the code
behind them. Here each example may come from its own address (429 stays an allowed answer).
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from devstack.events import HttpRequest, HttpResponse, build_event
from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from devstack.template import Stack
from tests.conftest import Function, header
from wallet_mcp import aws


def send(
    fn: Function,
    method: str,
    path: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    query: str = "",
    source_ip: str = "127.0.0.1",
) -> HttpResponse:
    """`headers` may repeat a name: API Gateway joins repeated headers with commas."""
    _crashes.seen.clear()
    hdrs = [("host", "localhost:3000"), ("user-agent", "hypothesis"), *headers]
    route = next((r for r in fn.stack.routes() if r.path == path and r.method in (method, "ANY")), None)
    event = build_event(
        HttpRequest(method, path, query, hdrs, body, source_ip=source_ip),
        route_key=route.route_key if route else "$default",
        path_parameters=None,
        forwarded_proto="http",
    )
    return fn.invoke_event(event)


def demo_client_token(token_fn: Function, scope: str, resource: str | None = None) -> str:
    """A client-credentials access token of the seeded demo client (it acts on the demo wallet)."""
    form = {"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID}
    form |= {"client_secret": DEMO_CLIENT_SECRET, "scope": scope}
    if resource is not None:
        form["resource"] = resource
    response = send(
        token_fn,
        "POST",
        "/oauth/token",
        headers=[("content-type", "application/x-www-form-urlencoded")],
        body=urlencode(form).encode(),
    )
    assert response.status == 200, describe(response)
    return str(json_or_none(response)["access_token"])


def item_counts(stack: Stack, logical_ids: Iterable[str]) -> dict[str, int]:
    """How many items each table holds (a full scan: the tables of a test stay small)."""
    counts = {}
    for logical_id in logical_ids:
        table, total, start = stack.physical_ids[logical_id], 0, None
        while True:
            page = aws.dynamodb().scan(
                TableName=table, Select="COUNT", **({"ExclusiveStartKey": start} if start else {})
            )
            total += page["Count"]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        counts[logical_id] = total
    return counts


def json_or_none(response: HttpResponse) -> Any:
    try:
        return json.loads(response.body)
    except ValueError:
        return None


class _Crashes(logging.Handler):
    """Exceptions the functions log as unexpected (the shared error handler, the MCP SDK)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.seen.append(record.exc_info[1])


_crashes = _Crashes()
_PROJECT = str(Path(__file__).resolve().parents[2]) + "/"


@contextmanager
def crashes_recorded() -> Iterator[None]:
    root = logging.getLogger()
    root.addHandler(_crashes)
    try:
        yield
    finally:
        root.removeHandler(_crashes)


def last_crash() -> str | None:
    """`Type: message (file:line)` of the last unexpected exception, at its deepest project frame."""
    if not _crashes.seen:
        return None
    exc = _crashes.seen[-1]
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(_PROJECT) and "/site-packages/" not in f.filename]
    at = (ours or frames)[-1] if frames else None
    where = f" at {at.filename.removeprefix(_PROJECT)}:{at.lineno}" if at else ""
    return f"{type(exc).__name__}: {exc}{where}"


def describe(response: HttpResponse) -> str:
    """For assertion messages: the status, content type, the start of the body and, for a 5xx, the
    exception behind it."""
    text = f"{response.status} {header(response, 'content-type')} {response.body[:300]!r}"
    if response.status >= 500 and (crash := last_crash()):
        text += f"\n  caused by {crash}"
    return text
