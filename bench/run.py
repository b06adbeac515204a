"""`make bench`: cold start per function, warm latency, and AWS calls per operation.

Everything runs against the embedded emulator (moto_server) on loopback, with each function's
environment taken from the template, exactly as the local gateway runs them. Cold start is a
fresh Python process that imports the handler and serves one request (median of 5); warm
latency is measured in that same process afterwards. Figures are printed, never asserted. Beside
them, the import of the MCP and token functions paired run by run with the python-sdk's own
`simple-auth` example (bench/cold.py, which also runs on its own for a quick loop).

The probes run the code as deployed: the Lambda runtime's Python (python3.13), the CoreLayer
built by the same `src/Makefile` target `sam build` runs (for this machine's platform), each
function's `app.py` copied on its own, and no bytecode written (a deployed package is read-only).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cold, load  # noqa: E402
from bench.operations import COLD_START, HOST_STEPS, OPERATIONS, SCALE_OPERATIONS  # noqa: E402
from devstack.emulator import MotoServer  # noqa: E402
from devstack.layer import build_layer, lambda_python  # noqa: E402
from devstack.local import AWS_ENV, bring_up, local_stack  # noqa: E402
from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USER_ID  # noqa: E402
from wallet_mcp import aws  # noqa: E402
from wallet_mcp.credentials import opaque  # noqa: E402
from wallet_mcp.primitives import pkce  # noqa: E402
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES  # noqa: E402
from wallet_mcp.storage.auth_codes import AuthCodeStore, AuthorizationCode  # noqa: E402
from wallet_mcp.storage.clients import ClientRecord, ClientStore  # noqa: E402
from wallet_mcp.storage.consents import ConsentStore  # noqa: E402
from wallet_mcp.wallet.model import Account, Transaction  # noqa: E402
from wallet_mcp.wallet.store import account_item, transaction_item  # noqa: E402

BENCH_CLIENT = "bench-public-client"
BENCH_KEY_CLIENT = "bench-key-client"
BENCH_REDIRECT = "http://localhost:9/cb"
BENCH_VERIFIER = "b" * 64
COLD_RUNS = 5
WARM_RUNS = 50
BUDGETS_MS = {"TokenFunction": 700, "McpFunction": 1000}
HOST_TIMEOUT_MS = 10_000
"""How long MCP hosts wait for an answer while connecting (the TypeScript SDK's and Claude's default)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_code_batches: list[str] = []
"""Comma-separated authorization codes, one batch per probe that exchanges codes (each is single-use)."""


@dataclass(frozen=True)
class Runtime:
    """Where the probes run: the Lambda runtime's Python, the built layer, the functions' code."""

    python: str
    version: str
    layer: Path
    functions: Path


_runtime: list[Runtime] = []


def _deployed_code(stack, workdir: Path) -> Runtime:
    """The CoreLayer as `sam build` makes it (src/Makefile), for this machine, and each app.py."""
    python = lambda_python()
    if python is None:
        raise SystemExit("make bench needs python3.13 (the Lambda runtime) on PATH or in LAMBDA_PYTHON")
    try:
        layer = build_layer(workdir / "layer", python)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from exc
    for name, spec in stack.functions().items():
        (workdir / "functions" / name).mkdir(parents=True)
        shutil.copy2(Path(spec.code_uri) / "app.py", workdir / "functions" / name / "app.py")
    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Runtime(python, version, layer, workdir / "functions")


def _probe(
    stack, operation_name: str, warm_runs: int, extra_env: dict[str, str], paired_with: str | None = None
) -> dict:
    """`paired_with`: another operation of the same function, run in pairs with this one in the
    same process (`paired_ms` in the answer: each pair's difference, bench/probe.py)."""
    operation = OPERATIONS[operation_name]
    if operation_name == "token: authorization_code":
        extra_env = {**extra_env, "BENCH_CODES": _code_batches.pop()}
    runtime = _runtime[0]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", ""),
        "PYTHONPATH": os.pathsep.join([str(runtime.layer), str(ROOT / "dev")]),
        "PYTHONDONTWRITEBYTECODE": "1",
        **AWS_ENV,
        **extra_env,
        **stack.functions()[operation.function].environment,
        # the benchmark measures handlers, not the registration limits (55 registrations from one address)
        "RATE_LIMIT_REGISTRATIONS_PER_ADDRESS_PER_HOUR": "1000000",
        "RATE_LIMIT_REGISTRATIONS_PER_HOUR": "1000000",
        "AWS_LAMBDA_FUNCTION_NAME": operation.function,
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "BENCH_AWS_LATENCY_MS": os.environ.get("BENCH_AWS_LATENCY_MS", "0"),
    }
    out = subprocess.run(
        [
            runtime.python,
            str(ROOT / "bench" / "probe.py"),
            str(runtime.functions / operation.function),
            operation_name,
            str(warm_runs),
            *([paired_with] if paired_with else []),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"probe of {operation_name} failed:\n{out.stderr[-3000:]}\n{out.stdout[-1000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fmt_calls(calls: dict[str, float]) -> str:
    if not calls:
        return "none"
    return ", ".join(f"{k}={v:g}" for k, v in sorted(calls.items()))


def main() -> int:
    """`--only A,B`: only the warm rows whose operation names contain A or B (no cold starts, host
    steps, scale or load): `--only tools/list,client_credentials` for the DPoP rows and their
    baselines (`make bench` runs everything). `BENCH_AWS_LATENCY_MS=5` makes every AWS call of
    the probed function wait that long first, as an in-region round trip would (bench/probe.py)."""
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv[:-1] else None
    emulator = MotoServer("127.0.0.1", _free_port())
    emulator.start()
    workdir = tempfile.TemporaryDirectory(prefix="wallet-mcp-bench-")
    try:
        os.environ.update(AWS_ENV)
        os.environ["AWS_ENDPOINT_URL"] = emulator.url
        stack = local_stack("http://localhost:3000")
        bring_up(stack, emulator.url)
        _runtime.append(_deployed_code(stack, Path(workdir.name)))
        extra = {"AWS_ENDPOINT_URL": emulator.url, "BENCH_HOST": "localhost:3000"}
        extra["BENCH_CC_FORM"] = (
            f"grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"
        )
        extra.update(_grant_fixtures(stack))
        extra["BENCH_ACCESS_TOKEN"] = _access_token(stack, {**extra, "BENCH_ACCESS_TOKEN": ""})
        extra.update(_dpop_fixtures(stack, extra))
        first = _probe(stack, "token: authorization_code", 0, extra)["first_body"]
        extra["BENCH_REFRESH_TOKEN"] = json.loads(first)["refresh_token"]

        print(
            f"wallet-mcp benchmark — functions on CPython {_runtime[0].version} with the layer as built "
            f"for deployment (src/Makefile), {os.cpu_count()} CPUs, emulator {emulator.url}, "
            f"{time.strftime('%Y-%m-%d %H:%M')}"
        )
        if only is not None:
            _warm(stack, extra, only)
            if "tools/list" in only:
                _dpop_paired(stack, extra)
            return 0
        print()
        print(f"Cold start: fresh process, import then first request, median of {COLD_RUNS}")
        print("(cpu ms: the process's own CPU time for both; the wall-clock total adds waits and host noise)")
        print(
            f"{'function':18} {'first request':28} {'import ms':>10} {'first ms':>9} {'total ms':>9} "
            f"{'cpu ms':>7} {'budget':>7}  AWS calls in first request"
        )
        for function, operation_name in COLD_START.items():
            runs = [_probe(stack, operation_name, 0, extra) for _ in range(COLD_RUNS)]
            imp = statistics.median(r["import_ms"] for r in runs)
            first = statistics.median(r["first_ms"] for r in runs)
            total = statistics.median(r["import_ms"] + r["first_ms"] for r in runs)
            cpu = statistics.median(r["cpu_ms"] for r in runs)
            budget = BUDGETS_MS.get(function)
            print(
                f"{function:18} {operation_name:28} {imp:10.0f} {first:9.0f} {total:9.0f} {cpu:7.0f} "
                f"{(str(budget) if budget else '-'):>7}  {_fmt_calls(runs[-1]['first_calls'])}"
            )
        print()
        _beside_the_sdk_example(stack, extra, Path(workdir.name))
        print()
        _host_steps(stack, extra)
        print()
        _warm(stack, extra)
        _dpop_paired(stack, extra)
        print()
        _scale(stack, extra)
    finally:
        emulator.stop()
        workdir.cleanup()
    print()
    return load.main()


def _warm(stack, extra: dict[str, str], only: str | None = None) -> None:
    print(f"Warm, in-process (handler call with a payload 2.0 event), {WARM_RUNS} runs after the first")
    print(f"{'operation':34} {'p50 ms':>8} {'p95 ms':>8}  AWS calls per request (warm)")
    for operation_name in OPERATIONS:
        if operation_name in SCALE_OPERATIONS:
            continue
        if only is not None and not any(part in operation_name for part in only.split(",")):
            continue
        result = _probe(stack, operation_name, WARM_RUNS, extra)
        warm = sorted(result["warm_ms"])
        p95 = warm[int(0.95 * (len(warm) - 1))]
        p50 = statistics.median(warm)
        print(f"{operation_name:34} {p50:8.2f} {p95:8.2f}  {_fmt_calls(result['warm_calls'])}")


DPOP_PAIRS = 300


def _dpop_paired(stack, extra: dict[str, str]) -> None:
    """The added cost of DPoP on /mcp, paired: bearer and DPoP `tools/list` alternating in one
    process, the median of the per-pair differences. The two rows above come from two processes,
    whose baselines differ by more than the check costs on a shared machine."""
    result = _probe(stack, "mcp: tools/list", DPOP_PAIRS, extra, paired_with="mcp: tools/list (DPoP)")
    wall, cpu = sorted(result["paired_ms"]), sorted(result["paired_cpu_ms"])
    print(
        f"DPoP added cost on /mcp: {statistics.median(wall):.2f} ms (paired, n={len(wall)}; "
        f"CPU time {statistics.median(cpu):.2f} ms; wall interquartile "
        f"{wall[len(wall) // 4]:.2f} to {wall[(3 * len(wall)) // 4]:.2f} ms)"
    )


def _beside_the_sdk_example(stack, extra: dict[str, str], workdir: Path) -> None:
    """Import times paired with the python-sdk's simple-auth example, our side's import plus first
    requests from the same runs, and the SDK's floor (bench/cold.py)."""
    runtime = _runtime[0]
    example = cold.prepare_example(workdir, runtime.python)
    environments = {
        function: {
            **AWS_ENV,
            **extra,
            **stack.functions()[function].environment,
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
        for function, _, _ in cold.COMPARISONS
    }
    load_before = os.getloadavg()[0]
    results = cold.compare(
        runtime.python, runtime.layer, runtime.functions, example, environments, pairs=cold.PAIRS
    )
    cold.report(results, runtime.version, cold.PAIRS, load_before, os.getloadavg()[0])


def _host_steps(stack, extra: dict[str, str]) -> None:
    """Every step of a host's connection served by a cold function: the median and the worst case."""
    print(f"A host connecting: each step served by a cold start (import + request), {COLD_RUNS} runs")
    print(f"{'step':30} {'median ms':>10} {'worst ms':>9} {'host limit':>11} {'worst/limit':>12}")
    for operation_name in HOST_STEPS:
        runs = []
        for _ in range(COLD_RUNS):
            result = _probe(stack, operation_name, 0, extra)
            if operation_name == "token: refresh_token":  # the next run presents the rotated token
                extra = {**extra, "BENCH_REFRESH_TOKEN": json.loads(result["first_body"])["refresh_token"]}
            runs.append(result["import_ms"] + result["first_ms"])
        worst = max(runs)
        print(
            f"{operation_name:30} {statistics.median(runs):10.0f} {worst:9.0f} {HOST_TIMEOUT_MS:11d} "
            f"{worst / HOST_TIMEOUT_MS:12.1%}"
        )


def _grant_fixtures(stack) -> dict[str, str]:
    """A public client, authorization codes stored ahead (each exchange spends one) and the query of
    an authorization request, all written straight to the emulator's tables."""
    db = aws.dynamodb()
    now = int(time.time())
    ClientStore(db, stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id=BENCH_CLIENT,
            client_name="bench",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(BENCH_REDIRECT,),
            scope=SUPPORTED_SCOPES,
            created_at=now,
        )
    )
    # the demo user approved the bench client (codes and refreshes check the grant still stands)
    scope = ("mcp:tools:list", "mcp:tools:call")
    ConsentStore(db, stack.physical_ids["ConsentsTable"]).grant(
        DEMO_USER_ID, BENCH_CLIENT, scope, "http://localhost:3000/mcp", order=scope, now=now
    )
    codes = AuthCodeStore(db, stack.physical_ids["AuthCodesTable"])
    values = []
    for _ in range(3 * (WARM_RUNS + 1) + COLD_RUNS + 1):
        code = opaque.new_secret()
        values.append(code)
        codes.put(
            AuthorizationCode(
                code_hash=opaque.digest(code),
                client_id=BENCH_CLIENT,
                redirect_uri=BENCH_REDIRECT,
                code_challenge=pkce.s256(BENCH_VERIFIER),
                scope=("mcp:tools:list", "mcp:tools:call"),
                resource="http://localhost:3000/mcp",
                user_id=DEMO_USER_ID,
                auth_time=now,
                issued_at=now,
                expires_at=now + 3600,
            )
        )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": BENCH_CLIENT,
            "redirect_uri": BENCH_REDIRECT,
            "scope": "mcp:tools:list mcp:tools:call",
            "state": "bench",
            "code_challenge": pkce.s256(BENCH_VERIFIER),
            "code_challenge_method": "S256",
        }
    )
    # a client_credentials client that holds an EC P-256 public key instead of a secret
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    ClientStore(db, stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id=BENCH_KEY_CLIENT,
            client_name="bench (private_key_jwt)",
            token_endpoint_auth_method="private_key_jwt",
            grant_types=("client_credentials",),
            redirect_uris=(),
            scope=SUPPORTED_SCOPES,
            created_at=now,
            owner_user_id=DEMO_USER_ID,
            jwks=json.dumps({"keys": [jwk]}),
        )
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    batches = 3 * (WARM_RUNS + 1)
    for start in range(0, batches, WARM_RUNS + 1):  # for the warm runs, taken last
        _code_batches.append(",".join(values[start : start + WARM_RUNS + 1]))
    _code_batches.extend(values[batches:])  # one each for the first exchange and the cold runs
    return {
        "BENCH_PUBLIC_CLIENT": BENCH_CLIENT,
        "BENCH_REDIRECT_URI": BENCH_REDIRECT,
        "BENCH_VERIFIER": BENCH_VERIFIER,
        "BENCH_AUTHORIZE_QUERY": query,
        "BENCH_KEY_CLIENT": BENCH_KEY_CLIENT,
        "BENCH_KEY_PEM": pem,
        "BENCH_ISSUER": "http://localhost:3000",
    }


SCALE_SIZES = (10, 10_000, 100_000)


def _scale(stack, extra: dict[str, str]) -> None:
    """One user's wallet at 10, 10 000 and 100 000 transactions: the reads must stay flat."""
    print(
        "Scale: one user's wallet, warm MCP tools/call through the handler, "
        f"{WARM_RUNS} runs; read units computed from item sizes (bench/dynamo_units.py).\n"
        "  'own ms' is the handler's time outside AWS calls. moto evaluates a Query by walking the whole\n"
        "  partition in Python, so total latency against the emulator grows with it; DynamoDB reads\n"
        "  only the items returned, which is what the items-read and read-units columns count."
    )
    print(
        f"{'transactions':>12} {'load s':>7}  {'operation':28} {'p50 ms':>8} {'own ms':>8} "
        f"{'items read':>10} {'read units':>10}  AWS calls"
    )
    for size in SCALE_SIZES:
        started = time.perf_counter()
        token = _wallet_of_size(stack, size, extra)
        loaded = time.perf_counter() - started
        for name in SCALE_OPERATIONS:
            result = _probe(stack, name, WARM_RUNS, {**extra, "BENCH_WALLET_TOKEN": token})
            print(
                f"{size:>12,} {loaded:7.1f}  {name:28} {statistics.median(result['warm_ms']):8.2f} "
                f"{statistics.median(result['warm_own_ms']):8.2f} {result['warm_items_read']:10.1f} "
                f"{result['warm_read_units']:10.1f}  {_fmt_calls(result['warm_calls'])}"
            )


def _wallet_of_size(stack, size: int, extra: dict[str, str]) -> str:
    """A user with one account holding `size` transactions (bulk-written with the store's own item
    layout), a client owned by that user, and a client-credentials access token for it."""
    db = aws.dynamodb()
    table = stack.physical_ids["WalletTable"]
    user_id = f"bench-user-{size}"
    now = int(time.time())
    account_id = f"bench-account-{size}"
    amounts = [-(100 + i % 5000) for i in range(size)]
    account = Account(account_id, "Bench checking", "checking", "USD", sum(amounts), now, now)
    requests = [{"PutRequest": {"Item": account_item(user_id, account)}}]
    for i, amount in enumerate(amounts):
        tx = Transaction(
            transaction_id=f"{i:08d}",
            account_id=account_id,
            amount=amount,
            currency="USD",
            category="groceries",
            description=f"Bench purchase {i}",
            occurred_at=(now - size + i) * 1000,
            created_at=now,
        )
        requests.append({"PutRequest": {"Item": transaction_item(user_id, tx)}})
    for start in range(0, len(requests), 25):
        batch = {table: requests[start : start + 25]}
        while batch:
            batch = db.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}
    client_id = f"bench-client-{size}"
    ClientStore(db, stack.physical_ids["ClientsTable"]).put(
        ClientRecord(
            client_id=client_id,
            client_name=client_id,
            token_endpoint_auth_method="client_secret_post",
            client_secret_hash=opaque.digest("bench-secret"),
            grant_types=("client_credentials",),
            redirect_uris=(),
            scope=SUPPORTED_SCOPES,
            created_at=now,
            owner_user_id=user_id,
        )
    )
    form = f"grant_type=client_credentials&client_id={client_id}&client_secret=bench-secret"
    body = _probe(stack, "token: client_credentials", 0, {**extra, "BENCH_CC_FORM": form})["first_body"]
    return str(json.loads(body)["access_token"])


def _dpop_fixtures(stack, extra: dict[str, str]) -> dict[str, str]:
    """A DPoP key, the server's current nonce (derived as the functions derive it: GenerateMac over
    the nonce label with the confirmation key), and an access token bound to the key."""
    from wallet_mcp.compose import DPOP_NONCE_LABEL
    from wallet_mcp.primitives.dpop import Nonces

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    mac = aws.kms().generate_mac(
        KeyId=stack.physical_ids["ConfirmationKey"], Message=DPOP_NONCE_LABEL, MacAlgorithm="HMAC_SHA_256"
    )["Mac"]
    fixtures = {
        "BENCH_DPOP_KEY": pem,
        "BENCH_DPOP_NONCE": Nonces(lambda: bytes(mac)).current(int(time.time())),
        "BENCH_MCP_RESOURCE": "http://localhost:3000/mcp",
    }
    issued = _probe(stack, "token: client_credentials + DPoP", 0, {**extra, **fixtures})["first_body"]
    fixtures["BENCH_DPOP_ACCESS_TOKEN"] = json.loads(issued)["access_token"]
    return fixtures


def _access_token(stack, extra: dict[str, str]) -> str:
    """An MCP access token, minted by the real token handler."""
    return str(json.loads(_probe(stack, "token: client_credentials", 0, extra)["first_body"])["access_token"])


if __name__ == "__main__":
    sys.exit(main())
