"""The local stack as `make dev` runs it: the emulator, then `python -m devstack dev` in a subprocess.

Session-wide: flow tests and browser tests share one stack; `running_stack` starts another (with
other template parameters) for the tests that need one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from devstack.emulator import MotoServer
from devstack.local import AWS_ENV
from tests.support.tls import TestPki, make_pki

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalStack:
    base_url: str
    endpoint_url: str
    log_path: Path

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=AWS_ENV["AWS_REGION"],
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, pki: TestPki) -> Iterator[LocalStack]:
    # the functions trust the test CA, for metadata documents served over HTTPS on loopback. Every
    # flow and UI module shares this stack: with the default 20 registrations an hour from one
    # address, whether a module could still register depended on how many ran before it (the
    # limit itself is tested in tests/handlers/test_rate_limits.py).
    with running_stack(
        tmp_path_factory.mktemp("stack"),
        parameters={"RegistrationsPerAddressPerHour": "10000"},
        env={"SSL_CERT_FILE": str(pki.bundle_file)},
    ) as local:
        yield local


@contextmanager
def running_stack(
    workdir: Path,
    *,
    port: int | None = None,
    emulator_url: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[LocalStack]:
    """`python -m devstack dev` until the block ends: on `port` (default: a free one), against the
    emulator at `emulator_url` (default: one of its own), with template parameter overrides."""
    emulator = None
    if emulator_url is None:
        emulator = MotoServer("127.0.0.1", free_port())
        emulator.start()
        emulator_url = emulator.url
    port = port or free_port()
    base_url = f"http://localhost:{port}"
    log_path = workdir / "dev.log"
    process_env = {
        **os.environ,
        "PORT": str(port),
        "AWS_ENDPOINT_URL": emulator_url,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    if parameters:
        process_env["STACK_PARAMETERS"] = json.dumps(dict(parameters))
    process_env.pop("PUBLIC_BASE_URL", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "dev"],
            cwd=ROOT,
            env=process_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the local stack exited:\n{log_path.read_text()}")
            try:
                if (
                    httpx.get(f"{base_url}/.well-known/oauth-authorization-server", timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local stack did not come up:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield LocalStack(base_url=base_url, endpoint_url=emulator_url, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        if emulator is not None:
            emulator.stop()
