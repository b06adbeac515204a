"""One function's execution environment: imports its handler once, then serves invocations.

Run as `python -m devstack.worker <code-dir> <handler>` with the function's environment, as the
Lambda runtime would: the code directory first on `sys.path`, the handler imported once (the
init phase), then one invocation at a time. Invocations arrive as length-prefixed JSON frames on
stdin and results leave on the original stdout; everything the function prints or logs goes to
stderr, which the gateway shows prefixed with the function's name.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
import time
import traceback
import uuid
from typing import Any, BinaryIO

_HEADER = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return json.loads(stream.read(size))


def write_frame(stream: BinaryIO, message: Any) -> None:
    payload = json.dumps(message, separators=(",", ":")).encode("utf-8")
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, function_name: str, memory: int, deadline: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    code_dir, handler_path = sys.argv[1], sys.argv[2]
    protocol_in = os.fdopen(os.dup(0), "rb")
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the function's stdout (prints, Powertools logs) goes to stderr
    sys.stdout = sys.stderr
    sys.path.insert(0, code_dir)
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
    memory = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))

    started = time.perf_counter()
    module_name, _, attribute = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:
        traceback.print_exc()
        write_frame(protocol_out, {"init_error": f"{type(exc).__name__}: {exc}"})
        sys.exit(1)
    write_frame(protocol_out, {"ready": True, "init_ms": round((time.perf_counter() - started) * 1000, 1)})

    while True:
        message = read_frame(protocol_in)
        if message is None:
            return
        context = LambdaContext(function_name, memory, time.monotonic() + float(message["timeout"]))
        try:
            result = handler(message["event"], context)
        except Exception as exc:
            traceback.print_exc()
            write_frame(protocol_out, {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)}})
            continue
        write_frame(protocol_out, {"result": result})


if __name__ == "__main__":
    main()
