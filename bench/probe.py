"""One function in a fresh process: import its handler, serve a first request, then warm ones.

Run by bench/run.py with the function's environment (as the template gives it) pointing at the
emulator. Prints one JSON line: import and first-request times, warm latencies, and the AWS
calls each phase made (counted with botocore's before-call event).

With a second operation name (`probe.py DIR A N B`), the warm runs are N pairs of A and B in the
same process, in alternating order (A B, B A, ...) so that drift of the machine or the process
falls on both alike; `paired_ms` lists each pair's B - A in wall-clock time, `paired_cpu_ms` in
the process's CPU time (the proof check is CPU work; the wall clock adds other processes' turns).
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dynamo_units import items_read, read_units
from bench.operations import OPERATIONS
from devstack.worker import LambdaContext


def main() -> None:
    code_dir, operation_name, warm_runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    operation = OPERATIONS[operation_name]
    other = OPERATIONS[sys.argv[4]] if len(sys.argv) > 4 else None
    calls: Counter[str] = Counter()

    started = time.perf_counter()
    cpu_started = time.process_time()
    sys.path.insert(0, code_dir)
    spec = importlib.util.spec_from_file_location("app", Path(code_dir) / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    imported = time.perf_counter()

    from wallet_mcp import aws  # the module the handler uses, already imported by it

    units: Counter[str] = Counter()
    in_aws = {"started": 0.0, "total": 0.0}

    # BENCH_AWS_LATENCY_MS: each AWS call waits this long first, in its own thread, as a round trip
    # to DynamoDB in the same region would (the emulator on loopback answers in microseconds of
    # network): what runs concurrently shows as such
    latency = float(os.environ.get("BENCH_AWS_LATENCY_MS", "0")) / 1000

    def count_call(service: str, op: str) -> None:
        calls.update([f"{service}:{op}"])
        if latency:
            time.sleep(latency)
        in_aws["started"] = time.perf_counter()

    def count_reads(service: str, op: str, parsed: dict) -> None:
        in_aws["total"] += time.perf_counter() - in_aws["started"]
        if service == "dynamodb" and op in ("Query", "GetItem", "BatchGetItem"):
            units.update({"read_units": read_units(parsed), "items_read": len(items_read(parsed))})

    aws.on_api_call(count_call)

    aws.on_api_response(count_reads)

    bodies: list[str] = []

    own: list[float] = []

    def invoke(which=operation) -> float:
        event = which.event(bodies[-1] if bodies else None)
        in_aws["total"] = 0.0
        t0 = time.perf_counter()
        result = module.lambda_handler(event, LambdaContext("bench", 1024, time.monotonic() + 30))
        elapsed = time.perf_counter() - t0
        own.append(elapsed - in_aws["total"])
        bodies.append(which.check(result))
        return elapsed

    first = invoke()
    cpu_ms = (time.process_time() - cpu_started) * 1000
    first_calls = dict(calls)
    calls.clear()
    units.clear()
    paired: list[float] = []
    paired_cpu: list[float] = []

    def timed(which) -> tuple[float, float]:
        """Wall-clock and CPU seconds of one request (CPU time: what another process on a
        shared machine does not add to)."""
        cpu = time.process_time()
        wall = invoke(which)
        return wall, time.process_time() - cpu

    if other is not None:
        invoke(other)  # B's first request too, before any pair
        calls.clear()
        units.clear()
        for i in range(warm_runs):
            if i % 2:
                (b, b_cpu), (a, a_cpu) = timed(other), timed(operation)
            else:
                (a, a_cpu), (b, b_cpu) = timed(operation), timed(other)
            paired.append((b - a) * 1000)
            paired_cpu.append((b_cpu - a_cpu) * 1000)
        warm_runs *= 2
        warm: list[float] = []
    else:
        warm = [invoke() for _ in range(warm_runs)]
    warm_calls = {k: v / warm_runs for k, v in calls.items()} if warm_runs else {}
    print(
        json.dumps(
            {
                "import_ms": (imported - started) * 1000,
                "first_ms": first * 1000,
                "cpu_ms": cpu_ms,
                "warm_ms": [w * 1000 for w in warm],
                "warm_own_ms": [o * 1000 for o in own[1:]],
                "first_calls": first_calls,
                "warm_calls": warm_calls,
                "warm_p50": statistics.median(warm) * 1000 if warm else None,
                "first_body": bodies[0],
                "warm_read_units": units["read_units"] / warm_runs if warm_runs else None,
                "warm_items_read": units["items_read"] / warm_runs if warm_runs else None,
                "paired_ms": paired,
                "paired_cpu_ms": paired_cpu,
            }
        )
    )


if __name__ == "__main__":
    main()
