"""The official MCP SDK clients that tests/flows/test_client_generations.py drives, one install per
pinned version under `.local/clients/<name>-<version>/`, set up on demand.

Hosts ship different SDK generations (Claude Desktop, Cursor and VS Code the 1.x lines), so the
tests drive each as its own program: the Python SDK 1.x in a venv of its own (the project venv
holds mcp 2.x, and one environment cannot hold both), the TypeScript SDK 1.x and the TypeScript
client 2.x in Node packages of their own. Each pin is a lock committed in `tests/clients/<name>/`
(a fully pinned requirements file, or a package.json with its package-lock.json), so an install
is the same on every machine and its version is written in one place.

`ensure(client)` installs when the install is missing, unusable, or was made from another lock (a
stamp holds the lock's digest), under a file lock: pytest-xdist workers may ask at once. Otherwise
it reads a stamp and hashes a lock. A registry that cannot be reached is one sentence
(`ClientInstallError`). `python -m devstack.clients` installs every client ahead of a test run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from devstack import toolchain

ROOT: Final = Path(__file__).resolve().parents[2]
CLIENTS: Final = ROOT / ".local" / "clients"
LOCKS: Final = ROOT / "tests" / "clients"
STAMP: Final = ".installed"
INSTALL_TIMEOUT_S: Final = 600


class ClientInstallError(Exception):
    """A pinned client could not be installed; the message is one sentence saying why."""


@dataclass(frozen=True)
class PinnedClient:
    name: str
    """Its folder in `tests/clients/` (the lock) and the start of its install folder's name."""
    registry: Literal["PyPI", "npm"]
    package: str
    locks: Path = LOCKS
    npm_flags: tuple[str, ...] = ()
    """More flags for `npm ci` (`--omit=peer`: a package whose peers the tests do not load)."""

    @property
    def lock_dir(self) -> Path:
        return self.locks / self.name

    @property
    def lock_files(self) -> tuple[Path, ...]:
        if self.registry == "PyPI":
            return (self.lock_dir / "requirements.txt",)
        return (self.lock_dir / "package.json", self.lock_dir / "package-lock.json")

    @property
    def version(self) -> str:
        """The exact version the lock pins for `package`."""
        if self.registry == "PyPI":
            text = self.lock_files[0].read_text()
            match = re.search(rf"^{re.escape(self.package)}==([^\s;#]+)", text, re.MULTILINE)
            if match is None:
                raise ClientInstallError(f"{self.lock_files[0]} pins no version of {self.package}")
            return match[1]
        declared = json.loads(self.lock_files[0].read_text()).get("dependencies", {}).get(self.package)
        if not isinstance(declared, str) or not re.fullmatch(r"\d+\.\d+\.\d+", declared):
            raise ClientInstallError(f"{self.lock_files[0]} pins no exact version of {self.package}")
        return declared

    def lock_digest(self) -> str:
        digest = hashlib.sha256()
        for path in self.lock_files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def usable(self, target: Path) -> bool:
        """What the tests run from the install is there."""
        if self.registry == "PyPI":
            return python_of(target).exists()
        return (target / "node_modules" / self.package / "package.json").exists()


PYTHON_MCP_1: Final = PinnedClient("python-mcp", "PyPI", "mcp")
TYPESCRIPT_SDK_1: Final = PinnedClient("typescript-sdk", "npm", "@modelcontextprotocol/sdk")
TYPESCRIPT_CLIENT_2: Final = PinnedClient("typescript-client", "npm", "@modelcontextprotocol/client")
EXT_APPS: Final = PinnedClient(
    "ext-apps", "npm", "@modelcontextprotocol/ext-apps", npm_flags=("--omit=peer",)
)
"""The MCP Apps reference package, for its JSON Schema of the view-host messages (the UI tests of
the views validate every message against it); not a client, installed the same way."""
PINNED: Final = (PYTHON_MCP_1, TYPESCRIPT_SDK_1, TYPESCRIPT_CLIENT_2, EXT_APPS)


def _say(message: str) -> None:
    print(f"clients: {message}", file=sys.stderr, flush=True)


def python_of(target: Path) -> Path:
    return target / "bin" / "python"


def install_dir(client: PinnedClient, root: Path = CLIENTS) -> Path:
    return root / f"{client.name}-{client.version}"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (pytest-xdist workers) and threads alike: each holder
    opens the file itself, and flock locks belong to the open file."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _installed(client: PinnedClient, target: Path) -> bool:
    stamp = target / STAMP
    return stamp.exists() and stamp.read_text() == client.lock_digest() and client.usable(target)


def _reason(output: str) -> str:
    """The line of a failed pip or npm run that says why (an error line, else the last line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    reason = errors[0] if errors else lines[-1] if lines else "no output"
    return reason[:300].rstrip(".")


def _run(client: PinnedClient, command: list[str], target: Path) -> None:
    try:
        result = subprocess.run(
            command, cwd=target, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        reason = f"no answer within {INSTALL_TIMEOUT_S} s"
    except OSError as exc:
        reason = str(exc)
    else:
        if result.returncode == 0:
            return
        reason = _reason(result.stderr or result.stdout)
    raise ClientInstallError(
        f"installing {client.package} {client.version} from {client.registry} into {target} failed "
        f"({reason}): the client-generation tests need {client.registry} reachable once, then reuse "
        "that install"
    )


def _install_pypi(client: PinnedClient, target: Path) -> None:
    _run(client, [sys.executable, "-m", "venv", str(target)], target)
    pip = [str(python_of(target)), "-m", "pip", "--disable-pip-version-check", "--timeout", "60"]
    _run(client, [*pip, "install", "--quiet", "-r", str(client.lock_files[0])], target)


def _install_npm(client: PinnedClient, target: Path) -> None:
    for lock in client.lock_files:
        shutil.copyfile(lock, target / lock.name)
    node_bin = toolchain.ensure_node()
    npm = str(node_bin / "npm") if node_bin else shutil.which("npm") or "npm"
    # `npm ci`: exactly the lock, integrity-checked; no package's install scripts run
    flags = ["--no-audit", "--no-fund", "--ignore-scripts", "--fetch-timeout=60000", "--fetch-retries=1"]
    _run(client, [npm, "ci", *flags, *client.npm_flags], target)


def _install(client: PinnedClient, target: Path) -> None:
    if client.registry == "PyPI":
        _install_pypi(client, target)
    else:
        _install_npm(client, target)


def ensure(client: PinnedClient, root: Path = CLIENTS) -> Path:
    """The client's install folder, installed first when it is not (see the module docstring)."""
    target = install_dir(client, root)
    if _installed(client, target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        if not _installed(client, target):  # another worker may have installed it meanwhile
            _say(f"installing {client.package} {client.version} from {client.registry} into {target}")
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            _install(client, target)
            (target / STAMP).write_text(client.lock_digest())
    return target


def main() -> int:
    try:
        for client in PINNED:
            print(ensure(client))
    except (ClientInstallError, toolchain.ToolchainError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
