"""The package layout of docs/architecture.md: no package cycle, and no package outside the layers.

`make lint` runs import-linter on the `[tool.importlinter]` contract; these tests keep the contract
itself honest: a new package must be placed in a layer, and the import graph, folded to packages,
has no strongly connected component larger than one package.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "wallet_mcp"


def _layered_names() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = (c for c in config["contracts"] if c["type"] == "layers")
    return {name.strip() for layer in contract["layers"] for name in layer.split("|")}


def _unit(module: str, units: set[str]) -> str | None:
    """The most specific layered package or module `module` belongs to."""
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        if ".".join(parts[:end]) in units:
            return ".".join(parts[:end])
    return None


def test_every_package_and_module_sits_in_a_layer() -> None:
    units = _layered_names()
    top = {
        f"wallet_mcp.{p.stem}"
        for p in PACKAGE.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")
    }
    # `oauth` is a namespace of two layers: each of its subpackages must be placed instead
    oauth = {
        f"wallet_mcp.oauth.{p.name}" for p in (PACKAGE / "oauth").iterdir() if (p / "__init__.py").exists()
    }
    unplaced = sorted((top - {"wallet_mcp.oauth"} | oauth) - units)
    assert not unplaced, f"add these to a layer in pyproject.toml [tool.importlinter]: {unplaced}"


def _top_level(module: str, _units: set[str]) -> str | None:
    """The package (or module) right under `wallet_mcp`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else None


@pytest.mark.parametrize("fold", [_unit, _top_level], ids=["layers", "top-level packages"])
def test_no_import_cycle_between_packages(fold: Callable[[str, set[str]], str | None]) -> None:
    """Neither between the layered units (`oauth.rules` apart from `oauth.server`) nor between the
    packages right under `wallet_mcp` (so `oauth` as a whole and `signin` may not import each other)."""
    units = _layered_names()
    graph = grimp.build_graph("wallet_mcp")
    edges: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        source = fold(module, units)
        for imported in graph.find_modules_directly_imported_by(module):
            target = fold(imported, units)
            if source and target and source != target:
                edges[source].add(target)
    nodes = set(edges) | {target for targets in edges.values() for target in targets}
    cycles = [component for component in _strongly_connected(nodes, edges) if len(component) > 1]
    assert not cycles, f"packages that import each other, directly or around: {cycles}"


def _strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively over a small graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(start: str) -> None:
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(edges[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(component)

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges: dict[str, set[str]] = defaultdict(set, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    components = _strongly_connected({"a", "b", "c", "d"}, edges)
    assert {"a", "b", "c"} in components and {"d"} in components
