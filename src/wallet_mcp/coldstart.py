"""Cold start: the cyclic garbage collector rests while a function's handler module loads.

Importing a handler builds a large, long-lived object graph (the MCP SDK's pydantic models of
three protocol revisions, botocore's service models, FastAPI's routes) and frees almost nothing.
Every few hundred allocations the collector walks the young objects anyway; during the MCP
function's import those walks cost ~110 ms of ~800 ms and find ~1,600 unreachable objects.

Importing this module pauses the collector; `loaded()`, the last statement of each function's
`app.py`, moves everything the import built into the permanent generation (`gc.freeze()`, so
later collections do not walk it either) and turns the collector back on. The few cycles the
import left behind stay allocated for the life of the execution environment (tens of KB). A
full `gc.collect()` before freezing would reclaim them but costs as much as the pause saves.

Only inside a Lambda execution environment (`AWS_LAMBDA_FUNCTION_NAME` is set: Lambda, `sam
local`, the local gateway's workers, `make bench`) and only once per process: a test process
that imports every handler keeps the collector's default behaviour.
"""

from __future__ import annotations

import gc
import os

_paused = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and gc.isenabled()
if _paused:
    gc.disable()


def loaded() -> None:
    """The handler module has finished loading: freeze what it built and resume collecting."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
