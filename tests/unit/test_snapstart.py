"""SnapStart: the runtime hooks, simulated (wallet_mcp/coldstart.py, compose.Deployment.after_restore).

Lambda's Python runtime ships `snapshot_restore_py`; here a stand-in module records what is
registered, one saved state of `random` stands for the memory of a snapshot that two instances
resume from, and a local HTTP server counts the connections a botocore client opens.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.unit.fake_kms import FakeKms
from wallet_mcp import aws, coldstart
from wallet_mcp.compose import Deployment
from wallet_mcp.config import Settings
from wallet_mcp.storage.revocations import CachedRevocations, Revoked
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.owners import OwnerResolver

RUNTIME_STAND_IN = """
before, after = [], []
def register_before_snapshot(hook): before.append(hook); return hook
def register_after_restore(hook): after.append(hook); return hook
"""


def _run(code: str, *, pythonpath: list[str] | None = None) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*(pythonpath or []), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_a_loaded_function_hands_its_hooks_to_the_lambda_runtime(tmp_path: Path) -> None:
    (tmp_path / "snapshot_restore_py.py").write_text(RUNTIME_STAND_IN)
    code = (
        "import snapshot_restore_py as runtime\nfrom wallet_mcp import coldstart\n"
        "coldstart.loaded()\ncoldstart.loaded()\n"
        "print(runtime.before == [coldstart.snapshotting], runtime.after == [coldstart.restored])"
    )
    assert _run(code, pythonpath=[str(tmp_path)]) == "True True"


def test_without_the_runtime_module_nothing_is_registered() -> None:
    assert _run("from wallet_mcp import coldstart\nprint(coldstart.register_snapstart_hooks())") == "False"


def test_instances_resumed_from_one_snapshot_draw_their_own_random_numbers() -> None:
    snapshot = random.getstate()  # the memory every instance resumed from a snapshot starts with

    def instance(*, hook: bool) -> float:
        random.setstate(snapshot)
        if hook:
            coldstart.restored()
        return random.random()

    assert instance(hook=False) == instance(hook=False)  # what SnapStart does to `random` unhooked
    assert instance(hook=True) != instance(hook=True)


class _Counting(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a pooled connection is reused
    connections: ClassVar[set[int]] = set()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).connections.add(self.client_address[1])
        body = b'{"TableNames": []}'
        self.send_response(200)
        self.send_header("content-type", "application/x-amz-json-1.0")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def counting_server() -> Iterator[str]:
    _Counting.connections = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_after_a_restore_clients_open_new_connections_and_keep_working(
    counting_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = aws.session().create_client(
        "dynamodb",
        endpoint_url=counting_server,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    monkeypatch.setattr(aws, "_clients", {"dynamodb:snapstart-test": client})
    client.list_tables()
    client.list_tables()
    assert len(_Counting.connections) == 1  # pooled

    aws.drop_connections()
    assert client.list_tables()["TableNames"] == []
    assert len(_Counting.connections) == 2


class _Source:
    def __init__(self) -> None:
        self.polls = 0

    def live(self, *, now: int) -> Revoked:
        self.polls += 1
        return Revoked()


class _Clients:
    def __init__(self) -> None:
        self.reads = 0

    def get(self, client_id: str, *, now: int) -> Any:
        self.reads += 1
        return None


def test_a_restore_makes_the_deployment_fetch_keys_revocations_and_owners_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kms = FakeKms()
    key_id = kms.create_key()
    settings = Settings.from_env(
        {
            "PUBLIC_BASE_URL": "https://wallet.example",
            "SIGNING_KEY_ID": key_id,
            "VERIFICATION_KEY_IDS": key_id,
        }
    )
    closed: list[str] = []
    monkeypatch.setattr(aws, "drop_connections", lambda: closed.append("closed"))
    monkeypatch.setattr(coldstart, "_after_restore", [])  # only this test's deployment
    deployment = Deployment(settings, dynamodb=object(), kms=kms)  # type: ignore[arg-type]
    source, clients = _Source(), _Clients()
    deployment.revocation_cache = CachedRevocations(source, poll_seconds=3600)  # type: ignore[arg-type]
    deployment.owners = OwnerResolver(clients, ttl=3600)  # type: ignore[arg-type]
    client_token = AccessToken(
        subject="c1", client_id="c1", scopes=frozenset(), audience="a", issued_at=0, expires_at=0, jti="j"
    )

    def use() -> None:
        deployment.keys.get(key_id)
        deployment.revocation_cache.current()
        deployment.owners.lookup(client_token)

    use()
    use()
    assert (kms.calls.count("GetPublicKey"), source.polls, clients.reads) == (1, 1, 1)  # cached

    coldstart.restored()
    use()
    assert (kms.calls.count("GetPublicKey"), source.polls, clients.reads) == (2, 2, 2)
    assert closed == ["closed"]


def test_hooks_of_a_deployment_that_is_gone_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coldstart, "_after_restore", [])
    kms = FakeKms()
    key_id = kms.create_key()
    settings = Settings.from_env(
        {"PUBLIC_BASE_URL": "https://wallet.example", "VERIFICATION_KEY_IDS": key_id}
    )
    Deployment(settings, dynamodb=object(), kms=kms)  # type: ignore[arg-type]
    assert len(coldstart._after_restore) == 1
    coldstart.restored()  # the Deployment above is unreachable: its hook is skipped, not an error
    assert coldstart._after_restore == []
