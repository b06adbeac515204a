"""`private_key_jwt` assertions under generated input (RFC 7523 §3): JWT-shaped strings with any
JSON in their header and claims, and assertions genuinely signed by the client's key whose claims
hold any JSON values. Every answer is 200, 400 or 401 with an RFC error code; never a 5xx."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

from tests.conftest import BASE_URL
from tests.fuzz.gateway import describe, send
from tests.fuzz.strategies import FORM, FUZZ
from tests.fuzz.test_token_fuzz import check_oauth_answer
from tests.handlers.test_private_key_jwt import CLIENT, JWKS, RSA_KEY, keyed_client
from wallet_mcp import aws
from wallet_mcp.primitives.client_assertions import CLIENT_ASSERTION_TYPE
from wallet_mcp.storage.clients import ClientStore

pytestmark = pytest.mark.fuzz

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
NOW = int(time.time())
CLAIM_VALUES = st.one_of(
    JSON,
    st.sampled_from([CLIENT, BASE_URL, f"{BASE_URL}/oauth/token", "", "x" * 300]),
    st.integers(NOW - 1000, NOW + 1000),
)
CLAIMS = st.dictionaries(st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]), CLAIM_VALUES)
HEADERS = st.dictionaries(
    st.sampled_from(["alg", "kid", "typ", "jku", "x5u", "crit"]),
    CLAIM_VALUES | st.sampled_from(["RS256", "none", "HS256", "rsa-1"]),
)


ADDRESSES = st.ip_addresses(v=4).map(str)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def token_fn(load_function, aws_stack):
    ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"]).put(
        keyed_client(CLIENT, jwks=json.dumps(JWKS))
    )
    return load_function("TokenFunction")


def post(token_fn, value: str, source_ip: str):
    body = urlencode(
        {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": value,
        }
    ).encode()
    return send(
        token_fn, "POST", "/oauth/token", headers=[("content-type", FORM)], body=body, source_ip=source_ip
    )


@settings(FUZZ, max_examples=150)
@given(header=HEADERS, claims=st.one_of(CLAIMS, JSON), signature=st.binary(max_size=300), source=ADDRESSES)
def test_jwt_shaped_assertions_get_an_rfc_answer(
    token_fn, header: dict[str, Any], claims: Any, signature: bytes, source: str
):
    value = ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)])
    response = post(token_fn, value, source)
    check_oauth_answer(response, {400, 401, 429})  # 429: an address that keeps failing (RFC 6749 §10.10)


@settings(FUZZ, max_examples=150)
@given(claims=CLAIMS, kid=st.one_of(st.none(), st.just("rsa-1"), st.text(max_size=10)), source=ADDRESSES)
def test_genuinely_signed_assertions_with_any_claims_get_an_rfc_answer(
    token_fn, claims: dict[str, Any], kid: str | None, source: str
):
    header = {"alg": "RS256", **({"kid": kid} if kid is not None else {})}
    # signed by hand: pyjwt's encoder refuses claims of the wrong type, which is what is tested here
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input.encode(), RSA_KEY)
    response = post(token_fn, f"{signing_input}.{b64(signature)}", source)
    check_oauth_answer(response, {200, 400, 401, 429})
    if response.status == 200:  # only a fully valid assertion: every rule of RFC 7523 §3 held
        assert claims.get("iss") == claims.get("sub") == CLIENT, describe(response)
        assert isinstance(claims.get("jti"), str) and isinstance(claims.get("exp"), int)
