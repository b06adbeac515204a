"""Time one import in a fresh process: a function's `app.py` (a path) or a module. Prints the
wall-clock ms and the process's CPU ms (what it computed, without the time it waited for a core).

Run by bench/cold.py. Nothing but the standard library is loaded before the clock starts, so both
sides of a comparison pay for everything they import; `-X importtime` on the command line profiles
the same import.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType


def load_app(target: str) -> ModuleType:
    """A function's `app.py`, loaded as the Lambda runtime loads `app.lambda_handler` (also used
    by bench/path_probe.py)."""
    sys.path.insert(0, str(Path(target).parent))
    spec = importlib.util.spec_from_file_location("app", target)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    target = sys.argv[1]
    started, cpu_started = time.perf_counter(), time.process_time()
    if target.endswith(".py"):  # a function
        load_app(target)
    else:
        importlib.import_module(target)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"{wall * 1000:.3f} {cpu * 1000:.3f}")


if __name__ == "__main__":
    main()
