"""Cold start beside the python-sdk's own `simple-auth` example, paired run by run.

Importing our MCP function is compared with importing the example's resource server
(`mcp_simple_auth.server`), our token function with its authorization server
(`mcp_simple_auth.auth_server`; bench/sdk_example/README.md says which commit). Each pair is two
fresh processes of the same Python, with the same environment (the function's, from the template,
`AWS_LAMBDA_FUNCTION_NAME` set as on Lambda), the same CoreLayer as deployed (bytecode compiled
ahead of time, none written at run time) and the example compiled the same way beside it. The pairs
are interleaved and alternate which side runs first, so the host's load drifts over both alike;
the ratio is taken per pair, and its median and range are what count.

`make bench` prints this after its own cold-start table. On its own, for the quick loop:

    .venv/bin/python bench/cold.py [--pairs 15] [--python python3.11] [--importtime DIR]

`--importtime DIR` also writes one `-X importtime` profile of each side into DIR.
"""

from __future__ import annotations

import argparse
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

COMPARISONS = (
    ("McpFunction", "mcp_simple_auth.server", 0.75),
    ("TokenFunction", "mcp_simple_auth.auth_server", 0.40),
)
"""Our function, the example module it is measured against, and the goal for the ratio (issue 22)."""
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


def import_ms(
    python: str, side: Side, env: Mapping[str, str], *, importtime: Path | None = None
) -> tuple[float, float]:
    """One fresh process that imports `side.target`: the import's wall-clock and CPU ms."""
    run_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        **env,
        "PYTHONPATH": os.pathsep.join(str(p) for p in side.pythonpath),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    flags = ["-X", "importtime"] if importtime else []
    out = subprocess.run(
        [python, *flags, str(PROBE), side.target], env=run_env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"importing {side.target} failed:\n{out.stderr[-3000:]}")
    if importtime is not None:
        importtime.write_text(out.stderr)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


@dataclass(frozen=True)
class Paired:
    function: str
    module: str
    goal: float
    ours: list[tuple[float, float]]
    theirs: list[tuple[float, float]]
    """(wall ms, CPU ms) per run, pair by pair."""

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
    """`pairs` interleaved pairs per comparison, alternating which side runs first."""
    results = []
    for function, module, goal in COMPARISONS:
        env = environments[function]
        ours = Side(str(functions / function / "app.py"), (layer,))
        theirs = Side(module, (layer, example))
        if importtime is not None:
            import_ms(python, ours, env, importtime=importtime / f"{function}.importtime.txt")
            import_ms(python, theirs, env, importtime=importtime / f"{module}.importtime.txt")
        import_ms(python, ours, env)  # once each, unmeasured: the page cache holds both from here on
        import_ms(python, theirs, env)
        ours_ms: list[tuple[float, float]] = []
        theirs_ms: list[tuple[float, float]] = []
        for i in range(pairs):
            if i % 2 == 0:
                ours_ms.append(import_ms(python, ours, env))
                theirs_ms.append(import_ms(python, theirs, env))
            else:
                theirs_ms.append(import_ms(python, theirs, env))
                ours_ms.append(import_ms(python, ours, env))
        results.append(Paired(function, module, goal, ours_ms, theirs_ms))
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


def _range(values: list[float], spec: str) -> str:
    return f"{format(min(values), spec)}-{format(max(values), spec)}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    sys.path.insert(0, str(ROOT / "dev"))
    from devstack.emulator import MotoServer
    from devstack.layer import build_layer, lambda_python
    from devstack.local import AWS_ENV, bring_up, local_stack

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
        environments = {}
        for function, _, _ in COMPARISONS:
            (work / "functions" / function).mkdir(parents=True)
            shutil.copy2(Path(specs[function].code_uri) / "app.py", work / "functions" / function)
            environments[function] = {
                **AWS_ENV,
                **specs[function].environment,
                "AWS_ENDPOINT_URL": emulator.url,
                "AWS_LAMBDA_FUNCTION_NAME": function,
                "POWERTOOLS_LOG_LEVEL": "ERROR",
            }
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
