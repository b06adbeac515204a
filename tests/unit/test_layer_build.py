"""The shared layer as `sam build` makes it (src/Makefile): complete, and compiled ahead of time.

A deployed layer is read-only, so a module without valid bytecode in it is compiled from source
on every cold start. The layer is built here for this machine's platform with the Lambda
runtime's Python, then every function's imports are loaded from it while an audit hook counts
`compile` events for its files: there must be none.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

from devstack.layer import RUNTIME_VERSION, build_layer, lambda_python
from devstack.template import load_template

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = ROOT / "src" / "Makefile"


def _make_variable(name: str) -> str:
    match = re.search(rf"^{name} \?= (.+)$", MAKEFILE.read_text(), re.MULTILINE)
    assert match, f"{name} not set in src/Makefile"
    return match.group(1).strip()


def test_the_layer_build_follows_the_template_runtime_and_architecture() -> None:
    template = load_template()
    function_globals = template["Globals"]["Function"]
    layer = template["Resources"]["CoreLayer"]
    runtime, (architecture,) = function_globals["Runtime"], function_globals["Architectures"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Metadata"]["BuildArchitecture"] == architecture
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    assert (
        runtime
        == "python" + _make_variable("LAMBDA_PYTHON_VERSION")
        == "python{}.{}".format(*RUNTIME_VERSION)
    )
    assert _make_variable("LAMBDA_PYTHON") == runtime
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
    platforms = _make_variable("LAMBDA_PLATFORMS").split()
    assert platforms and all(p.endswith("_" + machine) for p in platforms)


def _function_imports() -> list[str]:
    modules = {"mangum", "aws_lambda_powertools", "aws_lambda_powertools.logging.correlation_paths"}
    for app in (ROOT / "functions").glob("*/app.py"):
        for node in ast.walk(ast.parse(app.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
                modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
    return sorted(modules)


CHECK = """
import importlib, sys
layer = sys.argv[1]
compiled = []
def hook(event, args):
    # the import system compiling a module's source (not, say, a library parsing itself to an AST)
    if event == "compile" and str(args[1]).startswith(layer):
        callers = {sys._getframe(depth).f_code.co_name for depth in (1, 2, 3)}
        if "source_to_code" in callers:
            compiled.append(args[1])
sys.addaudithook(hook)
for name in sys.argv[2:]:
    importlib.import_module(name)
print(len([m for m in sys.modules.values() if (getattr(m, "__file__", None) or "").startswith(layer)]))
print("\\n".join(compiled))
"""


def test_the_built_layer_loads_every_function_import_without_compiling(tmp_path: Path) -> None:
    python = lambda_python()
    if python is None:
        pytest.fail("python3.13 (the Lambda runtime, needed by sam build) is not installed")
    layer = build_layer(tmp_path, python)
    assert not (layer / "bin").exists()
    assert (layer / "wallet_mcp" / "coldstart.py").exists()
    views = layer / "wallet_mcp" / "mcp_server" / "views"  # the MCP Apps views, read at resources/read
    assert {"spending.html", "balances.html", "transactions.html", "bridge.js", "view.css"} <= {
        f.name for f in views.iterdir()
    }
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(layer), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [python, "-c", CHECK, str(layer), *_function_imports()],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    loaded, *compiled = out.stdout.splitlines()
    assert int(loaded) > 500  # the SDK, pydantic, botocore, ... all came from the layer
    assert [c for c in compiled if c] == [], "modules compiled from source at import (no valid bytecode)"
    excluded = _make_variable("LAYER_EXCLUDED").split()
    assert excluded and not [p.name for p in layer.iterdir() if p.name.split("-")[0] in excluded]
    services = _make_variable("BOTOCORE_SERVICES").split()
    assert sorted(p.name for p in (layer / "botocore" / "data").iterdir() if p.is_dir()) == sorted(services)
    clients = subprocess.run(
        [
            python,
            "-c",
            "import sys, botocore.session\nsession = botocore.session.get_session()\n"
            "for name in sys.argv[1:]:\n"
            "    session.create_client(name, region_name='eu-west-1', aws_access_key_id='k',"
            " aws_secret_access_key='s')\n",
            *services,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert clients.returncode == 0, clients.stderr[-3000:]


def test_the_layer_keeps_the_model_of_every_aws_service_the_functions_call() -> None:
    called = set(re.findall(r'_client\("([a-z0-9-]+)"', (ROOT / "src" / "wallet_mcp" / "aws.py").read_text()))
    assert called >= {"dynamodb", "kms"}
    assert called <= set(_make_variable("BOTOCORE_SERVICES").split())
