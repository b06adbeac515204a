"""The cost of one DPoP proof check (RFC 9449), alone: `python bench/dpop_check.py [N]`.

What `/mcp` and `/api` add per request for a DPoP-bound token, without the handler around it:
`primitives.dpop.DpopChecker.check` (parse, signature, `htm`/`htu`/`iat`/`ath`, the nonce's HMAC,
the in-memory replay cache) over N distinct proofs signed beforehand, per algorithm. Through the
handler, `make bench` prints "DPoP added cost on /mcp" (bearer and DPoP `tools/list` paired in one
process) after its rows `mcp: tools/list` and `mcp: tools/list (DPoP)`
(`bench/run.py --only tools/list` for just those).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from wallet_mcp.primitives import dpop

URL = "https://wallet.example/mcp"
TOKEN = "eyJ" + "a" * 900  # an access token's length; only its hash is used


def _signer(alg: str) -> tuple[object, dict[str, object]]:
    if alg == "ES256":
        key: object = ec.generate_private_key(ec.SECP256R1())
        return key, json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))  # type: ignore[attr-defined]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))  # type: ignore[attr-defined]


def measure(alg: str, runs: int) -> list[float]:
    key, jwk = _signer(alg)
    nonces = dpop.Nonces(lambda: b"\x01" * 32)
    now = int(time.time())
    nonce = nonces.current(now)
    claims = {"htm": "POST", "htu": URL, "iat": now, "nonce": nonce, "ath": dpop.access_token_hash(TOKEN)}
    proofs = [
        jwt.encode(
            {**claims, "jti": uuid.uuid4().hex}, key, algorithm=alg, headers={"typ": "dpop+jwt", "jwk": jwk}
        )  # type: ignore[arg-type]
        for _ in range(runs)
    ]
    checker = dpop.DpopChecker(nonces, dpop.ReplayCache().first_use)
    timings = []
    for proof in proofs:
        started = time.perf_counter()
        checker.check([proof], method="POST", url=URL, now=now, access_token=TOKEN)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(f"DPoP proof check, {runs} proofs per algorithm, CPython {sys.version.split()[0]}")
    print(f"{'alg':6} {'p50 ms':>8} {'p95 ms':>8}")
    for alg in dpop.ALGORITHMS:
        timings = sorted(measure(alg, runs))
        print(f"{alg:6} {statistics.median(timings):8.3f} {timings[int(0.95 * (len(timings) - 1))]:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
