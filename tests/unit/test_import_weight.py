"""The MCP function's cold start: the shared modules it imports must not pull in FastAPI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
