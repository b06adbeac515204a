"""`make conformance`: the official MCP conformance suite (`@modelcontextprotocol/conformance`,
pinned in dev/conformance/package-lock.json) against a local stack of its own.

1. Node.js >= 22 (the PATH's, else the pinned build of `devstack.toolchain`, fetched once into
   `.local/toolchain/`) and the suite, installed with `npm ci` into `.local/conformance/` once per
   lockfile.
2. The stack as `make dev` runs it (`python -m devstack dev`), on `PORT` (default: a free port) and
   its emulator on `MOTO_PORT` (default: a free port), so it runs beside a `make dev`; its log goes
   to `.local/conformance/stack.log`.
3. Server mode: each protocol scenario of `REQUIRED`, on every wire it applies to among the
   protocol versions this server supports (`WIRES`), each a run of its own with
   `--spec-version`. The server requires OAuth, and the suite sends no Authorization header: a
   preload (dev/conformance/bearer.mjs) adds an access token of the seeded demo client
   (client_credentials, every scope, audience the MCP endpoint) to the requests for the MCP
   endpoint, and to nothing else.
4. Authorization mode: a client registered for the run by dynamic registration (RFC 7591, a public
   client whose redirect URI is the suite's loopback callback), and the suite's authorization-code
   scenario signed in and consented to as a browser would (the demo user, the forms of
   CONTRACT.md), then checked by the suite.
5. A summary per scenario and wire; the exit status is 1 when a required scenario fails on any wire
   or authorization mode fails. `--all` also runs every other server scenario, reported but not
   scored (docs/conformance.md says why each is out of scope).

Results (each run's checks.json) are kept under `.local/conformance/results/<time>/`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Final
from urllib.parse import urljoin

import httpx

from devstack import toolchain
from devstack.processes import die_with_parent
from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD, DEMO_USERNAME
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES

ROOT: Final = Path(__file__).resolve().parents[2]
PINNED: Final = ROOT / "dev" / "conformance"
SUITE_DIR: Final = ROOT / ".local" / "conformance"
PRELOAD: Final = PINNED / "bearer.mjs"
MIN_NODE: Final = (22, 0)
"""The suite's own floor (its undici 7 and the MCP TypeScript SDK it runs on)."""

WIRES: Final = ("2025-06-18", "2025-11-25", "2026-07-28")
"""The protocol versions this server supports clients on; a scenario runs on each it applies to."""
REQUIRED: Final = (
    "server-initialize",
    "server-session-lifecycle",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "sep-2164-resource-not-found",
    "dns-rebinding-protection",
    "caching",
    "http-header-validation",
)
"""The scenarios that test the protocol itself: each must pass on every wire it applies to."""

STACK_START_TIMEOUT: Final = 180.0
SCENARIO_TIMEOUT: Final = 240.0
AUTHORIZATION_TIMEOUT: Final = 180.0


class ConformanceError(Exception):
    """The run could not be carried out (not a failed scenario); the message says why."""


def _say(message: str) -> None:
    print(f"conformance: {message}", file=sys.stderr, flush=True)


# --- Node.js and the suite ----------------------------------------------------------------------


def node_bin() -> Path:
    """The `node` to run the suite with: the PATH's when recent enough, else the pinned build."""
    on_path = shutil.which("node")
    if on_path and (toolchain.node_version(on_path) or (0, 0)) >= MIN_NODE and shutil.which("npm"):
        return Path(on_path)
    local = toolchain.TOOLCHAIN / "bin"
    if (toolchain.node_version(str(local / "node")) or (0, 0)) < MIN_NODE or not (local / "npm").exists():
        _say(f"no Node.js >= {MIN_NODE[0]} with npm on PATH: fetching Node.js {toolchain.NODE_VERSION}")
        try:
            local = toolchain.install_node()
        except (OSError, toolchain.ToolchainError) as exc:
            raise ConformanceError(
                f"the suite needs Node.js >= {MIN_NODE[0]}; fetching it failed: {exc}"
            ) from exc
    if (toolchain.node_version(str(local / "node")) or (0, 0)) < MIN_NODE:
        raise ConformanceError(f"Node.js {toolchain.NODE_VERSION} in {local} does not run here")
    return local / "node"


def install_suite(node: Path) -> Path:
    """The suite's CLI script, installed from the pinned lockfile (again only when it changed)."""
    lock = (PINNED / "package-lock.json").read_bytes()
    stamp = SUITE_DIR / ".installed"
    cli = SUITE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    digest = hashlib.sha256(lock + (PINNED / "package.json").read_bytes()).hexdigest()
    if cli.exists() and stamp.exists() and stamp.read_text() == digest:
        return cli
    SUITE_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PINNED / name, SUITE_DIR / name)
    _say(f"installing the suite ({suite_version()}) into {SUITE_DIR.relative_to(ROOT)}")
    npm = node.parent / "npm"
    env = {**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    # `npm ci`: exactly the lockfile's versions and integrity hashes; no install scripts run
    result = subprocess.run(
        [str(npm) if npm.exists() else "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=SUITE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not cli.exists():
        raise ConformanceError(f"npm ci failed in {SUITE_DIR}:\n{result.stderr.strip()[-2000:]}")
    stamp.write_text(digest)
    return cli


def suite_version() -> str:
    pinned = json.loads((PINNED / "package.json").read_text())
    return f"@modelcontextprotocol/conformance@{pinned['dependencies']['@modelcontextprotocol/conformance']}"


def applicable_wires(node: Path, cli: Path) -> dict[str, tuple[str, ...]]:
    """Every server scenario of the suite and the wires (of `WIRES`) it applies to, from `list`."""
    listed = subprocess.run(
        [str(node), str(cli), "list", "--server"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    scenarios: dict[str, tuple[str, ...]] = {}
    for name, versions in re.findall(r"^\s*- (\S+) \[([^\]]*)\]", listed, re.MULTILINE):
        scenarios[name] = tuple(w for w in WIRES if w in versions.split(","))
    missing = [s for s in REQUIRED if s not in scenarios]
    if missing:
        raise ConformanceError(f"the pinned suite has no scenario {', '.join(missing)}")
    return scenarios


# --- the local stack ----------------------------------------------------------------------------


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def local_stack(log_path: Path) -> Iterator[str]:
    """`python -m devstack dev` in the background; its base URL once it is ready. Stopped on exit
    the way Ctrl-C stops it (SIGTERM: the stack stops its emulator and workers)."""
    port = int(os.environ.get("PORT") or free_port())
    base_url = f"http://localhost:{port}"
    env = {
        **os.environ,
        "PORT": str(port),
        "PUBLIC_BASE_URL": base_url,
        "MOTO_PORT": os.environ.get("MOTO_PORT") or str(free_port()),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        stack = subprocess.Popen(
            [sys.executable, "-m", "devstack", "dev"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        try:
            _wait_until_ready(stack, base_url, log_path)
            yield base_url
        finally:
            stack.send_signal(signal.SIGTERM)
            try:
                stack.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stack.kill()
                stack.wait()


def _wait_until_ready(stack: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    """Readiness as CONTRACT.md defines it: the authorization-server metadata answers 200."""
    deadline = time.monotonic() + STACK_START_TIMEOUT
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise ConformanceError(f"the local stack exited with {stack.returncode}:\n{tail}")
        try:
            if httpx.get(f"{base_url}/.well-known/oauth-authorization-server", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ConformanceError(
        f"the local stack did not answer within {STACK_START_TIMEOUT:.0f} s (log: {log_path})"
    )


def demo_token(base_url: str) -> str:
    """An access token of the seeded demo client for the MCP endpoint, with every scope."""
    response = httpx.post(
        f"{base_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "scope": " ".join(SUPPORTED_SCOPES),
            "resource": f"{base_url}/mcp",
        },
        timeout=30,
    )
    if response.status_code != 200:
        raise ConformanceError(f"the token endpoint answered {response.status_code}: {response.text[:300]}")
    token: str = response.json()["access_token"]
    return token


# --- results ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    scenario: str
    wire: str
    required: bool
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    note: str = ""
    exit_code: int = 0

    @property
    def failed(self) -> bool:
        return self.counts.get("FAILURE", 0) > 0 or self.exit_code != 0

    @property
    def verdict(self) -> str:
        if self.failed:
            return "FAIL"
        if self.counts.get("SUCCESS", 0) == 0:
            return "n/a"  # only INFO or SKIPPED checks: the scenario says it does not apply
        return "pass"

    @property
    def checks(self) -> str:
        scored = self.counts.get("SUCCESS", 0) + self.counts.get("FAILURE", 0)
        text = f"{self.counts.get('SUCCESS', 0)}/{scored}"
        if self.counts.get("WARNING"):
            text += f", {self.counts['WARNING']} warn"
        return text


def read_checks(directory: Path, outcome: Outcome, prefix: str = "") -> None:
    """Counts by status and the failures, from the suite's checks.json files in the directories
    under `directory` whose name starts with `prefix`."""
    for path in sorted(directory.glob(f"{prefix}*/checks.json")):
        for check in json.loads(path.read_text()):
            status = str(check.get("status"))
            outcome.counts[status] = outcome.counts.get(status, 0) + 1
            if status in ("FAILURE", "WARNING"):
                outcome.failures.append(f"{status} {check.get('id')}: {check.get('errorMessage', '')}"[:300])
            details = check.get("details")
            said = (details.get("message") or details.get("note")) if isinstance(details, dict) else None
            if status in ("INFO", "SKIPPED", "WARNING") and said and not outcome.note:
                outcome.note = str(said)[:160]  # why the scenario does not apply, in its words


# --- server mode --------------------------------------------------------------------------------


def run_server_scenario(
    node: Path,
    cli: Path,
    env: dict[str, str],
    mcp_url: str,
    scenario: str,
    wire: str,
    results: Path,
    required: bool,
) -> Outcome:
    outcome = Outcome(scenario, wire, required)
    out = results / "server" / wire / scenario
    out.mkdir(parents=True, exist_ok=True)
    command = [
        str(node),
        str(cli),
        "server",
        "--url",
        mcp_url,
        "--scenario",
        scenario,
        "--spec-version",
        wire,
    ]
    try:
        done = subprocess.run(
            [*command, "-o", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT,
            preexec_fn=die_with_parent,
            check=False,
        )
    except subprocess.TimeoutExpired:
        outcome.exit_code = -1
        outcome.failures.append(f"no result within {SCENARIO_TIMEOUT:.0f} s")
        return outcome
    (out / "suite.log").write_text(done.stdout + done.stderr)
    outcome.exit_code = done.returncode
    read_checks(out, outcome)
    if not outcome.counts and done.returncode == 0:
        outcome.note = "not applicable at this wire (the suite skipped it)"
    elif not outcome.counts:
        outcome.failures.append((done.stderr or done.stdout).strip()[-300:])
    return outcome


# --- authorization mode -------------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _Forms(HTMLParser):
    """The forms of a page as a browser sees them: action, fields with their values, buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get").lower()))
        elif self.forms and tag == "input" and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif self.forms and tag == "button" and a.get("name"):
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))


def sign_in_and_consent(authorization_url: str, redirect_uri: str) -> None:
    """What a person does in the browser the suite asks for: sign in as the demo user, approve the
    consent page (CONTRACT.md's forms, submitted as a browser submits them), and land on the
    suite's callback with the code."""
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        response = browser.get(authorization_url)
        for _ in range(8):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(redirect_uri):
                    deliver(browser, location)
                    return
                response = browser.get(location)
                continue
            if response.status_code != 200:
                raise ConformanceError(f"the authorization page answered {response.status_code}")
            parser = _Forms()
            parser.feed(response.text)
            form = next((f for f in parser.forms if f.method == "post"), None)
            if form is None:
                raise ConformanceError("the authorization page has no form to submit")
            data = dict(form.fields)
            if "password" in data:
                data.update(username=DEMO_USERNAME, password=DEMO_PASSWORD)
            if ("decision", "approve") in form.buttons:
                data["decision"] = "approve"
            page = response.url
            response = browser.post(
                urljoin(str(page), form.action or str(page)),
                data=data,
                headers={"Origin": f"{page.scheme}://{page.netloc.decode()}"},
            )
        raise ConformanceError("signing in and consenting did not reach the suite's callback")


def deliver(browser: httpx.Client, callback: str) -> None:
    """Follow the redirect to the suite's loopback callback, which it starts as it prints the URL."""
    for _ in range(20):
        try:
            browser.get(callback)
            return
        except httpx.ConnectError:
            time.sleep(0.25)
    raise ConformanceError("the suite's callback server does not answer")


def run_authorization(node: Path, cli: Path, base_url: str, results: Path) -> list[Outcome]:
    callback_port = free_port()
    redirect_uri = f"http://127.0.0.1:{callback_port}/callback"
    registered = httpx.post(
        f"{base_url}/oauth/register",
        json={
            "client_name": "MCP conformance suite",
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
        },
        timeout=30,
    )
    if registered.status_code != 201:
        raise ConformanceError(
            f"registering the suite's client answered {registered.status_code}: {registered.text[:300]}"
        )
    client_id = registered.json()["client_id"]
    out = results / "authorization"
    out.mkdir(parents=True, exist_ok=True)
    command = [
        str(node),
        str(cli),
        "authorization",
        "--url",
        base_url,
        "--client-id",
        client_id,
        "--resource",
        f"{base_url}/mcp",
        "--port",
        str(callback_port),
        "-o",
        str(out),
    ]
    suite = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=die_with_parent
    )
    timer = threading.Timer(AUTHORIZATION_TIMEOUT, suite.kill)
    timer.start()
    problems: list[str] = []
    lines: list[str] = []
    try:
        assert suite.stdout is not None
        for line in suite.stdout:
            lines.append(line)
            if line.startswith(f"{base_url}/oauth/authorize?"):
                try:
                    sign_in_and_consent(line.strip(), redirect_uri)
                except (ConformanceError, httpx.HTTPError) as exc:
                    problems.append(f"signing in: {exc}")
                    suite.kill()
        exit_code = suite.wait()
    finally:
        timer.cancel()
    (out / "authorization.log").write_text("".join(lines))
    outcomes = []
    for scenario in ("authorization-server-metadata-endpoint", "authorization-code-grant"):
        outcome = Outcome(scenario, "authorization", required=True)
        read_checks(out, outcome, f"authorization-server-{scenario}-")
        if not outcome.counts:
            outcome.exit_code = exit_code or 1
            outcome.failures += problems or ["the suite wrote no result (see authorization.log)"]
        outcomes.append(outcome)
    return outcomes


# --- the run ------------------------------------------------------------------------------------


def print_summary(outcomes: list[Outcome], suite: str, results: Path) -> None:
    print(f"\n=== MCP conformance: {suite} against the local stack ===")
    print(f"{'scenario':<40} {'wire':<14} {'checks':<14} result")
    for group, title in ((True, "required"), (False, "not scored (--all)")):
        rows = [o for o in outcomes if o.required is group]
        if not rows:
            continue
        print(f"-- {title}")
        for o in rows:
            note = f"  ({o.note})" if o.verdict == "n/a" and o.note else ""
            print(f"{o.scenario:<40} {o.wire:<14} {o.checks:<14} {o.verdict}{note}")
    failed = [o for o in outcomes if o.required and o.failed]
    passed = sum(1 for o in outcomes if o.required and not o.failed)
    print(f"\nrequired: {passed} passed, {len(failed)} failed (scenario x wire); results in {results}")
    for o in failed:
        print(f"  FAIL {o.scenario} @ {o.wire}")
        for line in o.failures[:6]:
            print(f"      {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.conformance", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--all", action="store_true", help="also run every other server scenario (not scored)"
    )
    parser.add_argument("--no-authorization", action="store_true", help="skip authorization mode")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        node = node_bin()
        cli = install_suite(node)
        wires = applicable_wires(node, cli)
        results = SUITE_DIR / "results" / time.strftime("%Y%m%dT%H%M%S")
        with local_stack(SUITE_DIR / "stack.log") as base_url:
            mcp_url = f"{base_url}/mcp"
            env = {
                **os.environ,
                "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "NODE_OPTIONS": f"--import={PRELOAD.as_uri()}",
                "CONFORMANCE_BEARER_URL": mcp_url,
                "CONFORMANCE_BEARER_TOKEN": demo_token(base_url),
                "CONFORMANCE_SUITE_DIR": str(SUITE_DIR),
            }
            _say(f"{suite_version()} against {mcp_url}")
            plan = [(s, w, True) for s in REQUIRED for w in wires[s]]
            if args.all:
                plan += [(s, w, False) for s, ws in wires.items() if s not in REQUIRED for w in ws]
            outcomes = []
            for scenario, wire, required in plan:
                outcome = run_server_scenario(node, cli, env, mcp_url, scenario, wire, results, required)
                _say(f"{scenario} @ {wire}: {outcome.verdict} ({outcome.checks})")
                outcomes.append(outcome)
            if not args.no_authorization:
                for outcome in run_authorization(node, cli, base_url, results):
                    _say(f"{outcome.scenario}: {outcome.verdict} ({outcome.checks})")
                    outcomes.append(outcome)
    except (ConformanceError, subprocess.SubprocessError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_summary(outcomes, suite_version(), results)
    print(f"({time.monotonic() - started:.0f} s)")
    return 1 if any(o.required and o.failed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
