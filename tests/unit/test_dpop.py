"""The pure DPoP pieces (RFC 9449): thumbprints (RFC 7638), `htu` comparison, nonces, the replay
cache, and proof checking, table-driven."""

from __future__ import annotations

import contextlib
import json
import time

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.dpop_client import DpopKey
from wallet_mcp.primitives import dpop

RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRX"
    "jBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqz"
    "s8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-"
    "G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)


def test_the_thumbprint_is_rfc_7638s_example():
    jwk = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert dpop.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", True),  # RFC 7638's example
        ("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs=", False),  # padded
        ("NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs", False),  # base64, not base64url
        ("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X", False),  # 42 characters
        ("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xt", False),  # trailing bits set
        ("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X\u00e9", False),
        ("", False),
    ],
)
def test_dpop_jkt_must_be_a_sha256_thumbprint(value, valid):
    """RFC 9449 §10: base64url (no padding) of a SHA-256 JWK thumbprint, 43 characters."""
    assert dpop.is_thumbprint(value) is valid


def test_the_signer_leaves_query_and_fragment_out_of_htu_and_its_repr_out_of_the_key():
    key = DpopKey()
    proof = dpop.ProofSigner.proof(key, "post", "https://rs.example/api/accounts?limit=5#x", access_token="t")
    claims = jwt.decode(proof, options={"verify_signature": False})
    assert claims["htu"] == "https://rs.example/api/accounts" and claims["htm"] == "POST"
    assert claims["ath"] == dpop.access_token_hash("t") and "nonce" not in claims
    assert repr(key) == f"ProofSigner(alg=ES256, jkt={key.jkt})"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://as.example/token", "https://as.example/token?x=1#f", True),
        ("https://AS.example:443/token", "https://as.example/token", True),
        ("HTTP://localhost:80/mcp", "http://localhost/mcp", True),
        ("https://as.example/token", "https://as.example/token/", False),
        ("https://as.example/token", "http://as.example/token", False),
        ("https://as.example/token", "https://as.example:8443/token", False),
        ("https://as.example/Token", "https://as.example/token", False),
    ],
)
def test_htu_is_compared_without_query_and_fragment(a, b, same):
    assert (dpop.normalized_uri(a) == dpop.normalized_uri(b)) is same


@pytest.mark.parametrize("url", ["/token", "ftp://as.example/x", "https://", "https://as.example:99999/"])
def test_what_is_not_an_absolute_http_url_normalizes_to_none(url):
    assert dpop.normalized_uri(url) is None


def test_a_nonce_lives_its_window_and_the_next():
    nonces = dpop.Nonces(lambda: b"k" * 32, window=300)
    issued = nonces.current(1_000_200)
    assert nonces.valid(issued, 1_000_200)
    assert nonces.valid(issued, 1_000_200 + 300)
    assert not nonces.valid(issued, 1_000_200 + 600)
    assert not dpop.Nonces(lambda: b"x" * 32).valid(issued, 1_000_200)  # another key
    assert not nonces.valid(issued[:-2] + "AA", 1_000_200)
    assert not nonces.valid(None, 1_000_200)


def test_the_replay_cache_forgets_after_the_window_and_stays_bounded():
    cache = dpop.ReplayCache(capacity=3)
    assert cache.first_use("k", "a", 100, 50)
    assert not cache.first_use("k", "a", 100, 60)
    assert cache.first_use("other-key", "a", 100, 60)
    assert cache.first_use("k", "a", 200, 101)  # expired: a new proof may reuse the jti
    for jti in "bcdef":
        cache.first_use("k", jti, 300, 150)
    assert len(cache._seen) <= 3


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256"])
def test_a_good_proof_names_its_key(alg):
    key = DpopKey(alg)
    now = int(time.time())
    proof = key.proof("POST", "https://as.example/token", nonce=None)
    checked = dpop.check_proof(proof, method="POST", url="https://as.example/token?q=1", now=now)
    assert checked.jkt == key.jkt


def test_the_checker_refuses_a_second_use_and_asks_for_a_nonce():
    nonces = dpop.Nonces(lambda: b"k" * 32)
    checker = dpop.DpopChecker(nonces, dpop.ReplayCache().first_use)
    key = DpopKey("RS256")
    now = int(time.time())
    with pytest.raises(dpop.InvalidProof) as missing:
        checker.check(
            [key.proof("GET", "https://rs.example/api", nonce=None)],
            method="GET",
            url="https://rs.example/api",
            now=now,
        )
    assert missing.value.error == "use_dpop_nonce"
    proof = key.proof("GET", "https://rs.example/api", nonce=checker.nonce(now))
    checker.check([proof], method="GET", url="https://rs.example/api", now=now)
    with pytest.raises(dpop.InvalidProof) as again:
        checker.check([proof], method="GET", url="https://rs.example/api", now=now)
    assert again.value.error == "invalid_dpop_proof"


def test_the_fapi_algorithms_refuse_rs256():
    key = DpopKey("RS256")
    proof = key.proof("POST", "https://as.example/token", nonce=None)
    with pytest.raises(dpop.InvalidProof):
        dpop.check_proof(
            proof,
            method="POST",
            url="https://as.example/token",
            now=int(time.time()),
            algorithms=dpop.FAPI2_ALGORITHMS,
        )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
SIGNER = DpopKey()
NOW = int(time.time())


def _segment(value: object) -> str:
    return dpop.b64url(json.dumps(value).encode())


@settings(max_examples=300, deadline=None)
@given(
    header=st.dictionaries(st.sampled_from(["typ", "alg", "jwk", "kid"]), JSON),
    jwk=st.dictionaries(st.sampled_from(["kty", "crv", "x", "y", "n", "e", "d", "k"]), JSON),
    claims=st.dictionaries(st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]), JSON),
    signed=st.booleans(),
)
def test_any_proof_is_accepted_or_invalid_never_an_error(header, jwk, claims, signed):
    """Generated headers, keys and claims, some genuinely signed with a real key: the answer is a
    checked proof or InvalidProof, nothing else (a 5xx at the endpoints)."""
    head = {"typ": "dpop+jwt", "alg": "ES256", **header}
    if jwk:
        head["jwk"] = {**SIGNER.public_jwk, **jwk}
    if signed:
        extra = {k: v for k, v in head.items() if k != "alg"}
        try:
            proof = jwt.encode(claims, SIGNER.private, algorithm="ES256", headers=extra)
        except (TypeError, ValueError, jwt.InvalidTokenError):
            return  # pyjwt will not sign it; the unsigned branch covers such headers
    else:
        proof = f"{_segment(head)}.{_segment(claims)}.{dpop.b64url(b'sig')}"
    with contextlib.suppress(dpop.InvalidProof):
        dpop.check_proof(proof, method="POST", url="https://rs.example/mcp", now=NOW, access_token="t")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_as_a_proof_is_invalid(text):
    with pytest.raises(dpop.InvalidProof):
        dpop.check_proof(text, method="GET", url="https://rs.example/api", now=NOW)


@pytest.mark.filterwarnings("ignore:The RSA key is 1024 bits long")
def test_a_short_rsa_key_or_another_curve_is_refused():
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    now = int(time.time())
    short = DpopKey("RS256")
    short.private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    short.public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(short.private.public_key()))
    proof = short.proof("GET", "https://rs.example/api", nonce=None)
    with pytest.raises(dpop.InvalidProof, match="2048"):
        dpop.check_proof(proof, method="GET", url="https://rs.example/api", now=now)
    p384 = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key()))
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": p384}
    claims = {"jti": "j", "htm": "GET", "htu": "https://rs.example/api", "iat": now}
    forged = f"{_segment(header)}.{_segment(claims)}.{dpop.b64url(b'x' * 64)}"
    with pytest.raises(dpop.InvalidProof, match="does not match its alg"):
        dpop.check_proof(forged, method="GET", url="https://rs.example/api", now=now)
