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
import importlib.util
import os
import random
import sys
import weakref
from collections.abc import Callable
from types import MethodType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.abc loads importlib.resources (~25 ms): only the type is wanted
    from importlib.abc import Loader
    from types import ModuleType

_paused = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and gc.isenabled()
if _paused:
    gc.disable()


def loaded() -> None:
    """The handler module has finished loading: freeze what it built and resume collecting, and
    hand the SnapStart hooks to the runtime (where it has them)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
    register_snapstart_hooks()


# --- SnapStart ------------------------------------------------------------------------------------
# With SnapStart (infra/template.yaml `SnapStart`), Lambda runs a function's init once when a
# version is published, snapshots the memory, and resumes every new instance from that snapshot.
# Whatever init made that must differ per instance, or must not outlive the moment it was made,
# is re-established after each restore: the `random` module's state (botocore's retry jitter
# draws from it; `secrets`, `uuid4` and our tokens read os.urandom, which the snapshot does not
# freeze), pooled connections (sockets opened during init point at peers that have long since
# closed them), and the caches whose age is read from a clock (compose.Deployment registers
# those). Lambda's Python runtime ships `snapshot_restore_py`; elsewhere nothing is registered
# and `restored()` is what a test calls.

_Hook = Callable[[], object]
_before_snapshot: list[Callable[[], _Hook | None]] = []
_after_restore: list[Callable[[], _Hook | None]] = []
_registered = False


def before_snapshot(hook: _Hook) -> None:
    """Run `hook` just before Lambda takes the snapshot (once however often it is registered;
    bound methods are held weakly)."""
    _add(_before_snapshot, hook)


def after_restore(hook: _Hook) -> None:
    """Run `hook` in every instance resumed from the snapshot, before its first request."""
    _add(_after_restore, hook)


def _add(hooks: list[Callable[[], _Hook | None]], hook: _Hook) -> None:
    if not any(ref() == hook for ref in hooks):
        hooks.append(_reference(hook))


def _reference(hook: _Hook) -> Callable[[], _Hook | None]:
    if isinstance(hook, MethodType):  # a Deployment's method: do not keep the Deployment alive
        return weakref.WeakMethod(hook)
    return lambda: hook


def snapshotting() -> None:
    """What the runtime calls before the snapshot."""
    _run(_before_snapshot)


def restored() -> None:
    """What the runtime calls after a restore: a fresh random state, then every registered hook."""
    random.seed()  # from os.urandom: each restored instance draws its own sequence
    _run(_after_restore)


def _run(hooks: list[Callable[[], _Hook | None]]) -> None:
    live = [(ref, hook) for ref in hooks if (hook := ref()) is not None]
    hooks[:] = [ref for ref, _ in live]
    for _, hook in live:
        hook()


def register_snapstart_hooks() -> bool:
    """Hand `snapshotting` and `restored` to Lambda's runtime, once; False where there is no
    runtime to take them (tests, the local gateway, a runtime without SnapStart support)."""
    global _registered
    if _registered:
        return True
    try:
        from snapshot_restore_py import (  # type: ignore[import-not-found]  # Lambda's runtime only
            register_after_restore,
            register_before_snapshot,
        )
    except ImportError:
        return False
    register_before_snapshot(snapshotting)
    register_after_restore(restored)
    _registered = True
    return True


def defer_package_init(*names: str) -> None:
    """Import the packages `names` (parents first) without running their `__init__` yet.

    A submodule import (`import mcp.server.lowlevel`) always runs every parent package's
    `__init__` first, and the MCP SDK's pull in what a server never uses: `mcp/__init__` the whole
    client (OAuth, httpx2, stdio, session groups), `mcp/server/__init__` the high-level
    `MCPServer` (uvicorn, click). Here each package is set up as the import system would (its
    spec, `__path__`, its place on the parent) with a module-level `__getattr__` (PEP 562) that
    runs the real `__init__` in that same module the first time anything asks for a name the
    package has not got yet (`from mcp import Client`, `mcp.server.Server`): every name the
    package exports is still there, only later. A package that is already imported is left as
    it is. Submodules load from the package's own files as before: the SDK stays the SDK.
    """
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            raise ImportError(f"{name} is not a package")
        module = importlib.util.module_from_spec(spec)
        setattr(module, "__getattr__", _init_on_first_use(module, spec.loader))  # noqa: B010  (PEP 562)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


def _init_on_first_use(module: ModuleType, loader: Loader) -> Callable[[str], object]:
    def __getattr__(attribute: str) -> object:
        if attribute.startswith("__"):  # dunder probes (copy, pickle, inspect): not an export
            raise AttributeError(f"module {module.__name__!r} has no attribute {attribute!r}")
        submodule = f"{module.__name__}.{attribute}"
        if importlib.util.find_spec(submodule) is not None:  # `from mcp.server import lowlevel`
            return importlib.import_module(submodule)
        delattr(module, "__getattr__")
        loader.exec_module(module)
        return getattr(module, attribute)

    return __getattr__
