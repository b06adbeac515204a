"""A real OpenID provider for the upstream sign-in tests: `oidc-provider` (Node.js) on loopback.

`tests/upstream_oidc/` holds its package (installed here with `npm ci` when missing: a clean clone
needs nothing else) and `provider.mjs`. Without Node.js and npm the tests fail and say so: they
are not optional.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.forms import parse
from tests.support.local_stack import LocalStack, free_port, running_stack

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = ROOT / "tests" / "upstream_oidc"
_install_lock = threading.Lock()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"the upstream sign-in tests run a real OpenID provider (oidc-provider) on Node.js: "
            f"install Node.js >= 20 and npm ({name!r} is not on PATH)",
            pytrace=False,
        )
    return found


def ensure_installed() -> str:
    """`node`, with the provider's packages installed (`npm ci` from the lock file when missing)."""
    node = _tool("node")
    with _install_lock:
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            npm = _tool("npm")
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(PROVIDER_DIR)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if result.returncode != 0:
                pytest.fail(
                    f"npm ci in {PROVIDER_DIR} failed:\n{result.stdout}\n{result.stderr}", pytrace=False
                )
    return node


@dataclass
class UpstreamOidc:
    issuer: str
    accounts_file: Path

    def set_account(self, account_id: str, **claims: Any) -> None:
        """Create or change an account (read by the provider at each sign-in)."""
        accounts = json.loads(self.accounts_file.read_text())
        accounts[account_id] = claims
        self.accounts_file.write_text(json.dumps(accounts))


@contextmanager
def running_provider(
    workdir: Path, *, clients: list[dict[str, Any]], accounts: dict[str, dict[str, Any]], conform: bool = True
) -> Iterator[UpstreamOidc]:
    """The provider on an ephemeral loopback port, with these client registrations and accounts.

    `conform=False` puts the scope's claims in the ID token (Google's and Microsoft's behaviour);
    by default they are only at the userinfo endpoint (OpenID Connect Core §5.4)."""
    node = ensure_installed()
    accounts_file = workdir / "accounts.json"
    accounts_file.write_text(json.dumps(accounts))
    log_path = workdir / "provider.log"
    env = {
        **os.environ,
        "OIDC_CLIENTS": json.dumps(clients),
        "OIDC_ACCOUNTS_FILE": str(accounts_file),
        "OIDC_CONFORM": "true" if conform else "false",
        "NODE_ENV": "test",
    }
    process, issuer = _start(node, env, log_path)
    try:
        yield UpstreamOidc(issuer=issuer, accounts_file=accounts_file)
    finally:
        _stop(process)


START_ATTEMPTS = 2
START_TIMEOUT_S = 45.0


def _start(node: str, env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The provider started, and the issuer it announced. It starts in well under a second; a start
    that announces nothing in time (seen once in CI on a loaded 2-core VM) is stopped and tried once
    more, and the failure names what happened on each attempt."""
    failures: list[str] = []
    for attempt in range(1, START_ATTEMPTS + 1):
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [node, "provider.mjs"],
                cwd=PROVIDER_DIR,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        began = time.monotonic()
        line = _first_line(process, START_TIMEOUT_S)
        if line:
            return process, str(json.loads(line)["issuer"])
        elapsed = time.monotonic() - began
        alive = process.poll() is None
        _stop(process)
        failures.append(
            f"attempt {attempt}: no announcement after {elapsed:.1f} s, "
            f"{'still running' if alive else f'exited with {process.returncode}'}; its stderr:\n"
            f"{log_path.read_text()}"
        )
    raise RuntimeError("the OpenID provider did not start:\n" + "\n".join(failures))


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    lines: queue.Queue[bytes] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return b""


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def sign_in_upstream(client: httpx.Client, authorization_url: str, account: str) -> str:
    """Play the user at the provider's own pages, from the authorization request we sent the
    browser to, until the provider sends it back: its login form (`account`, any password), then
    its consent form. The URL the browser is sent back to (our callback, `code` and `state`)."""
    provider_origin = "{0.scheme}://{0.netloc}/".format(urlsplit(authorization_url))
    response = client.get(authorization_url)
    for _ in range(12):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if not location.startswith(provider_origin):
                return location
            response = client.get(location)
            continue
        assert response.status_code == 200, f"{response.url}: {response.status_code} {response.text[:300]}"
        forms, _ = parse(response.text)
        (form,) = [f for f in forms if f.method == "post"]
        values = {"login": account, "password": "any password"} if "login" in form.fields else {}
        response = client.post(urljoin(str(response.url), form.action), data=form.submission(values))
    raise AssertionError("the provider's pages went on too long")


# --- the local stack with an upstream provider (flow and browser tests) ------------------------------

UPSTREAM_ID = "example"
UPSTREAM_NAME = "Example ID"
UPSTREAM_CLIENT_ID = "wallet-mcp-local"
UPSTREAM_SECRET = "upstream-secret-0123456789-abcdefghij"
UPSTREAM_SECRET_PARAMETER = "/wallet-mcp/example-client-secret"
UPSTREAM_ACCOUNTS = {
    # the demo user's address, verified: links to the demo user and its $5,432.10 wallet
    "demo-upstream": {"email": "demo@example.com", "email_verified": True, "name": "Demo Upstream"},
    "newcomer": {"email": "newcomer@example.org", "email_verified": True, "name": "New Comer"},
}


@dataclass(frozen=True)
class UpstreamStack:
    stack: LocalStack
    oidc: UpstreamOidc


@pytest.fixture(scope="session")
def upstream_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamStack]:
    """The OpenID provider first (it must know our callback URL), then a local stack configured
    with it as upstream provider `example`, its client secret a SecureString in the emulator's SSM."""
    port = free_port()
    callback = f"http://localhost:{port}/oauth/authorize/upstream/{UPSTREAM_ID}/callback"
    client = {
        "client_id": UPSTREAM_CLIENT_ID,
        "client_secret": UPSTREAM_SECRET,
        "redirect_uris": [callback],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    workdir = tmp_path_factory.mktemp("upstream")
    with running_provider(workdir, clients=[client], accounts=UPSTREAM_ACCOUNTS) as oidc:
        providers = [
            {
                "id": UPSTREAM_ID,
                "name": UPSTREAM_NAME,
                "issuer": oidc.issuer,
                "client_id": UPSTREAM_CLIENT_ID,
                "client_secret": f"ssm:{UPSTREAM_SECRET_PARAMETER}",
            }
        ]
        with running_stack(workdir, port=port, parameters={"UpstreamIdentityProviders": providers}) as stack:
            stack.client("ssm").put_parameter(
                Name=UPSTREAM_SECRET_PARAMETER, Value=UPSTREAM_SECRET, Type="SecureString"
            )
            yield UpstreamStack(stack=stack, oidc=oidc)
