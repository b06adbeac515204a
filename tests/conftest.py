"""Shared test fixtures: the AWS emulator in-process (moto) with the template's own tables and key,
and each function's real Lambda handler loaded with the environment the template gives it."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.session
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from devstack.events import HttpRequest, HttpResponse, build_event, parse_result
from devstack.local import AWS_ENV, bring_up, local_stack
from devstack.moto_kms import pss_salt_like_aws
from devstack.seed import seed_wallet
from devstack.template import REGION, Stack
from devstack.worker import LambdaContext
from tests.support.local_stack import pki, stack  # noqa: F401 - session fixtures for flow and UI tests
from tests.support.scheduling import pytest_collection_modifyitems, pytest_configure  # noqa: F401 - hooks
from tests.support.upstream_oidc import upstream_stack  # noqa: F401 - the stack with an OpenID provider
from wallet_mcp import aws, config
from wallet_mcp.credentials import passwords

pss_salt_like_aws()  # moto's KMS signs PS256 as AWS KMS does (devstack/moto_kms.py)

BASE_URL = "http://localhost:3000"
EVENTS = Path(__file__).parent / "events"
_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def _sessions_share_one_model_loader() -> Iterator[None]:
    """Every botocore session in the test process reads service models through one loader.

    Tests start each case from fresh AWS clients (`aws.reset()`), and a fresh session parses the
    service's JSON model again: ~50 ms per client, a quarter of a handler test's time. The models
    never change, so the sessions share one (caching) loader; the sessions and clients, with their
    event hooks, stay per test."""
    loader = botocore.session.get_session().get_component("data_loader")
    new_session = botocore.session.get_session

    def get_session(env_vars: Any = None) -> botocore.session.Session:
        session = new_session(env_vars)
        session.register_component("data_loader", loader)
        return session

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "get_session", get_session)
        yield


PRODUCTION_KDF = {"_LOG2_N": passwords._LOG2_N, "_R": passwords._R, "_P": passwords._P}
"""scrypt's parameters as deployed (N=2^15, r=8, p=3: ~0.1 s per password)."""


@pytest.fixture(scope="session", autouse=True)
def _a_cheap_password_kdf() -> Iterator[None]:
    """In-process tests hash and verify passwords with scrypt at N=2^10, p=1 (~1 ms).

    The deployed parameters cost ~0.1 s of CPU per sign-in, user creation or unknown-user burn,
    which was a third of the handler tests' time. Hashes carry their parameters, so every code
    path is the same; `tests/unit/test_passwords.py` checks the deployed parameters with the
    `production_kdf` fixture, and the local stacks of the flow, UI and CLI tests (separate
    processes) keep them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_LOG2_N", 10)
        patch.setattr(passwords, "_P", 1)
        yield


@pytest.fixture
def production_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt with the deployed parameters, for the tests of the KDF itself."""
    for name, value in PRODUCTION_KDF.items():
        monkeypatch.setattr(passwords, name, value)


class _Emulator:
    """moto in-process for one test module: the template's tables and key are created once, and each
    test starts from the state right after that (`restore`), which costs milliseconds where creating
    the stack again cost a third of a second (and seeding the wallet most of a second)."""

    def __init__(self, template_stack: Stack) -> None:
        self.stack = template_stack
        self._snapshots: dict[str, dict[str, Any]] = {}

    def save(self, name: str) -> None:
        self._snapshots[name] = {
            table_name: copy.deepcopy(table.items) for table_name, table in _dynamodb_backend().tables.items()
        }

    def has(self, name: str) -> bool:
        return name in self._snapshots

    def restore(self, name: str) -> None:
        """Every table's items as saved; the services tests create things in (SSM, Secrets Manager)
        emptied. Keys (KMS) and the tables themselves are never changed by a test."""
        saved = self._snapshots[name]
        tables = _dynamodb_backend().tables
        assert set(tables) == set(saved), "a test created or deleted a table"
        for table_name, table in tables.items():
            table.items = copy.deepcopy(saved[table_name])
        for backends in (ssm_backends, secretsmanager_backends):
            for account in backends.values():
                account.reset()


def _dynamodb_backend() -> Any:
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]


@pytest.fixture(scope="module")
def _emulator() -> Iterator[_Emulator]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AWS_ENV.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            aws.reset()
            emulator = _Emulator(local_stack(BASE_URL))
            bring_up(emulator.stack, None, wallet=False)
            emulator.save("stack")
            yield emulator
        aws.reset()
        config.settings.cache_clear()


@pytest.fixture
def aws_stack(_emulator: _Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """moto in-process, with every table and key of the template created and the demo user and client
    seeded (the demo wallet only for tests that ask for `demo_wallet`), as new for every test."""
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset()
    _emulator.restore("stack")
    yield _emulator.stack
    aws.reset()
    config.settings.cache_clear()


@pytest.fixture
def demo_wallet(aws_stack: Stack, _emulator: _Emulator) -> None:
    """The demo user's seeded wallet (3 accounts, $5,432.10, 32 transactions)."""
    if _emulator.has("wallet"):
        _emulator.restore("wallet")
        return
    seed_wallet(aws.dynamodb(), aws_stack.physical_ids["WalletTable"])
    _emulator.save("wallet")


def with_parameters(deployed: Stack, **parameters: str) -> Stack:
    """The same deployed resources, redeployed with other parameter values."""
    rotated = Stack(deployed.template, parameters={**deployed.parameters, **parameters})
    rotated.physical_ids = dict(deployed.physical_ids)
    return rotated


class Function:
    """One function's module, loaded as Lambda would, and a way to call it with HTTP-like requests."""

    def __init__(self, module: ModuleType, template_stack: Stack, logical_id: str) -> None:
        self.module = module
        self.stack = template_stack
        self.logical_id = logical_id

    def invoke_event(self, event: dict[str, Any]) -> HttpResponse:
        context = LambdaContext(self.logical_id, 1024, deadline=float("inf"))
        return parse_result(self.module.lambda_handler(event, context))

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | dict[str, Any] = b"",
        query: str = "",
        cookies: dict[str, str] | None = None,
        source_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        """`source_ip` is the socket address API Gateway saw (`requestContext.http.sourceIp`)."""
        hdrs = {"host": "localhost:3000", "user-agent": "pytest", **(headers or {})}
        if cookies:
            hdrs["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if isinstance(body, dict):
            body = json.dumps(body)
            hdrs.setdefault("content-type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        route = self.stack.routes()
        matched = next((r for r in route if r.path == path and r.method in (method, "ANY")), None)
        route_key = matched.route_key if matched else "$default"
        event = build_event(
            HttpRequest(method, path, query, list(hdrs.items()), body, source_ip=source_ip),
            route_key=route_key,
            path_parameters=None,
            forwarded_proto="http",
        )
        return self.invoke_event(event)


@pytest.fixture
def load_function(aws_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Function]:
    def load(logical_id: str, variant: Stack | None = None) -> Function:
        """The function as `variant` (default: the local stack) configures it."""
        configured = variant or aws_stack
        spec = configured.functions()[logical_id]
        for name, value in spec.environment.items():
            monkeypatch.setenv(name, value)
        config.settings.cache_clear()
        module_name = f"_fn_{logical_id}_{next(_counter)}"
        module_spec = importlib.util.spec_from_file_location(module_name, spec.code_uri / "app.py")
        assert module_spec and module_spec.loader
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
        return Function(module, configured, logical_id)

    return load


def response_json(response: HttpResponse) -> Any:
    return json.loads(response.body)


def header(response: HttpResponse, name: str) -> str | None:
    return next((v for k, v in response.headers if k == name.lower()), None)


def set_cookies(response: HttpResponse) -> dict[str, str]:
    """The cookies a response sets (name -> value)."""
    found = {}
    for name, value in response.headers:
        if name == "set-cookie":
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            found[key.strip()] = val.strip().strip('"')
    return found


def cookie_attributes(response: HttpResponse, cookie: str) -> str | None:
    for name, value in response.headers:
        if name == "set-cookie" and value.startswith(f"{cookie}="):
            return value
    return None
