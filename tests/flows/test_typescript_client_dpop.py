"""DPoP (RFC 9449) end to end with the official TypeScript client 2.x (`@modelcontextprotocol/client`,
the pinned version) against a local stack with `RequireDpop`: every token is DPoP-bound and `/mcp`
takes no bearer token.

The client signs its own proofs (SEP-1932): a host whose `OAuthClientProvider` implements `dpop()`
(returning a `DpopSession`, the SDK's key pair and nonce memory) gets a proof signed into every token
request, and its Streamable HTTP transport presents a `token_type: DPoP` token as `Authorization:
DPoP` with a fresh proof (`ath`, the server's nonce, one retry on a `use_dpop_nonce` challenge).
`tests/clients/ts_client.mjs` is the host, as in test_client_generations.py, told `dpop`: from the
MCP URL alone it discovers, registers, signs the user in at the real login and consent pages,
exchanges the code and calls tools. Its session then starts on a new `DpopSession` of the same key
(a host restarted with its saved key pair): no nonce remembered, so `/mcp` asks for one and the SDK
answers. The same host without `dpop()` is refused its token.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from devstack import clients, toolchain
from tests.support.local_stack import LocalStack, running_stack
from tests.support.sdk_drivers import DriverRun, drive, node_driver

pytestmark = [pytest.mark.flow]

CALLBACK = "http://localhost:8765/callback"
CALLS = [{"tool": "ping", "arguments": {}}, {"tool": "getTotalBalance", "arguments": {}}]


@pytest.fixture(scope="module")
def dpop_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(tmp_path_factory.mktemp("ts-dpop"), parameters={"RequireDpop": "true"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def runs(dpop_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, DriverRun]:
    """The host with the SDK's DPoP and the same host without it, side by side."""
    workdir = tmp_path_factory.mktemp("ts-dpop-drivers")
    install = clients.ensure(clients.TYPESCRIPT_CLIENT_2)
    node_bin = toolchain.ensure_node()
    node = str(node_bin / "node") if node_bin else shutil.which("node") or "node"
    command = [node, str(node_driver(install))]
    common = {"generation": 2, "era": "legacy", "mcp_url": dpop_stack.mcp_url, "redirect_uri": CALLBACK}
    plans: dict[str, dict[str, Any]] = {
        "dpop": {
            "dpop": True,
            "dpop_new_session": True,
            "reveal_tokens": True,
            "calls": CALLS,
            "refresh": None,
        },
        "bearer": {"calls": CALLS[:1], "refresh": None},
    }

    async def both() -> list[DriverRun]:
        return await asyncio.gather(
            *(
                drive(
                    f"ts-client-2-{name}",
                    command,
                    {**common, **plan, "client_name": f"TypeScript client DPoP test: {name}"},
                    cwd=workdir,
                    timeout_s=60,
                )
                for name, plan in plans.items()
            )
        )

    return dict(zip(plans, asyncio.run(both()), strict=True))


@pytest.fixture(scope="module")
def dpop_run(runs: dict[str, DriverRun]) -> DriverRun:
    run = runs["dpop"]
    if run.report["errors"]:
        pytest.fail(run.failure(), pytrace=False)
    return run


def access_token(run: DriverRun) -> str:
    (tokens,) = run.report["tokens"]
    return tokens["access_token"]


def test_the_typescript_client_calls_tools_with_a_dpop_bound_token(dpop_run):
    report = dpop_run.report
    assert report["sdk"] == {
        "package": "@modelcontextprotocol/client",
        "version": clients.TYPESCRIPT_CLIENT_2.version,
    }
    assert dpop_run.pages_seen == ["login", "consent"]
    for call in report["results"]:
        assert not call["is_error"], call
    ping = next(r for r in report["results"] if r["tool"] == "ping")
    assert ping["structured"]["client_id"] == report["client_id"]
    assert [r["tool"] for r in report["results"]] == [c["tool"] for c in CALLS]
    (tokens,) = report["tokens"]
    assert tokens["token_type"] == "DPoP"


def test_the_sdk_signs_every_token_request_and_answers_the_servers_nonce(dpop_run):
    http = dpop_run.report["http"]
    token_requests = [e for e in http if e["path"] == "/oauth/token"]
    # the first proof has no nonce: the server names one, and the SDK signs the request again with it
    assert [(e["status"], e.get("error")) for e in token_requests] == [(400, "use_dpop_nonce"), (200, None)]
    assert all(e["dpop_proof"] for e in token_requests)
    assert all(e["status"] < 500 for e in http), http


def test_every_mcp_request_carries_the_dpop_scheme_and_a_proof_and_answers_the_nonce(dpop_run):
    http = dpop_run.report["http"]
    issued_at = next(i for i, e in enumerate(http) if e["path"] == "/oauth/token" and e["status"] == 200)
    with_token = [e for e in http[issued_at:] if e["path"] == "/mcp"]
    assert with_token, http
    assert {(e["scheme"], e["dpop_proof"]) for e in with_token} == {("DPoP", True)}
    # the new session's first proof has no nonce: 401 `use_dpop_nonce`, and the SDK signs the
    # request again with the `DPoP-Nonce` it was given; every later one is accepted at once (the
    # 2025 transport's GET stream is not served here: 405)
    posts = [(e["rpc"], e["status"], e.get("error")) for e in with_token if e["method"] == "POST"]
    assert posts == [
        ("initialize", 401, "use_dpop_nonce"),
        ("initialize", 200, None),
        ("notifications/initialized", 202, None),
        ("tools/list", 200, None),
        *(("tools/call", 200, None) for _ in CALLS),
    ], with_token


def test_the_token_is_bound_to_the_key_the_sdk_generated(dpop_run):
    claims = jwt.decode(access_token(dpop_run), options={"verify_signature": False})
    dpop = dpop_run.report["dpop"]
    assert dpop["alg"] == "ES256" and dpop["jwk"]["crv"] == "P-256"
    assert "d" not in dpop["jwk"]
    assert claims["cnf"] == {"jkt": dpop["thumbprint"]}


def test_the_same_token_as_a_bearer_token_is_refused(dpop_run, dpop_stack):
    answer = httpx.post(
        dpop_stack.mcp_url,
        headers={
            "Authorization": f"Bearer {access_token(dpop_run)}",
            "Accept": "application/json, text/event-stream",
        },
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        timeout=30,
    )
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith("DPoP ") and 'error="invalid_token"' in challenge


def test_the_client_without_dpop_is_refused_its_token_and_says_why(runs):
    run = runs["bearer"]
    report = run.report
    # the SDK reports the server's error and ends (no hang: drive() would have raised)
    assert report["dpop"] is None
    assert report["tokens"] == [] and report["results"] == []
    assert any("invalid_dpop_proof" in error for error in report["errors"]), run.failure()
    token_requests = [e for e in report["http"] if e["path"] == "/oauth/token"]
    # the SDK tries the exchange once more after invalidating its tokens: the code was not spent by
    # the refusal (else `invalid_grant`), and there is no third attempt nor a new sign-in
    assert [(e["status"], e["error"], e["dpop_proof"]) for e in token_requests] == [
        (400, "invalid_dpop_proof", False)
    ] * 2
    assert report["authorizations"] == 1
    assert all(e["status"] < 500 for e in report["http"]), report["http"]
