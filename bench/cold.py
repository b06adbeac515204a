"""Cold start beside the python-sdk's own `simple-auth` example, paired run by run.

Importing our MCP function is compared with importing the example's resource server
(`mcp_simple_auth.server`), our token function with its authorization server
(`mcp_simple_auth.auth_server`; bench/sdk_example/README.md says which commit). Each pair is two
fresh processes of the same Python, with the same environment (the function's, from the template,
`AWS_LAMBDA_FUNCTION_NAME` set as on Lambda), the same CoreLayer as deployed (bytecode compiled
ahead of time, none written at run time) and the example compiled the same way beside it. The pairs
are interleaved and alternate which side runs first, so the host's load drifts over both alike;
the ratio is taken per pair, and its median and range are what count.

An import can be made shorter by moving work into the first request (a deferred import, a model
built on first use), which shortens nothing a client waits for. So our side of each pair is one
process that imports the function and then serves the first requests a client sends
(bench/operations.py `COLD_PATHS`: for the MCP function initialize, tools/list and a read tool
call; for the token function a client_credentials grant) against the emulator, and both figures
are printed: the import (what the ratio compares) and the whole path (what must not grow when the
import shrinks). The example's side is its import only: its first requests need its own
authorization server running beside it.

`make bench` prints this after its own cold-start table. On its own, for the quick loop:

    .venv/bin/python bench/cold.py [--pairs 15] [--python python3.11] [--importtime DIR]

`--importtime DIR` also writes one `-X importtime` profile of each side into DIR (ours: of the
import and the first requests).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "bench" / "sdk_example"
PROBE = ROOT / "bench" / "import_probe.py"
PATH_PROBE = ROOT / "bench" / "path_probe.py"

COMPARISONS = (
    ("McpFunction", "mcp_simple_auth.server", 0.75),
    ("TokenFunction", "mcp_simple_auth.auth_server", 0.40),
)
"""Our function, the example module it is measured against, and the goal for the ratio (issue 22)."""
FLOORS = {
    "McpFunction": (
        ("SDK server modules only", ROOT / "bench" / "floor" / "sdk_server.py"),
        ("mcp_types only", ROOT / "bench" / "floor" / "types_only.py"),
    ),
}
"""What the MCP function cannot import less than while the SDK is its protocol (bench/floor/):
timed in the same pairs, against the same example module, so the ratio left to our own code shows."""
PAIRS = 15


@dataclass(frozen=True)
class Side:
    """What one process imports, and from where."""

    target: str
    """A function's `app.py` (a path) or a module name."""
    pythonpath: tuple[Path, ...]


def prepare_example(workdir: Path, python: str) -> Path:
    """The vendored example plus the two packages it imports that the layer lacks, installed for
    `python` by the same pip as the layer and compiled ahead of time like it."""
    target = workdir / "sdk_example"
    shutil.copytree(EXAMPLE / "mcp_simple_auth", target / "mcp_simple_auth")
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--no-deps",
            "--disable-pip-version-check",
            "--root-user-action=ignore",
            "--only-binary=:all:",
            "--target",
            str(target),
            "--requirement",
            str(EXAMPLE / "requirements.txt"),
        ],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(target / "bin", ignore_errors=True)
    compile_ahead(python, target)
    return target


def compile_ahead(python: str, directory: Path) -> None:
    """As src/Makefile compiles the layer: unchecked-hash bytecode, written once."""
    subprocess.run(
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(directory),
        ],
        check=True,
        capture_output=True,
    )


def _run_env(side: Side, env: Mapping[str, str]) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        **env,
        "PYTHONPATH": os.pathsep.join(str(p) for p in side.pythonpath),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def import_ms(
    python: str, side: Side, env: Mapping[str, str], *, importtime: Path | None = None
) -> tuple[float, float]:
    """One fresh process that imports `side.target`: the import's wall-clock and CPU ms."""
    flags = ["-X", "importtime"] if importtime else []
    out = subprocess.run(
        [python, *flags, str(PROBE), side.target],
        env=_run_env(side, env),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"importing {side.target} failed:\n{out.stderr[-3000:]}")
    if importtime is not None:
        importtime.write_text(out.stderr)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


@dataclass(frozen=True)
class ColdPath:
    """One fresh process's import and first requests (bench/path_probe.py)."""

    import_ms: tuple[float, float]
    path_ms: tuple[float, float]
    """(wall ms, CPU ms) from the start of the import to its end, and to the last response."""


def path_ms(
    python: str,
    side: Side,
    env: Mapping[str, str],
    events: Path,
    operations: tuple[str, ...],
    *,
    importtime: Path | None = None,
) -> ColdPath:
    """One fresh process that imports the function `side.target` and answers `events` (the
    requests `operations` names, in order), each checked as bench/operations.py checks it."""
    from bench.operations import OPERATIONS

    flags = ["-X", "importtime"] if importtime else []
    out = subprocess.run(
        [python, *flags, str(PATH_PROBE), side.target, str(events)],
        env=_run_env(side, env),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"the cold path of {side.target} failed:\n{out.stderr[-3000:]}")
    if importtime is not None:
        importtime.write_text(out.stderr)
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    for name, result in zip(operations, measured["results"], strict=True):
        body = OPERATIONS[name].check(result)
        if name.startswith("mcp:") and ('"error"' in body or '"isError":true' in body.replace(" ", "")):
            raise SystemExit(f"{name} answered an error: {body[:300]}")
    return ColdPath(
        (measured["import_wall"], measured["import_cpu"]), (measured["path_wall"], measured["path_cpu"])
    )


def path_events(operations: tuple[str, ...], env: Mapping[str, str], directory: Path) -> Path:
    """The events of `operations` as bench/operations.py builds them (with `env`'s BENCH_ values),
    written to a file for bench/path_probe.py."""
    from bench.operations import OPERATIONS

    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("BENCH_")})
    try:
        events = [OPERATIONS[name].event() for name in operations]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    target = directory / f"events-{OPERATIONS[operations[0]].function}.json"
    target.write_text(json.dumps(events))
    return target


@dataclass(frozen=True)
class Paired:
    function: str
    module: str
    goal: float
    ours: list[tuple[float, float]]
    theirs: list[tuple[float, float]]
    """(wall ms, CPU ms) per run, pair by pair."""
    operations: tuple[str, ...] = ()
    paths: tuple[tuple[float, float], ...] = ()
    """Our side's import and first requests `operations` (wall ms, CPU ms), from the same runs as `ours`."""
    floors: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()
    """`FLOORS`' imports, pair by pair with `theirs`."""

    def ms(self, side: str, clock: int) -> list[float]:
        return [run[clock] for run in (self.ours if side == "ours" else self.theirs)]

    def ratios(self, clock: int) -> list[float]:
        return [o / t for o, t in zip(self.ms("ours", clock), self.ms("theirs", clock), strict=True)]


def compare(
    python: str,
    layer: Path,
    functions: Path,
    example: Path,
    environments: Mapping[str, Mapping[str, str]],
    *,
    pairs: int = PAIRS,
    importtime: Path | None = None,
) -> list[Paired]:
    """`pairs` interleaved pairs per comparison, alternating which side runs first. Our side of
    each pair imports and then serves the function's first requests (`COLD_PATHS`) in the same
    process; its import figure is what the ratio compares."""
    from bench.operations import COLD_PATHS

    results = []
    with tempfile.TemporaryDirectory(prefix="wallet-mcp-cold-events-") as scratch:
        for function, module, goal in COMPARISONS:
            env = environments[function]
            operations = COLD_PATHS[function]
            events = path_events(operations, env, Path(scratch))
            ours = Side(str(functions / function / "app.py"), (layer,))
            theirs = Side(module, (layer, example))
            floors = [(label, Side(str(path), (layer,))) for label, path in FLOORS.get(function, ())]

            def run_ours(**kwargs: Path) -> ColdPath:
                return path_ms(python, ours, env, events, operations, **kwargs)  # noqa: B023

            if importtime is not None:
                run_ours(importtime=importtime / f"{function}.importtime.txt")
                import_ms(python, theirs, env, importtime=importtime / f"{module}.importtime.txt")
            run_ours()  # once each, unmeasured: the page cache holds both from here on
            import_ms(python, theirs, env)
            for _, floor in floors:
                import_ms(python, floor, env)
            ours_runs: list[ColdPath] = []
            theirs_ms: list[tuple[float, float]] = []
            floors_ms: list[list[tuple[float, float]]] = [[] for _ in floors]
            for i in range(pairs):
                if i % 2 == 0:
                    ours_runs.append(run_ours())
                    theirs_ms.append(import_ms(python, theirs, env))
                else:
                    theirs_ms.append(import_ms(python, theirs, env))
                    ours_runs.append(run_ours())
                for (_, floor), runs in zip(floors, floors_ms, strict=True):
                    runs.append(import_ms(python, floor, env))
            results.append(
                Paired(
                    function,
                    module,
                    goal,
                    [run.import_ms for run in ours_runs],
                    theirs_ms,
                    operations,
                    tuple(run.path_ms for run in ours_runs),
                    tuple((label, tuple(runs)) for (label, _), runs in zip(floors, floors_ms, strict=True)),
                )
            )
    return results


def report(results: list[Paired], version: str, pairs: int, load_before: float, load_after: float) -> None:
    print(
        f"Cold start beside the python-sdk example (bench/sdk_example, simple-auth): import only, "
        f"CPython {version}, {pairs} interleaved pairs per row, ratio = ours / theirs within each pair"
    )
    print(
        f"(host load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} CPUs; "
        "wall ms include waiting for a core, CPU ms do not: on a busy host the CPU ratio is the steadier)"
    )
    print(
        f"{'function':14} {'clock':5} {'ours ms':>8} {'(range)':>11}  {'example module':28} {'theirs ms':>9} "
        f"{'(range)':>11}  {'ratio':>5} {'(range)':>10}  goal"
    )
    for r in results:
        for clock, label in ((0, "wall"), (1, "cpu")):
            ours, theirs, ratios = r.ms("ours", clock), r.ms("theirs", clock), r.ratios(clock)
            ratio = statistics.median(ratios)
            verdict = "met" if ratio <= r.goal else "NOT met"
            print(
                f"{r.function if clock == 0 else '':14} {label:5} {statistics.median(ours):8.0f} "
                f"{_range(ours, '.0f'):>11}  {r.module if clock == 0 else '':28} "
                f"{statistics.median(theirs):9.0f} {_range(theirs, '.0f'):>11}  {ratio:5.2f} "
                f"{_range(ratios, '.2f'):>10}  ≤ {r.goal:.2f} {verdict}"
            )
    print()
    print(
        "Our side's whole cold path, from the same runs: the import, then the first requests in the "
        "same process (CPU ms; 'requests' = path - import, the median of each run's difference)"
    )
    print(f"{'function':14} {'import':>7} {'path':>7} {'(range)':>11} {'requests':>9}  first requests")
    for r in results:
        imports, paths = r.ms("ours", 1), [p[1] for p in r.paths]
        requests = [p - i for p, i in zip(paths, imports, strict=True)]
        print(
            f"{r.function:14} {statistics.median(imports):7.0f} {statistics.median(paths):7.0f} "
            f"{_range(paths, '.0f'):>11} {statistics.median(requests):9.0f}  "
            + ", ".join(name.split(": ", 1)[1] for name in r.operations)
        )
    floored = [r for r in results if r.floors]
    if floored:
        print()
        print(
            "Floors: what the function cannot import less than while the SDK serves the protocol "
            "(bench/floor/),\ntimed in the same pairs against the same example module (CPU ms)"
        )
        print(f"{'function':14} {'floor':26} {'ms':>6} {'ratio':>6} {'(range)':>10}")
        for r in floored:
            theirs = r.ms("theirs", 1)
            for label, runs in r.floors:
                cpu = [run[1] for run in runs]
                ratios = [f / t for f, t in zip(cpu, theirs, strict=True)]
                ratio = statistics.median(ratios)
                print(
                    f"{r.function:14} {label:26} {statistics.median(cpu):6.0f} {ratio:6.2f} "
                    f"{_range(ratios, '.2f'):>10}"
                )


def _range(values: list[float], spec: str) -> str:
    return f"{format(min(values), spec)}-{format(max(values), spec)}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def access_token(python: str, layer: Path, functions: Path, env: Mapping[str, str]) -> str:
    """An MCP access token for the demo client, minted by the token function (bench/probe.py)."""
    out = subprocess.run(
        [
            python,
            str(ROOT / "bench" / "probe.py"),
            str(functions / "TokenFunction"),
            "token: client_credentials",
            "0",
        ],
        env={**_run_env(Side("", (layer, ROOT / "dev")), env)},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"minting an access token failed:\n{out.stderr[-3000:]}")
    return str(json.loads(json.loads(out.stdout.strip().splitlines()[-1])["first_body"])["access_token"])


def main() -> int:
    sys.path.insert(0, str(ROOT / "dev"))
    sys.path.insert(0, str(ROOT))
    from devstack.emulator import MotoServer
    from devstack.layer import build_layer, lambda_python
    from devstack.local import AWS_ENV, bring_up, local_stack
    from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=PAIRS)
    parser.add_argument("--python", help="default: the Lambda runtime's Python, as `make bench` uses")
    parser.add_argument("--importtime", type=Path, help="write one -X importtime profile per side here")
    args = parser.parse_args()
    python = args.python or lambda_python()
    if python is None:
        raise SystemExit("needs python3.13 (the Lambda runtime) on PATH or LAMBDA_PYTHON, or --python")
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    emulator = MotoServer("127.0.0.1", _free_port())
    emulator.start()
    workdir = tempfile.TemporaryDirectory(prefix="wallet-mcp-cold-")
    try:
        os.environ.update(AWS_ENV)
        stack = local_stack("http://localhost:3000")
        bring_up(stack, emulator.url)
        work = Path(workdir.name)
        layer = build_layer(work / "layer", python)
        example = prepare_example(work, python)
        specs = stack.functions()
        bench_env = {
            "BENCH_HOST": "localhost:3000",
            "BENCH_CC_FORM": (
                f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"
            ),
        }
        environments = {}
        for function, _, _ in COMPARISONS:
            (work / "functions" / function).mkdir(parents=True)
            shutil.copy2(Path(specs[function].code_uri) / "app.py", work / "functions" / function)
            environments[function] = {
                **AWS_ENV,
                **specs[function].environment,
                **bench_env,
                "AWS_ENDPOINT_URL": emulator.url,
                "AWS_LAMBDA_FUNCTION_NAME": function,
                "POWERTOOLS_LOG_LEVEL": "ERROR",
            }
        token = access_token(python, layer, work / "functions", environments["TokenFunction"])
        for environment in environments.values():
            environment["BENCH_ACCESS_TOKEN"] = token
        if args.importtime:
            args.importtime.mkdir(parents=True, exist_ok=True)
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        results = compare(
            python,
            layer,
            work / "functions",
            example,
            environments,
            pairs=args.pairs,
            importtime=args.importtime,
        )
        report(results, version, args.pairs, load_before, os.getloadavg()[0])
        print(f"({time.monotonic() - started:.0f} s)")
    finally:
        emulator.stop()
        workdir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
