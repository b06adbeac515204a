"""What a read tool call's audit write costs beside the read, and in sequence after it.

A read's `PutItem` (mcp_server/tool_audit.py) starts in a thread as the call begins and runs beside
the tool's own `Query`. This measures the two shapes in one process against the emulator, each
AWS call first waiting `--latency` ms as an in-region round trip would (the emulator on loopback
has next to no network time, so without it nothing shows the overlap):

    .venv/bin/python bench/audit_overlap.py --latency 5
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "dev"))

from devstack.emulator import MotoServer  # noqa: E402
from devstack.local import AWS_ENV  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=5.0, help="ms each AWS call waits first")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    emulator = MotoServer("127.0.0.1", _free_port())
    emulator.start()
    try:
        os.environ.update(AWS_ENV)
        os.environ["AWS_ENDPOINT_URL"] = emulator.url
        from wallet_mcp import aws

        db = aws.dynamodb()
        keys = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
        db.create_table(
            TableName="bench",
            KeySchema=keys,  # type: ignore[arg-type]
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(30):  # a wallet's accounts, as getTotalBalance reads them
            db.put_item(
                TableName="bench", Item={"pk": {"S": "u"}, "sk": {"S": f"A{i}"}, "x": {"S": "y" * 200}}
            )
        wait = options.latency / 1000
        written = [0]

        def query() -> None:
            time.sleep(wait)
            db.query(
                TableName="bench",
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "u"}},
            )

        def put() -> None:
            time.sleep(wait)
            written[0] += 1
            item = {"pk": {"S": "audit"}, "sk": {"S": str(written[0])}, "x": {"S": "y" * 300}}
            db.put_item(TableName="bench", Item=item)

        pool = ThreadPoolExecutor(max_workers=4)

        def beside() -> None:
            early = pool.submit(put)
            query()
            early.result()

        def in_sequence() -> None:
            query()
            put()

        shapes: dict[str, Callable[[], None]] = {
            "Query alone": query,
            "PutItem alone": put,
            "Query, then PutItem": in_sequence,
            "PutItem beside the Query": beside,
        }
        print(f"each AWS call waits {options.latency:g} ms first; load {os.getloadavg()[0]:.1f}")
        print(f"shapes interleaved call by call (noise falls on each alike), {options.runs} runs")
        for _ in range(options.rounds):
            times: dict[str, list[float]] = {label: [] for label in shapes}
            for run in range(options.runs + 10):
                for label, call in shapes.items():
                    started = time.perf_counter()
                    call()
                    if run >= 10:  # the first ten warm the connections
                        times[label].append((time.perf_counter() - started) * 1000)
            for label, taken in times.items():
                taken.sort()
                p90 = taken[int(0.9 * (len(taken) - 1))]
                print(f"{label:26} p50 {statistics.median(taken):7.2f} ms   p90 {p90:7.2f} ms")
        pool.shutdown()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
