"""Time a function's cold path in one fresh process: importing its `app.py`, then the first
requests a client makes, one after another, each answered before the next is sent.

Run by bench/cold.py with the events (API Gateway payload 2.0, built by bench/operations.py before
this process starts) in the file named by its second argument. Nothing but the standard library
is loaded before the clock starts, as in bench/import_probe.py, so whatever a first request loads
on demand (a deferred import, a botocore client, a pydantic schema built on first use) is paid
inside the measured path. Prints one JSON line: wall and CPU ms after the import and after the
last request, and each response as the handler returned it (the caller checks them).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

from import_probe import load_app  # beside this file: the script's directory is on sys.path


class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read (as
    devstack.worker's, without importing it)."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 1024
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    target, events_file = sys.argv[1], sys.argv[2]
    events = json.loads(Path(events_file).read_text())
    started, cpu_started = time.perf_counter(), time.process_time()
    module = load_app(target)
    imported, cpu_imported = time.perf_counter(), time.process_time()
    results = [module.lambda_handler(event, LambdaContext("bench")) for event in events]
    done, cpu_done = time.perf_counter(), time.process_time()
    print(
        json.dumps(
            {
                "import_wall": (imported - started) * 1000,
                "import_cpu": (cpu_imported - cpu_started) * 1000,
                "path_wall": (done - started) * 1000,
                "path_cpu": (cpu_done - cpu_started) * 1000,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
