"""The test's side of the client drivers in tests/clients/: start one, be the user at the real login
and consent pages whenever its SDK sends the user there, and collect its report.

The line protocol is in tests/clients/py1_client.py's docstring."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.support.browser import FormBrowser

DRIVERS = Path(__file__).resolve().parents[1] / "clients"


def node_driver(install: Path) -> Path:
    """tests/clients/ts_client.mjs, copied beside the install's node_modules: Node resolves a
    script's packages from the folder the script is in. Refreshed whenever the source changed."""
    source = (DRIVERS / "ts_client.mjs").read_bytes()
    target = install / "ts_client.mjs"
    if not target.exists() or target.read_bytes() != source:
        staged = target.with_name(f".ts_client.{os.getpid()}.mjs")
        staged.write_bytes(source)
        staged.replace(target)
    return target


@dataclass
class DriverRun:
    """One driver's run: its report, and what the user saw on the way."""

    name: str
    report: dict[str, Any]
    authorization_urls: list[str] = field(default_factory=list)
    pages_seen: list[str] = field(default_factory=list)
    stderr: str = ""
    wall_s: float = 0.0

    def failure(self) -> str:
        return f"{self.name}: {self.report.get('errors')}\n--- driver stderr ---\n{self.stderr[-4000:]}"


class DriverFailed(Exception):
    """The driver ended without a report (crashed, or hung past its time)."""


async def drive(
    name: str,
    command: Sequence[str],
    config: Mapping[str, Any],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 90.0,
) -> DriverRun:
    """Run `command` with `config` as its one JSON argument until it reports."""
    started = time.monotonic()
    browser = FormBrowser(DEMO_USERNAME, DEMO_PASSWORD)
    process = await asyncio.create_subprocess_exec(
        *command,
        json.dumps(dict(config)),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin and process.stdout and process.stderr
    stderr_task = asyncio.create_task(process.stderr.read())
    urls: list[str] = []
    report: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(timeout_s):
            while report is None:
                line = await process.stdout.readline()
                if not line:
                    break
                message = json.loads(line)
                if message["event"] == "authorize":
                    urls.append(message["url"])
                    landing = await browser.authorize(message["url"])
                    try:
                        process.stdin.write(json.dumps({"callback": landing.url}).encode() + b"\n")
                        await process.stdin.drain()
                    except ConnectionError:  # it gave up waiting; its report says why
                        pass
                elif message["event"] == "report":
                    report = message
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
    finally:
        await browser.aclose()
    stderr = (await stderr_task).decode(errors="replace")
    if report is None:
        raise DriverFailed(f"{name} ended without a report (exit {process.returncode}):\n{stderr[-4000:]}")
    return DriverRun(
        name=name,
        report=report,
        authorization_urls=urls,
        pages_seen=list(browser.pages_seen),
        stderr=stderr,
        wall_s=round(time.monotonic() - started, 3),
    )
