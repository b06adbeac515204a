"""AWS clients, built once per cold start and shared by everything in the process.

The endpoint comes from the standard `AWS_ENDPOINT_URL` variable (botocore reads it), so the
same code talks to AWS when deployed and to the embedded emulator locally. Retries use
botocore's standard mode (exponential backoff with jitter); timeouts are short because every
caller is behind an API Gateway request with its own deadline.

Clients come from a plain botocore session, not boto3: boto3 adds resources and S3 transfers,
which nothing here uses, and importing it costs ~70 ms of every cold start (it loads s3transfer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import botocore.config
import botocore.session

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_kms.client import KMSClient

_CONFIG = botocore.config.Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "total_max_attempts": 3},
    tcp_keepalive=True,
)

_BEST_EFFORT_CONFIG = botocore.config.Config(
    connect_timeout=0.5,
    read_timeout=0.5,
    retries={"mode": "standard", "total_max_attempts": 1},
    tcp_keepalive=True,
)
"""For writes nobody waits on (the connection log): one attempt, short timeouts, so a failing or
slow table costs a request at most about a second, never botocore's backoff."""

_lock = threading.Lock()
_session: botocore.session.Session | None = None
_clients: dict[str, Any] = {}


def session() -> botocore.session.Session:
    global _session
    with _lock:
        if _session is None:
            _session = botocore.session.get_session()
        return _session


def session_events() -> Any:
    """The session's event emitter: hooks registered here reach every client built afterwards."""
    return session().get_component("event_emitter")


def _client(service: str, *, flavour: str = "", config: botocore.config.Config = _CONFIG) -> Any:
    key = f"{service}:{flavour}" if flavour else service
    client = _clients.get(key)
    if client is None:
        client = session().create_client(service, config=config)
        with _lock:
            client = _clients.setdefault(key, client)
    return client


def dynamodb() -> DynamoDBClient:
    return _client("dynamodb")  # type: ignore[no-any-return]


def dynamodb_best_effort() -> DynamoDBClient:
    """A second DynamoDB client for best-effort writes (`_BEST_EFFORT_CONFIG`), built on first use."""
    return _client("dynamodb", flavour="best-effort", config=_BEST_EFFORT_CONFIG)  # type: ignore[no-any-return]


def kms() -> KMSClient:
    return _client("kms")  # type: ignore[no-any-return]


def drop_connections() -> None:
    """Close every client's pooled connections (SnapStart: the sockets a snapshot holds were opened
    by another instance, long ago). The clients stay usable: their next call opens a new one."""
    with _lock:
        clients = list(_clients.values())
    for client in clients:
        client.close()


def ssm() -> Any:
    """SSM Parameter Store (upstream identity providers' client secrets)."""
    return _client("ssm")


def secretsmanager() -> Any:
    """Secrets Manager (upstream identity providers' client secrets)."""
    return _client("secretsmanager")


TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "KMSInternalException",
        "DependencyTimeoutException",
        "KeyUnavailableException",
        "LimitExceededException",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)
"""AWS errors that mean "try again": the request was fine, the dependency was not."""


def is_transient(exc: BaseException) -> bool:
    """True for a throttled, failing or unreachable AWS dependency (after botocore's own retries)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return exc.response.get("Error", {}).get("Code") in TRANSIENT_ERROR_CODES or status >= 500
    return isinstance(exc, BotoCoreError)


def on_api_call(callback: Callable[[str, str], None]) -> None:
    """Call `callback(service, operation)` before every AWS API call made through these clients.

    Used by the benchmark to count calls per operation (botocore's `before-call` event).
    """

    def hook(model: Any, **_: Any) -> None:
        callback(model.service_model.service_name, model.name)

    session_events().register("before-call.*.*", hook)
    with _lock:  # clients copy the session's hooks when built: reach the ones built already
        for client in _clients.values():
            client.meta.events.register("before-call.*.*", hook)


def on_api_response(callback: Callable[[str, str, dict[str, Any]], None]) -> None:
    """Call `callback(service, operation, parsed_response)` after every AWS API call (benchmark)."""

    def hook(model: Any, parsed: dict[str, Any], **_: Any) -> None:
        callback(model.service_model.service_name, model.name, parsed)

    session_events().register("after-call.*.*", hook)
    with _lock:
        for client in _clients.values():
            client.meta.events.register("after-call.*.*", hook)


def reset() -> None:
    """Forget the session and clients (tests that swap the AWS backend between cases)."""
    global _session
    with _lock:
        _session = None
        _clients.clear()
