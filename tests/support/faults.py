"""Injecting AWS faults into the clients the functions use.

Two depths. At `before-call` (the default) the call fails before anything is sent: nothing reaches
the emulator, as when AWS refuses a request after botocore's retries are spent. At `before-send`
the failure is an HTTP response, so botocore's own retries and error parsing run; but moto's
stubber still executes the request it is also handed, so use that depth only for reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

from wallet_mcp import aws


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@contextmanager
def aws_fault(
    service: str,
    operation: str,
    code: str = "ProvisionedThroughputExceededException",
    *,
    status: int = 400,
    times: int | None = None,
    connection_error: bool = False,
    retried: bool = False,
) -> Iterator[dict[str, int]]:
    """Make `service:operation` fail (`times` times, or always) while the block runs; yields a
    counter of the failures served. `retried=True` fails at `before-send` (reads only)."""
    served = {"count": 0}

    def fail(url: str) -> AWSResponse | None:
        if times is not None and served["count"] >= times:
            return None
        served["count"] += 1
        if connection_error:
            raise EndpointConnectionError(endpoint_url=url)
        return AWSResponse(url, status, {"x-amzn-requestid": "fault"}, _Raw(b""))

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        response = fail(request.url)
        if response is not None:
            body = {"__type": code if service == "kms" else f"com.amazonaws#{code}", "message": "injected"}
            response.raw = _Raw(json.dumps(body).encode())
            response.headers["content-type"] = "application/x-amz-json-1.0"
        return response

    def before_call(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        response = fail("https://fault.invalid/")
        if response is None:
            return None
        parsed = {
            "Error": {"Code": code, "Message": "injected fault"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "fault"},
        }
        return response, parsed

    event = f"{'before-send' if retried else 'before-call'}.{service}.{operation}"
    handler = before_send if retried else before_call
    emitters = [aws.session_events(), *(c.meta.events for c in aws._clients.values())]
    for emitter in emitters:
        emitter.register_first(event, handler)
    try:
        yield served
    finally:
        for emitter in emitters:
            emitter.unregister(event, handler)
