"""The SDK generations that hosts ship, each as its own program against the local stack: the MCP
Python SDK 1.x (tests/clients/py1_client.py), the TypeScript SDK 1.x and the TypeScript client 2.x
(tests/clients/ts_client.mjs; 2.x twice: its default 2025 handshake, and `auto`, which speaks
2026-07-28 here). mcp 2.x, in the project venv, is driven in test_oauth_flows.py.

Each client starts from nothing but the MCP URL: 401 → protected-resource metadata → authorization
server metadata → dynamic registration → the real login and consent pages (a `FormBrowser` plays
the user) → code exchange → its handshake → tools/list → every read tool → and, once its access
token has expired, a refresh_token grant that the session rides through. Access tokens live 5
seconds on this module's stack so that the refresh happens for real, from each SDK's own logic.

Each flow runs once, all at the same time (most of a run is waiting for a token to expire); the
tests below assert on what each client reported. The pinned versions are in tests/clients/*/
(installed by dev/devstack/clients.py).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from devstack import clients, toolchain
from devstack.clients import PinnedClient
from devstack.seed import DEMO_ACCOUNTS, DEMO_TRANSACTIONS
from tests.support.local_stack import LocalStack, running_stack
from tests.support.sdk_drivers import DRIVERS, DriverFailed, DriverRun, drive, node_driver
from wallet_mcp.primitives import scopes

pytestmark = [pytest.mark.flow]

ACCESS_TOKEN_TTL_S = 5
"""Short, so each SDK's own refresh logic runs; not shorter, so that no call of the handshake, slowed
by a cold start on a busy machine, meets an expired token."""
CALLBACK = "http://localhost:8765/callback"
READ_CALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("ping", {}),
    ("getTotalBalance", {}),
    ("getUserAccounts", {}),
    ("getRecentTransactions", {"limit": 3}),
    ("getSpendingAnalytics", {"period": "last_3_months"}),
)
READ_SCOPES = {
    scopes.TOOLS_LIST,
    scopes.TOOLS_CALL,
    scopes.ACCOUNTS_READ,
    scopes.TRANSACTIONS_READ,
    scopes.ANALYTICS_READ,
}
"""tools/list, and every read tool's own scopes (`mcp_server/wallet_tools.py`)."""


@dataclass(frozen=True)
class Generation:
    id: str
    client: PinnedClient
    driver: dict[str, Any] = field(default_factory=dict)
    """What tests/clients/ts_client.mjs is told besides the common plan (generation, era)."""
    protocol_version: str = "2025-11-25"
    handshake: tuple[str, ...] = ("initialize", "notifications/initialized")
    standalone_stream: bool = False
    """Opens the GET stream of the 2025 transport after the handshake."""
    refreshes_on_401: bool = True
    """Keeps no expiry of its own: refreshes when the server refuses the expired token."""


GENERATIONS = (
    Generation("python-mcp-1", clients.PYTHON_MCP_1, refreshes_on_401=False),
    Generation("typescript-sdk-1", clients.TYPESCRIPT_SDK_1, {"generation": 1}, standalone_stream=True),
    Generation(
        "typescript-client-2",
        clients.TYPESCRIPT_CLIENT_2,
        {"generation": 2, "era": "legacy"},
        standalone_stream=True,
    ),
    Generation(
        "typescript-client-2-auto",
        clients.TYPESCRIPT_CLIENT_2,
        {"generation": 2, "era": "auto"},
        protocol_version="2026-07-28",
        handshake=("server/discover",),
    ),
)
BY_ID = {g.id: g for g in GENERATIONS}
TS_STREAMING = [g.id for g in GENERATIONS if g.standalone_stream]


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(
        tmp_path_factory.mktemp("client-generations"),
        parameters={"AccessTokenTtlSeconds": str(ACCESS_TOKEN_TTL_S)},
    ) as stack:
        yield stack


def _command(generation: Generation, install: Path) -> list[str]:
    if generation.client.registry == "PyPI":
        return [str(clients.python_of(install)), str(DRIVERS / "py1_client.py")]
    node_bin = toolchain.ensure_node()
    node = str(node_bin / "node") if node_bin else shutil.which("node") or "node"
    return [node, str(node_driver(install))]


READ_FLOW = {
    "calls": [{"tool": tool, "arguments": arguments} for tool, arguments in READ_CALLS],
    # called until the SDK has saved a refreshed token: after the access token's 5 s, or for SDKs
    # that wait for a 401 after the 5 s of clock leeway the server allows (`AccessTokenVerifier`) too
    "refresh": {"tool": "getTotalBalance", "arguments": {}, "interval_s": 0.5, "timeout_s": 30},
}
STEP_UP = "python-mcp-1-step-up"
STEP_UP_FLOW = {
    # a tool beyond the read scopes first (deleting a report that does not exist changes nothing),
    # then every read tool again
    "calls": [
        {"tool": "deleteSpendingReport", "arguments": {"slug": "no-such-report"}},
        *READ_FLOW["calls"],
    ],
    "refresh": None,
}
RESTART = "python-mcp-1-restart"


async def _run(
    run_id: str, generation: Generation, flow: dict[str, Any], stack: LocalStack, workdir: Path
) -> DriverRun:
    install = await asyncio.to_thread(clients.ensure, generation.client)
    config = {
        **generation.driver,
        **flow,
        "mcp_url": stack.mcp_url,
        "redirect_uri": CALLBACK,
        "client_name": f"Client generations: {run_id}",
    }
    return await drive(run_id, _command(generation, install), config, cwd=workdir, timeout_s=120)


async def _restart(stack: LocalStack, workdir: Path) -> DriverRun:
    """A host that signs in, saves its tokens and quits, then starts again from them once the access
    token has ended (past the server's 5 s of leeway too); the second run is returned."""
    python = BY_ID["python-mcp-1"]
    saved = {"token_file": str(workdir / "restarting-host-tokens.json"), "refresh": None}
    first = await _run(f"{RESTART}-first", python, {**saved, "calls": []}, stack, workdir)
    if first.report["errors"]:
        raise DriverFailed(first.failure())
    await asyncio.sleep(ACCESS_TOKEN_TTL_S + 5.5)  # the token was issued before the first run ended
    return await _run(RESTART, python, {**saved, "calls": READ_FLOW["calls"][:2]}, stack, workdir)


@pytest.fixture(scope="module")
def runs(
    short_lived: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, DriverRun | BaseException]:
    """Every flow, all at once; a client that fails to install or run fails its own tests only."""
    workdir = tmp_path_factory.mktemp("drivers")
    flows = {g.id: (g, READ_FLOW) for g in GENERATIONS} | {STEP_UP: (BY_ID["python-mcp-1"], STEP_UP_FLOW)}

    async def all_runs() -> list[DriverRun | BaseException]:
        return await asyncio.gather(
            *(_run(run_id, g, flow, short_lived, workdir) for run_id, (g, flow) in flows.items()),
            _restart(short_lived, workdir),
            return_exceptions=True,
        )

    return dict(zip([*flows, RESTART], asyncio.run(all_runs()), strict=True))


def run_of(runs: dict[str, DriverRun | BaseException], generation_id: str) -> DriverRun:
    run = runs[generation_id]
    if isinstance(run, clients.ClientInstallError | toolchain.ToolchainError):
        pytest.fail(str(run), pytrace=False)
    if isinstance(run, BaseException):
        raise run
    if run.report["errors"]:  # not an AssertionError: an expected failure must not hide it
        pytest.fail(run.failure(), pytrace=False)
    return run


def exchanges(run: DriverRun) -> list[tuple[str, str, int]]:
    return [(e["method"], e["path"], e["status"]) for e in run.report["http"]]


def result(run: DriverRun, tool: str) -> dict[str, Any]:
    (found,) = [r for r in run.report["results"] if r["tool"] == tool]
    assert not found["is_error"], found["text"]
    return found


@pytest.mark.parametrize("generation_id", list(BY_ID))
def test_the_client_discovers_registers_and_signs_in_from_the_mcp_url_alone(runs, short_lived, generation_id):
    run = run_of(runs, generation_id)
    generation = BY_ID[generation_id]
    http = run.report["http"]
    assert exchanges(run)[:5] == [
        ("POST", "/mcp", 401),
        ("GET", "/.well-known/oauth-protected-resource/mcp", 200),
        ("GET", "/.well-known/oauth-authorization-server", 200),
        ("POST", "/oauth/register", 201),
        ("POST", "/oauth/token", 200),
    ], http
    assert http[0]["rpc"] == generation.handshake[0]
    assert http[4]["grant_type"] == "authorization_code"
    # the handshake, now with the token
    calls = [(e["rpc"], e["status"]) for e in http[5:] if e["method"] == "POST" and e["path"] == "/mcp"]
    assert calls[: len(generation.handshake)] == [
        (rpc, 202 if rpc.startswith("notifications/") else 200) for rpc in generation.handshake
    ]
    assert all(e["status"] < 500 for e in http), http

    assert run.report["sdk"]["version"] == generation.client.version
    assert run.pages_seen == ["login", "consent"]
    (url,) = run.authorization_urls
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{short_lived.base_url}/oauth/authorize?")
    assert query["client_id"] == run.report["client_id"]
    assert query["redirect_uri"] == CALLBACK
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["resource"] == short_lived.mcp_url
    assert query["state"]
    # the scope comes from the server's challenge: every read tool's scopes, and no write scope
    assert set(query["scope"].split()) >= READ_SCOPES
    assert not scopes.MONEY_MOVING_SCOPES & set(query["scope"].split())
    granted = run.report["tokens"][0]
    assert set(granted["scope"].split()) >= READ_SCOPES
    assert granted["expires_in"] == ACCESS_TOKEN_TTL_S and granted["refresh"]
    assert run.report["protocol_version"] == generation.protocol_version
    assert run.report["server_info"]["name"] == "wallet-mcp"


@pytest.mark.parametrize("generation_id", list(BY_ID))
def test_the_client_lists_the_tools_and_calls_every_read_tool(runs, generation_id):
    run = run_of(runs, generation_id)
    tools = {t["name"]: t for t in run.report["tools"]}
    # every read-only tool the server lists is called, and nothing else
    assert {name for name, t in tools.items() if t["read_only"]} == {tool for tool, _ in READ_CALLS}
    assert [r["tool"] for r in run.report["results"]] == [tool for tool, _ in READ_CALLS]

    assert result(run, "ping")["structured"]["client_id"] == run.report["client_id"]

    seed_total = sum(Decimal(balance) for *_, balance in DEMO_ACCOUNTS)
    balance = result(run, "getTotalBalance")
    assert balance["structured"] == {
        "totals": [{"currency": "USD", "amount": str(seed_total)}],
        "accounts": len(DEMO_ACCOUNTS),
        "scope": scopes.ACCOUNTS_READ,
    }
    assert balance["text"].startswith(f"💰 Total Balance: ${seed_total:,}\nAccounts: {len(DEMO_ACCOUNTS)}")

    accounts = result(run, "getUserAccounts")["structured"]["accounts"]
    assert {(a["name"], a["balance"]) for a in accounts} == {(name, b) for _, name, _, b in DEMO_ACCOUNTS}

    newest = sorted(DEMO_TRANSACTIONS, key=lambda t: t[1])[:3]
    recent = result(run, "getRecentTransactions")["structured"]["transactions"]
    assert [t["description"] for t in recent] == [description for *_, description in newest]

    housing = [t for t in DEMO_TRANSACTIONS if t[3] == "housing"]
    spending = result(run, "getSpendingAnalytics")["structured"]
    (entry,) = [c for c in spending["categories"] if c["category"] == "housing"]
    assert Decimal(entry["spent"]) == -sum(Decimal(t[2]) for t in housing)
    assert entry["count"] == len(housing)


@pytest.mark.parametrize("generation_id", list(BY_ID))
def test_the_expired_access_token_is_refreshed_and_the_session_goes_on(runs, generation_id):
    run = run_of(runs, generation_id)
    generation = BY_ID[generation_id]
    tokens = run.report["tokens"]
    assert len(tokens) >= 2, "no token was refreshed"
    first, last = tokens[0], tokens[-1]
    assert last["access"] != first["access"]
    assert last["refresh"] != first["refresh"]  # rotated (OAuth 2.1 §4.3.1)
    assert last["scope"] == first["scope"]

    http = run.report["http"]
    grants = [e["grant_type"] for e in http if e["path"] == "/oauth/token" and e["status"] == 200]
    assert grants == ["authorization_code"] + ["refresh_token"] * (len(tokens) - 1)
    # the user was not sent back to the browser, and every call after the expiry succeeded
    assert run.report["authorizations"] == 1
    assert run.report["refresh_results"] and not any(r["is_error"] for r in run.report["refresh_results"])

    after_login = http[5:]
    refused = [i for i, e in enumerate(after_login) if e["path"] == "/mcp" and e["status"] == 401]
    refreshes = [i for i, e in enumerate(after_login) if e.get("grant_type") == "refresh_token"]
    if generation.refreshes_on_401:
        # the server refused the expired token once, the SDK refreshed and sent the call again
        assert [i + 1 for i in refused] == refreshes, after_login
        assert all(after_login[i + 2]["status"] == 200 for i in refused)
    else:
        assert refused == [], after_login  # refreshed ahead of the expiry it computed


@pytest.mark.parametrize("generation_id", TS_STREAMING)
def test_the_standalone_stream_is_refused_at_once_and_the_client_sees_no_error(runs, generation_id):
    """The 2025 transport opens a GET stream once the handshake is done; this stateless server
    answers 405 before any token check (`mcp_server/http.py`)."""
    run = run_of(runs, generation_id)
    http = run.report["http"]
    gets = [e for e in http if e["method"] == "GET" and e["path"] == "/mcp"]
    assert [e["status"] for e in gets] == [405]  # refused, and not tried again
    # the client went on at once: tools/list left as soon as the handshake was answered
    initialized = next(e for e in http if e.get("rpc") == "notifications/initialized")
    listed = next(e for e in http if e.get("rpc") == "tools/list")
    assert gets[0]["start_ms"] >= initialized["end_ms"]
    assert listed["start_ms"] - initialized["end_ms"] < 1000, http
    # the only error the client reported is the UnauthorizedError that sent the user to sign in
    assert [e for e in run.report["client_errors"] if e["phase"] == "session"] == []
    assert run.report["elapsed_s"] < 60


def test_the_2026_client_opens_no_standalone_stream(runs):
    run = run_of(runs, "typescript-client-2-auto")
    assert run.report["era"] == "modern"
    assert not [e for e in run.report["http"] if e["method"] in ("GET", "DELETE") and e["path"] == "/mcp"]
    assert run.report["client_errors"] == []


def test_after_a_step_up_the_2025_client_keeps_the_scopes_it_had(runs):
    """The Python SDK 1.x re-authorizes with exactly the scope of the 403 challenge (MCP 2025-11-25
    §Scope Selection Strategy); the challenge names the granted scopes too (§Scope Challenge
    Handling, the recommended approach), so the new token still serves every read tool: one more
    consent, not one for each tool called afterwards."""
    run = run_of(runs, STEP_UP)
    first, stepped_up = run.report["tokens"][0], run.report["tokens"][-1]
    assert run.report["authorizations"] == 2, [t["scope"] for t in run.report["tokens"]]
    assert run.pages_seen == ["login", "consent", "consent"]
    assert set(stepped_up["scope"].split()) == set(first["scope"].split()) | {scopes.RESOURCES_WRITE}

    deleted, *reads = run.report["results"]
    assert deleted["is_error"] and "no saved report" in deleted["text"]
    assert [r["tool"] for r in reads] == [tool for tool, _ in READ_CALLS]
    assert not any(r["is_error"] for r in reads)


def test_a_restarted_2025_client_is_not_sent_to_ask_for_write_access(runs):
    """The Python SDK 1.x does not know when a saved token ends: after a restart it sends it, gets
    401, and (never refreshing on a 401) starts a new authorization. Its scope comes from that 401's
    challenge, else every scope of the protected-resource metadata (MCP 2025-11-25 §Scope Selection
    Strategy), which lists the write scopes too: the challenge must say which scopes to ask for."""
    run = run_of(runs, RESTART)
    http = run.report["http"]
    assert (http[0]["rpc"], http[0]["status"]) == ("initialize", 401)  # the saved token, refused
    assert not [e for e in http if e["path"] == "/oauth/register"]  # the saved registration, reused
    assert not any(r["is_error"] for r in run.report["results"])
    (url,) = run.authorization_urls
    requested = set(parse_qs(urlsplit(url).query)["scope"][0].split())
    assert requested >= READ_SCOPES
    assert not {s for s in requested if s.endswith(":write")}, requested
