"""Metrics as CloudWatch embedded-metric-format log lines (Powertools `single_metric`), and the
optional X-Ray SDK tracer.

Metrics (namespace `POWERTOOLS_METRICS_NAMESPACE`, WalletMcp): `TokensIssued` by `grant`,
`OAuthErrors` by `error`, `RateLimited` by `rule`, `RefreshTokenReuse`, `CodeReplay`,
`LoginFailures`, `DependencyErrors`, `ConnectionLogDropped` (a connection-log step
not written). Powertools adds each function's `service` dimension to every one; an alarm must
name it (infra/template.yaml). Each is one line on stdout, costing no AWS call.

Correlation: `correlated` wraps a function's handler so that `request_id()` is, while it serves a
request, API Gateway's request id (`requestContext.requestId`): the `correlation_id` Powertools
puts on the function's log lines and the `requestId` of the API's access log, so a record written
during the request (the connection log) points at both.

Tracing: Lambda's active tracing (template) always records each invocation. The Powertools Tracer,
which patches boto3 for per-call subsegments, is opt-in (`ENABLE_XRAY_SDK=true`): initialising
the X-Ray SDK costs 0.2-0.6 s of cold start here (docs/operations.md), more than the MCP
function's budget allows.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, Final, TypeVar

from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = logging.getLogger(__name__)
HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])
_MAX_REQUEST_ID: Final = 128
_request_id: ContextVar[str | None] = ContextVar("wallet_mcp_request_id", default=None)


def count(name: str, **dimensions: str) -> None:
    """One occurrence of `name`; never raises (a metric must not fail a request)."""
    try:
        with single_metric(name=name, unit=MetricUnit.Count, value=1) as metric:
            for key, value in dimensions.items():
                metric.add_dimension(name=key, value=value[:250] or "none")
    except Exception:  # a misconfigured namespace, for instance
        logger.warning("metric %s not emitted", name, exc_info=True)


@functools.cache
def _tracer() -> Any:
    from aws_lambda_powertools import Tracer  # the X-Ray SDK: imported only when enabled

    return Tracer()


def traced(handler: HandlerT) -> HandlerT:
    """The handler with Powertools Tracer's capture when ENABLE_XRAY_SDK=true, else unchanged."""
    if os.environ.get("ENABLE_XRAY_SDK", "false") != "true":
        return handler
    captured: HandlerT = _tracer().capture_lambda_handler(handler)
    return captured


def request_id() -> str | None:
    """API Gateway's id of the request being served (None outside a `correlated` handler)."""
    return _request_id.get()


def correlated(handler: Callable[[Mapping[str, Any], Any], Any]) -> Callable[[Mapping[str, Any], Any], Any]:
    """The Lambda handler with `request_id()` set from the event while it runs."""

    @functools.wraps(handler)
    def serve(event: Mapping[str, Any], context: Any) -> Any:
        context_of_request = event.get("requestContext") if isinstance(event, Mapping) else None
        value = context_of_request.get("requestId") if isinstance(context_of_request, Mapping) else None
        token = _request_id.set(value[:_MAX_REQUEST_ID] if isinstance(value, str) and value else None)
        try:
            return handler(event, context)
        finally:
            _request_id.reset(token)

    return serve
