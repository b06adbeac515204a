"""The shared layer as `sam build` builds it (`src/Makefile`), but for the machine at hand.

`make bench` measures cold starts from it and `tests/unit/test_layer_build.py` checks it: the
same wheels and ahead-of-time bytecode as the deployed arm64 layer, for this platform, so the
runtime's Python here can load it.
"""

from __future__ import annotations

import glob
import os
import platform
import shutil
import subprocess
from pathlib import Path

from devstack.template import ROOT

RUNTIME_VERSION = (3, 13)
"""The template's Runtime (python3.13)."""


def lambda_python() -> str | None:
    """A Python of the Lambda runtime's version: `LAMBDA_PYTHON`, then PATH, then pyenv's."""
    name = "python{}.{}".format(*RUNTIME_VERSION)
    candidates = [os.environ.get("LAMBDA_PYTHON"), shutil.which(name)]
    pyenv = "~/.pyenv/versions/{}.{}*/bin/".format(*RUNTIME_VERSION) + name
    candidates += sorted(glob.glob(os.path.expanduser(pyenv)))
    check = f"import sys; sys.exit(sys.version_info[:2] != {RUNTIME_VERSION!r})"
    for candidate in filter(None, candidates):  # a pyenv shim without that version installed fails
        if subprocess.run([candidate, "-c", check], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def build_layer(artifacts_dir: Path, python: str) -> Path:
    """Run `make build-CoreLayer` for this machine's platform and `python`'s version (the
    runtime's, unless a comparison asks for another); the layer's `python/` directory."""
    machine = platform.machine()
    version = subprocess.run(
        [python, "-c", "import sys; print('{}.{}'.format(*sys.version_info))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    built = subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(ROOT / "src"),
            "build-CoreLayer",
            f"ARTIFACTS_DIR={artifacts_dir}",
            f"LAMBDA_PYTHON={python}",
            f"LAMBDA_PYTHON_VERSION={version}",
            f"LAMBDA_PLATFORMS=manylinux2014_{machine} manylinux_2_28_{machine} manylinux_2_34_{machine}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(f"building the layer (src/Makefile) failed:\n{built.stderr[-3000:]}")
    return artifacts_dir / "python"
