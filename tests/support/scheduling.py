"""The order test modules are handed to pytest-xdist's workers: the longest first.

`make test` runs the suite on one worker per core with `--dist loadfile` (a module, with its
stack and emulator, stays on one worker) and `--no-loadscope-reorder`, so the workers take the
modules in collection order. Taking the longest first (the LPT rule) keeps one worker from
starting a 40-second module when the other has just finished: the suite's tail was ~25 s.

How long each module took is remembered in pytest's cache (`.pytest_cache`, written by the
controller at the end of a run, merged with earlier runs). A fresh clone (CI) has no cache: it
starts from `module_seconds.json` beside this file, the figures of a clean `make test` (refresh it
from `.pytest_cache/v/wallet-mcp/module-seconds` when modules come and go); a module in neither
gets an estimate from its directory. Every worker reads the same cache
before the run and the controller writes it only afterwards, so all workers collect in the same
order, as xdist requires.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

import pytest

CACHE_KEY: Final = "wallet-mcp/module-seconds"

ESTIMATE_BY_DIRECTORY: Final = {
    "tests/ui/": 30.0,
    "tests/cli/": 20.0,
    "tests/flows/": 15.0,
    "tests/fuzz/": 10.0,
    "tests/upstream_oidc/": 5.0,
    "tests/handlers/": 5.0,
}
"""Seconds, for a module never timed: stacks and browsers first, in-process tests last."""


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _estimate(module: str) -> float:
    return next((s for prefix, s in ESTIMATE_BY_DIRECTORY.items() if module.startswith(prefix)), 1.0)


def _remembered(config: pytest.Config) -> dict[str, float]:
    cache = getattr(config, "cache", None)  # None with `-p no:cacheprovider`
    found = cache.get(CACHE_KEY, {}) if cache is not None else {}
    cached = {str(k): float(v) for k, v in found.items()} if isinstance(found, dict) else {}
    return {**_SEED, **cached}


_SEED: Final = {
    str(k): float(v)
    for k, v in json.loads((Path(__file__).parent / "module_seconds.json").read_text()).items()
}
"""The figures a fresh clone starts from (see the module docstring)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    seconds = _remembered(config)

    def weight(item: pytest.Item) -> tuple[float, str]:
        module = _module(item.nodeid)
        return (-seconds.get(module, _estimate(module)), module)

    items.sort(key=weight)  # stable: a module's own tests keep their order


class _Timings:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[_module(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        cache = getattr(session.config, "cache", None)
        if cache is None or not self.seconds:
            return
        merged = {**_remembered(session.config), **{k: round(v, 2) for k, v in self.seconds.items()}}
        cache.set(CACHE_KEY, merged)


def pytest_configure(config: pytest.Config) -> None:
    worker: Any = getattr(config, "workerinput", None)
    if worker is None:  # the controller (or a run without xdist) sees every report
        config.pluginmanager.register(_Timings(), "wallet-mcp-module-timings")
