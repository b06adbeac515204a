"""A local stand-in for API Gateway (HTTP API, payload 2.0) in front of the real Lambda handlers.

Routes come from the template's `AWS::ApiGatewayV2::Route` resources. Each function runs in its
own worker processes (`devstack.worker`) with the environment the template gives it, one
invocation per worker at a time, as Lambda does; more workers start when requests overlap, up
to a per-function limit, after which requests queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devstack.events import HttpRequest, HttpResponse, build_event, gateway_error, parse_result
from devstack.template import FunctionSpec, RouteSpec
from devstack.worker import _HEADER

logger = logging.getLogger("devstack.gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024
"""API Gateway's payload limit for HTTP APIs."""

_PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "SSL_CERT_FILE")
"""What a worker inherits from the gateway's environment besides its own (SSL_CERT_FILE lets a
development CA be trusted, e.g. for metadata documents served on loopback)."""


# --- routing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CompiledRoute:
    route: RouteSpec
    pattern: re.Pattern[str]
    rank: tuple[int, int, int]


class Router:
    """HTTP API route selection: the most specific path wins, then an exact method over ANY."""

    def __init__(self, routes: list[RouteSpec]) -> None:
        compiled = []
        for route in routes:
            if route.path == "$default":
                compiled.append(_CompiledRoute(route, re.compile(r".*"), (3, 0, 0)))
                continue
            regex, greedy, params = "", False, 0
            for segment in route.path.strip("/").split("/"):
                if m := re.fullmatch(r"\{(\w+)\+\}", segment):
                    regex += rf"/(?P<{m.group(1)}>.+)"
                    greedy = True
                elif m := re.fullmatch(r"\{(\w+)\}", segment):
                    regex += rf"/(?P<{m.group(1)}>[^/]+)"
                    params += 1
                else:
                    regex += "/" + re.escape(segment)
            rank = (
                2 if greedy else (1 if params else 0),
                -len(route.path),
                1 if route.method == "ANY" else 0,
            )
            compiled.append(_CompiledRoute(route, re.compile(f"^{regex or '/'}$"), rank))
        self._routes = sorted(compiled, key=lambda c: c.rank)

    def match(self, method: str, path: str) -> tuple[RouteSpec, dict[str, str]] | None:
        candidates = []
        for compiled in self._routes:
            found = compiled.pattern.match(path)
            if found and compiled.route.method in (method, "ANY"):
                candidates.append((compiled.rank, compiled.route, found.groupdict()))
        if not candidates:
            return None
        candidates.sort(key=lambda c: c[0])
        _, route, params = candidates[0]
        return route, params


# --- workers ---------------------------------------------------------------------------------


class WorkerCrashed(Exception):
    pass


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.init_ms: float | None = None

    async def read_frame(self) -> Any:
        assert self.process.stdout is not None
        try:
            header = await self.process.stdout.readexactly(_HEADER.size)
            (size,) = _HEADER.unpack(header)
            payload = await self.process.stdout.readexactly(size)
        except (asyncio.IncompleteReadError, struct.error) as exc:
            raise WorkerCrashed(self.name) from exc
        return json.loads(payload)

    async def write_frame(self, message: Any) -> None:
        assert self.process.stdin is not None
        payload = json.dumps(message, separators=(",", ":")).encode("utf-8")
        self.process.stdin.write(_HEADER.pack(len(payload)) + payload)
        await self.process.stdin.drain()

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


class FunctionPool:
    """Warm workers of one function."""

    def __init__(self, spec: FunctionSpec, base_env: Mapping[str, str], max_workers: int) -> None:
        self.spec = spec
        self._env = self._environment(base_env)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._slots = asyncio.Semaphore(max_workers)
        self._log_tasks: set[asyncio.Task[None]] = set()

    def _environment(self, base_env: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in _PASSTHROUGH_ENV}
        env.update(base_env)
        env.update(self.spec.environment)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": self.spec.logical_id,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "LAMBDA_TASK_ROOT": str(self.spec.code_uri),
                "_HANDLER": self.spec.handler,
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        return env

    async def _spawn(self) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "devstack.worker",
            str(self.spec.code_uri),
            self.spec.handler,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env,
            cwd=str(self.spec.code_uri),
            limit=MAX_BODY_BYTES * 2,
        )
        worker = _Worker(process, self.spec.logical_id)
        task = asyncio.create_task(self._forward_logs(worker))
        self._log_tasks.add(task)
        task.add_done_callback(self._log_tasks.discard)
        ready = await worker.read_frame()
        if not ready.get("ready"):
            worker.kill()
            raise WorkerCrashed(f"{self.spec.logical_id} failed to initialise: {ready.get('init_error')}")
        worker.init_ms = ready.get("init_ms")
        self._all.add(worker)
        return worker

    async def _forward_logs(self, worker: _Worker) -> None:
        assert worker.process.stderr is not None
        prefix = f"[{self.spec.logical_id}] "
        while line := await worker.process.stderr.readline():
            sys.stdout.write(prefix + line.decode("utf-8", "replace"))
            sys.stdout.flush()

    async def warm(self) -> float | None:
        async with self._slots:
            worker = await self._spawn()
            self._idle.append(worker)
            return worker.init_ms

    async def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The worker's reply frame: `{"result": ...}` or `{"error": ...}`; raises on timeout or crash."""
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._spawn()
            try:
                await worker.write_frame({"event": event, "timeout": self.spec.timeout})
                reply: dict[str, Any] = await asyncio.wait_for(worker.read_frame(), timeout=self.spec.timeout)
            except BaseException:
                # a timed-out, crashed or cancelled invocation leaves the worker in an unknown state
                worker.kill()
                self._all.discard(worker)
                raise
            self._idle.append(worker)
            return reply

    async def close(self) -> None:
        for worker in list(self._all):
            worker.kill()
        for worker in list(self._all):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.process.wait(), timeout=5)
        self._all.clear()
        self._idle.clear()


# --- the gateway -----------------------------------------------------------------------------

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class Gateway:
    def __init__(
        self,
        routes: list[RouteSpec],
        functions: Mapping[str, FunctionSpec],
        *,
        base_env: Mapping[str, str],
        forwarded_proto: str,
        max_workers: int = 4,
    ) -> None:
        missing = {r.function for r in routes} - set(functions)
        if missing:
            raise ValueError(f"routes point at unknown functions: {sorted(missing)}")
        self.router = Router(routes)
        self.pools = {name: FunctionPool(spec, base_env, max_workers) for name, spec in functions.items()}
        self._forwarded_proto = forwarded_proto

    async def start(self) -> dict[str, float | None]:
        """Start one warm worker per function (in parallel); their init times in ms."""
        names = list(self.pools)
        times = await asyncio.gather(*(self.pools[n].warm() for n in names))
        return dict(zip(names, times, strict=True))

    async def close(self) -> None:
        await asyncio.gather(*(pool.close() for pool in self.pools.values()))

    async def handle(self, request: HttpRequest) -> HttpResponse:
        if len(request.body) > MAX_BODY_BYTES:
            return gateway_error(413, "Request Entity Too Large")
        matched = self.router.match(request.method, request.path)
        if matched is None:
            return gateway_error(404, "Not Found")
        route, params = matched
        event = build_event(
            request,
            route_key=route.route_key,
            path_parameters=params or None,
            forwarded_proto=self._forwarded_proto,
        )
        started = time.perf_counter()
        try:
            reply = await self.pools[route.function].invoke(event)
        except TimeoutError:
            logger.error("%s timed out", route.function)
            return gateway_error(503, "Service Unavailable")
        except WorkerCrashed as exc:
            logger.error("%s crashed: %s", route.function, exc)
            return gateway_error(500, "Internal Server Error")
        finally:
            logger.debug(
                "%s %s -> %s in %.1f ms",
                request.method,
                request.path,
                route.function,
                (time.perf_counter() - started) * 1000,
            )
        if "error" in reply:
            return gateway_error(500, "Internal Server Error")
        try:
            return parse_result(reply["result"])
        except (KeyError, TypeError, ValueError):
            return gateway_error(500, "Internal Server Error")

    # --- ASGI ----------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_BODY_BYTES:
                chunks.append(chunk)
            if not message.get("more_body"):
                break
        if size > MAX_BODY_BYTES:
            await self._send(send, gateway_error(413, "Request Entity Too Large"))
            return
        client = scope.get("client") or ("127.0.0.1", 0)
        request = HttpRequest(
            method=scope["method"],
            path=scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0],
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=b"".join(chunks),
            source_ip=client[0],
            protocol=f"HTTP/{scope.get('http_version', '1.1')}",
        )
        await self._send(send, await self.handle(request))

    @staticmethod
    async def _send(send: Any, response: HttpResponse) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        if not any(k == b"content-length" for k, _ in headers):
            headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
