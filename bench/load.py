"""A bounded load run of the local stack on loopback: the token endpoint and MCP `tools/call` at 1, 8
and 32 concurrent clients, through the real gateway and handlers (each function in its worker
processes, at most GATEWAY_MAX_WORKERS at once, as Lambda's concurrency would be).

Counts every answer: 2xx, the designed 429s (rate limits), and anything else as an error. Run by
`make bench` after the in-process figures; `python bench/load.py` runs it alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devstack.emulator import MotoServer  # noqa: E402
from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET  # noqa: E402

CONCURRENCY = (1, 8, 32)
REQUESTS_PER_LEVEL = 240
WORKERS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalStack:
    def __init__(self, parameters: str) -> None:
        self.emulator = MotoServer("127.0.0.1", _free_port())
        self.port = _free_port()
        self.base_url = f"http://localhost:{self.port}"
        self.parameters = parameters
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="wallet-mcp-load-", suffix=".log", delete=False)  # noqa: SIM115

    def __enter__(self) -> LocalStack:
        self.emulator.start()
        env = {
            **os.environ,
            "PORT": str(self.port),
            "AWS_ENDPOINT_URL": self.emulator.url,
            "STACK_PARAMETERS": self.parameters,
            "GATEWAY_MAX_WORKERS": str(WORKERS),
        }
        env.pop("PUBLIC_BASE_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "dev"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/.well-known/oauth-authorization-server", timeout=2).is_success:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("the local stack did not come up")

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        self.emulator.stop()
        self.log.close()
        errors = [
            line for line in Path(self.log.name).read_text(errors="replace").splitlines() if "Error" in line
        ]
        if errors:
            print(f"  ({len(errors)} error lines in {self.log.name}, e.g. {errors[-1][:160]})")


async def _level(concurrency: int, send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]) -> dict:
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    remaining = REQUESTS_PER_LEVEL
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client_loop(http: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                response = await send(http)
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            latencies.append(time.perf_counter() - started)
            label = (
                "ok" if 200 <= status < 300 else str(status) if status in (429, 503) else f"error {status}"
            )
            outcomes[label] += 1

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "throughput": len(latencies) / elapsed,
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
        "outcomes": outcomes,
    }


def _print(name: str, concurrency: int, result: dict) -> None:
    outcomes = ", ".join(f"{k}={v}" for k, v in sorted(result["outcomes"].items()))
    figures = f"{result['throughput']:9.1f} {result['p50']:9.1f} {result['p99']:9.1f}"
    print(f"{name:36} {concurrency:>5} {figures}  {outcomes}")


async def _run(stack: LocalStack, label: str) -> None:
    cc = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    async with httpx.AsyncClient() as http:
        token = (await http.post(f"{stack.base_url}/oauth/token", data=cc)).json()["access_token"]
    mcp_headers = {
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
    }
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "getTotalBalance", "arguments": {}},
    }
    for concurrency in CONCURRENCY:

        async def token_request(http: httpx.AsyncClient) -> httpx.Response:
            return await http.post(f"{stack.base_url}/oauth/token", data=cc)

        _print(f"POST /oauth/token ({label})", concurrency, await _level(concurrency, token_request))

    for concurrency in CONCURRENCY:

        async def tool_call(http: httpx.AsyncClient) -> httpx.Response:
            return await http.post(f"{stack.base_url}/mcp", headers=mcp_headers, json=call)

        _print("POST /mcp tools/call getTotalBalance", concurrency, await _level(concurrency, tool_call))


def main() -> int:
    print(
        f"Load: the local stack on loopback ({WORKERS} workers per function), "
        f"{REQUESTS_PER_LEVEL} requests per level.\n"
        "  429 = a designed rate-limit answer; anything else but 200 is an error. The emulator\n"
        "  handles one request at a time (devstack/moto_atomic.py), as atomic as DynamoDB."
    )
    print(f"{'operation':36} {'conc.':>5} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9}  answers")
    with LocalStack("TokenRequestsPerClientPerMinute=1000000") as stack:
        asyncio.run(_run(stack, "limit raised"))
    with LocalStack("") as stack:  # the default limit: 120 client-credentials tokens per client per minute
        cc = {
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        }

        async def token_request(http: httpx.AsyncClient) -> httpx.Response:
            return await http.post(f"{stack.base_url}/oauth/token", data=cc)

        _print("POST /oauth/token (default limits)", 32, asyncio.run(_level(32, token_request)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
