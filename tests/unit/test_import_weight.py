"""Cold start weight: what each function imports, and the collector's pause while it loads.

The MCP function must not pull in FastAPI; no function may pull in boto3 (botocore is enough);
every function's `app.py` pauses the cyclic GC first and resumes it last (`wallet_mcp.coldstart`).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))


def _project_imports(app_file: Path) -> list[str]:
    tree = ast.parse(app_file.read_text())
    return sorted(
        {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wallet_mcp")
        }
    )


def test_mcp_function_imports_no_fastapi() -> None:
    modules = _project_imports(ROOT / "functions" / "mcp" / "app.py")
    assert "wallet_mcp.web.asgi" in modules
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"an import of functions/mcp/app.py pulls in FastAPI: {modules}"


def test_fastapi_functions_still_get_the_validation_handler() -> None:
    from fastapi.exceptions import RequestValidationError

    from wallet_mcp.web.app import create_app

    app = create_app("t", realm="http://localhost:3000")
    assert RequestValidationError in app.exception_handlers


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_function_imports_boto3(function: str) -> None:
    modules = _project_imports(ROOT / "functions" / function / "app.py")
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"functions/{function}/app.py's imports pull in boto3: {modules}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_rests_the_gc_while_its_handler_loads(function: str) -> None:
    body = ast.parse((ROOT / "functions" / function / "app.py").read_text()).body
    statements = [
        node
        for node in body
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))  # the docstring
        and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    ]
    first, last = statements[0], statements[-1]
    assert isinstance(first, ast.ImportFrom)
    assert (first.module, first.names[0].name) == ("wallet_mcp", "coldstart")
    assert ast.unparse(last) == "coldstart.loaded()"


PROBE = """
import gc
from wallet_mcp import coldstart
during = gc.isenabled()
coldstart.loaded()
print(during, gc.isenabled(), gc.get_freeze_count() > 0)
"""


def _probe(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_coldstart_pauses_then_freezes_and_resumes_in_a_lambda_environment() -> None:
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "McpFunction"}
    assert _probe(env) == "False True True"


def test_coldstart_leaves_the_gc_alone_outside_lambda() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    assert _probe(env) == "True True False"


def test_token_function_imports_no_fastapi() -> None:
    modules = _project_imports(ROOT / "functions" / "token" / "app.py")
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"an import of functions/token/app.py pulls in FastAPI: {modules}"


def test_the_mcp_function_loads_neither_the_sdk_client_nor_its_high_level_server() -> None:
    modules = _project_imports(ROOT / "functions" / "mcp" / "app.py")
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith(('mcp.client', 'mcp.cli'))}),"
        " 'mcp.server.mcpserver' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] False"


DEFERRED = """
import mcp_types
import wallet_mcp.mcp_server.http
import mcp, mcp.server
before = 'mcp.client' in sys.modules
from mcp.server import lowlevel                        # a submodule: no __init__ needed for it
still = 'mcp.client' in sys.modules or 'mcp.server.mcpserver' in sys.modules
from mcp import Client, types                          # a name only mcp/__init__ defines
from mcp.server import MCPServer, Server               # and mcp/server/__init__
import mcp.client.client, mcp.server.lowlevel.server, mcp.server.mcpserver.server
print(before, still, Client is mcp.client.client.Client, types is mcp.types, types.Tool is mcp_types.Tool,
      Server is mcp.server.lowlevel.server.Server, MCPServer is mcp.server.mcpserver.server.MCPServer,
      lowlevel is mcp.server.lowlevel, all(hasattr(mcp, name) for name in mcp.__all__))
"""


def test_a_deferred_sdk_package_still_exports_every_name_on_first_use() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys\n" + DEFERRED], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False", *["True"] * 7]


def test_deferring_a_package_runs_its_init_once_on_first_use(tmp_path: Path) -> None:
    package = tmp_path / "deferred_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import sys\nsys.init_runs = getattr(sys, 'init_runs', 0) + 1\nNAME = 1\n"
    )
    (package / "sub.py").write_text("VALUE = 2\n")
    code = (
        "import sys\nfrom wallet_mcp import coldstart\n"
        "coldstart.defer_package_init('deferred_pkg')\n"
        "coldstart.defer_package_init('deferred_pkg')\n"  # already imported: left alone
        "import deferred_pkg.sub\n"
        "print(getattr(sys, 'init_runs', 0), deferred_pkg.sub.VALUE)\n"
        "print(deferred_pkg.NAME, sys.init_runs, deferred_pkg.NAME, sys.init_runs)\n"
        "try:\n    deferred_pkg.missing\nexcept AttributeError:\n    print('AttributeError')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["0 2", "1 1 1 1", "AttributeError"]


def test_token_function_loads_pyjwt_only_when_it_verifies_one() -> None:
    modules = _project_imports(ROOT / "functions" / "token" / "app.py")
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('jwt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"an import of functions/token/app.py pulls in pyjwt: {modules}"


NOT_LOADED = {
    # the MCP function never ends a grant (that is the authorization server's) nor applies the
    # OAuth endpoints' rate limits: compose.Deployment builds both on first use only
    "mcp": ("wallet_mcp.oauth.rules.revocation", "wallet_mcp.limits", "wallet_mcp.storage.refresh_tokens"),
    # the token function serves no protected resource: no bearer pipeline, no wallet
    "token": ("wallet_mcp.resource.authenticate", "wallet_mcp.wallet.service", "wallet_mcp.wallet.owners"),
}


@pytest.mark.parametrize("function", sorted(NOT_LOADED))
def test_a_function_does_not_load_what_only_other_functions_use(function: str) -> None:
    modules = _project_imports(ROOT / "functions" / function / "app.py")
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + f"print([m for m in {NOT_LOADED[function]!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"functions/{function}/app.py's imports load {out.stdout.strip()}"
