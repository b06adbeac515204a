"""`make dev` as a user runs it: the emulator is its own child, and Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.local_stack import ROOT, free_port

pytestmark = pytest.mark.flow


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc: no extra dependency)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_whole_stack_comes_up_and_stops_on_a_signal_leaving_no_process(tmp_path, sig):
    port, moto_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "PUBLIC_BASE_URL")}
    env.update({"PORT": str(port), "MOTO_PORT": str(moto_port), "PYTHONUNBUFFERED": "1"})
    log = (tmp_path / "dev.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "dev"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                response = httpx.get(
                    f"http://localhost:{port}/.well-known/oauth-authorization-server", timeout=2
                )
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "dev.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(0.2)
        assert response.json()["issuer"] == f"http://localhost:{port}"
        # the banner follows the socket's first listen by up to one poll of uvicorn's `started` flag,
        # so a request can be answered a moment before it is printed
        deadline = time.monotonic() + 5
        output = (tmp_path / "dev.log").read_text()
        while "demo-password" not in output and time.monotonic() < deadline:
            time.sleep(0.1)
            output = (tmp_path / "dev.log").read_text()
        assert f"http://localhost:{port}/mcp" in output and "demo-password" in output
        processes = descendants(process.pid)
        assert len(processes) >= 6  # the emulator and one worker per function at least

        os.killpg(process.pid, sig)  # what Ctrl-C does to the foreground process group
        assert process.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while any(alive(p) for p in processes) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in processes if alive(p)]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
