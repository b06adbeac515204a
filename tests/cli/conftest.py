"""Running `wallet-mcp` as a user would: the installed console script in a subprocess, a clean
environment, its own working and config directories, and `$BROWSER` set to a headless driver."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from devstack.local import AWS_ENV
from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.support.local_stack import ROOT, LocalStack, running_stack

WALLET_MCP = str(Path(sys.executable).with_name("wallet-mcp"))
HEADLESS_BROWSER = Path(__file__).with_name("headless_browser.py")
BALANCE_TEXT = re.compile(
    r"^💰 Total Balance: \$[0-9,]+\.[0-9]{2}\nAccounts: [0-9]+\n"
    r"Retrieved with OAuth scope: wallet:accounts:read$"
)
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
OPAQUE_SECRETS = re.compile(r"\b(rt_|wpat_|secret_)[A-Za-z0-9_-]{20,}")


@pytest.fixture
def anyio_backend():
    return "asyncio"


def client_credentials_env(stack: LocalStack, **extra: str) -> dict[str, str]:
    """The seed's `.env` for this stack (MCP_SCOPE left out: every scope the client has)."""
    return {
        "BACKEND_API_URL": stack.base_url,
        "AUTHORIZATION_SERVER_URL": stack.base_url,
        "MCP_CLIENT_ID": DEMO_CLIENT_ID,
        "MCP_CLIENT_SECRET": DEMO_CLIENT_SECRET,
        **extra,
    }


def aws_env(stack: LocalStack) -> dict[str, str]:
    return {**AWS_ENV, "AWS_ENDPOINT_URL": stack.endpoint_url}


@dataclass
class Cli:
    """`wallet-mcp` with a clean environment: only what the test gives it, plus PATH and HOME."""

    workdir: Path
    config_dir: Path
    browser_log: Path
    base_env: dict[str, str] = field(default_factory=dict)

    def environment(self, env: dict[str, str] | None = None) -> dict[str, str]:
        return {**self.base_env, **(env or {})}

    def run(
        self, *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [WALLET_MCP, *args],
            env=self.environment(env),
            cwd=self.workdir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    async def arun(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """`run` from an async test, without blocking its event loop (the bridge keeps talking)."""
        return await anyio.to_thread.run_sync(lambda: self.run(*args, **kwargs))

    @asynccontextmanager
    async def bridge(
        self, env: dict[str, str], stderr: Path, args: tuple[str, ...] = ()
    ) -> AsyncIterator[Client]:
        """`wallet-mcp serve-stdio` as Claude Desktop starts it, with the SDK client on its stdio."""
        params = StdioServerParameters(
            command=WALLET_MCP, args=["serve-stdio", *args], env=self.environment(env), cwd=self.workdir
        )
        with stderr.open("a", encoding="utf-8") as errlog:
            async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=60) as client:
                yield client

    def browser_visits(self) -> list[str]:
        return self.browser_log.read_text().splitlines() if self.browser_log.exists() else []


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    workdir = tmp_path / "work"
    workdir.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    browser_log = tmp_path / "browser.jsonl"
    config_dir = tmp_path / "config" / "wallet-mcp"
    return Cli(
        workdir=workdir,
        config_dir=config_dir,
        browser_log=browser_log,
        base_env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "WALLET_MCP_CONFIG_DIR": str(config_dir),
            # the headless browser imports tests.support from the repository
            "PYTHONPATH": str(ROOT),
            "BROWSER": f"{shlex.quote(sys.executable)} {shlex.quote(str(HEADLESS_BROWSER))} %s",
            "WALLET_TEST_BROWSER_LOG": str(browser_log),
        },
    )


def children_running(marker: str) -> list[int]:
    """Processes whose parent is this test process and whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def short_lived_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Access tokens live 4 seconds; rotated refresh tokens have no grace window."""
    with running_stack(
        tmp_path_factory.mktemp("short-stack"),
        parameters={"AccessTokenTtlSeconds": "4", "RefreshTokenReuseGraceSeconds": "0"},
    ) as stack:
        yield stack
