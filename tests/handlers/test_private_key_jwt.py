"""`private_key_jwt` client authentication (RFC 7523 §2.2, §3; RFC 7521 §4.2) at the token,
revocation and introspection endpoints, through the token function's real Lambda handler.

Every refusal is `invalid_client` with 401 (RFC 6749 §5.2, RFC 7521 §4.2.1) and a `WWW-Authenticate`
challenge; none is a 5xx, whatever the assertion holds."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_USER_ID
from tests.conftest import BASE_URL, Function, header, response_json
from wallet_mcp import aws
from wallet_mcp.oauth.server import client_keys
from wallet_mcp.primitives import fetch
from wallet_mcp.primitives.client_assertions import CLIENT_ASSERTION_TYPE
from wallet_mcp.primitives.errors import InvalidClient
from wallet_mcp.storage.clients import ClientRecord, ClientStore

FORM = {"content-type": "application/x-www-form-urlencoded"}
CLIENT = "pkjwt-client"
URI_CLIENT = "pkjwt-uri-client"
JWKS_URI = "https://keys.client.example/jwks.json"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def public_jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = (
        jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    )
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig"}


JWKS = {"keys": [public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1")]}


def assertion(
    key: Any = RSA_KEY,
    *,
    alg: str = "RS256",
    kid: str | None = "rsa-1",
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": CLIENT,
        "sub": CLIENT,
        "aud": BASE_URL,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    for name in drop:
        body.pop(name)
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(body, key, algorithm=alg, headers=headers)


def form(value: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": value,
        **extra,
    }


def post(
    fn: Function, data: dict[str, str], path: str = "/oauth/token", headers: dict[str, str] | None = None
):
    return fn.request("POST", path, headers={**FORM, **(headers or {})}, body=urlencode(data))


def keyed_client(client_id: str, **keys: str) -> ClientRecord:
    return ClientRecord(
        client_id=client_id,
        client_name="Key-holding service",
        token_endpoint_auth_method="private_key_jwt",
        grant_types=("client_credentials",),
        redirect_uris=(),
        scope=("mcp:tools:list", "mcp:tools:call", "wallet:accounts:read"),
        created_at=0,
        owner_user_id=DEMO_USER_ID,
        **keys,  # type: ignore[arg-type]
    )


@pytest.fixture
def token_fn(load_function, aws_stack) -> Function:
    store = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    store.put(keyed_client(CLIENT, jwks=json.dumps(JWKS)))
    store.put(keyed_client(URI_CLIENT, jwks_uri=JWKS_URI))
    return load_function("TokenFunction")


@pytest.fixture
def published(monkeypatch) -> dict[str, Any]:
    """What the jwks_uri serves (`keys`), and how often it was fetched (`fetches`)."""
    state: dict[str, Any] = {"keys": {"keys": [public_jwk(RSA_KEY, "rsa-1")]}, "fetches": 0}

    def fake_fetch(url: str, *, allow_loopback: bool) -> dict[str, Any]:
        assert url == JWKS_URI
        state["fetches"] += 1
        return state["keys"]

    monkeypatch.setattr(client_keys, "fetch_jwks", fake_fetch)
    return state


def refused(response, status: int = 401, error: str = "invalid_client") -> str:
    assert response.status == status, response.body
    body = response_json(response)
    assert body["error"] == error
    if status == 401:
        assert header(response, "www-authenticate") is not None
    assert header(response, "cache-control") == "no-store"
    return body["error_description"]


# --- accepted -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "alg", "kid"),
    [
        (RSA_KEY, "RS256", "rsa-1"),
        (RSA_KEY, "PS256", "rsa-1"),
        (EC_KEY, "ES256", "ec-1"),
        (RSA_KEY, "RS256", None),
    ],
)
def test_client_credentials_with_a_signed_assertion(token_fn, key, alg, kid):
    response = post(token_fn, form(assertion(key, alg=alg, kid=kid), scope="mcp:tools:call"))
    assert response.status == 200, response.body
    claims = jwt.decode(response_json(response)["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == CLIENT
    assert claims["scope"] == "mcp:tools:call"


@pytest.mark.parametrize(
    "audience", [BASE_URL, f"{BASE_URL}/oauth/token", [BASE_URL, "https://other.example"]]
)
def test_the_audience_may_be_the_issuer_or_the_token_endpoint(token_fn, audience):
    """RFC 7523 §3 item 3 (the token endpoint URL) and FAPI 2.0 / RFC 7523bis (the issuer)."""
    assert post(token_fn, form(assertion(aud=audience))).status == 200


def test_client_id_beside_the_assertion_must_name_the_same_client(token_fn):
    assert post(token_fn, form(assertion(), client_id=CLIENT)).status == 200
    refused(post(token_fn, form(assertion(), client_id=DEMO_CLIENT_ID)))


def test_revocation_and_introspection_accept_an_assertion(token_fn):
    issued = response_json(post(token_fn, form(assertion())))["access_token"]
    introspected = post(
        token_fn,
        {
            "token": issued,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion(aud=f"{BASE_URL}/oauth/introspect"),
        },
        path="/oauth/introspect",
    )
    assert response_json(introspected)["active"] is True
    revoked = post(
        token_fn,
        {"token": issued, "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion()},
        path="/oauth/revoke",
    )
    assert revoked.status == 200
    again = post(
        token_fn,
        {"token": issued, "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion()},
        path="/oauth/introspect",
    )
    assert response_json(again) == {"active": False}


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_revocation_and_introspection_refuse_a_replayed_assertion(token_fn, path):
    value = assertion()
    data = {"token": "x", "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": value}
    assert post(token_fn, data, path=path).status == 200
    assert "already used" in refused(post(token_fn, data, path=path))


# --- refused: every rule of RFC 7523 §3 ---------------------------------------------------------


def test_a_replayed_jti_is_refused(token_fn):
    value = assertion()
    assert post(token_fn, form(value)).status == 200
    assert "already used" in refused(post(token_fn, form(value)))


def test_the_same_jti_in_a_new_assertion_is_refused(token_fn):
    assert post(token_fn, form(assertion(jti="fixed"))).status == 200
    refused(post(token_fn, form(assertion(jti="fixed"))))


def test_a_jti_is_single_use_per_client_not_across_clients(token_fn, published):
    assert post(token_fn, form(assertion(jti="shared"))).status == 200
    other = assertion(jti="shared", iss=URI_CLIENT, sub=URI_CLIENT)
    assert post(token_fn, form(other)).status == 200


def _epoch() -> int:
    return int(time.time())


REFUSALS: list[tuple[str, Callable[[], str]]] = [
    ("expired", lambda: assertion(exp=_epoch() - 120)),
    ("exp too far ahead", lambda: assertion(exp=_epoch() + 3600)),
    ("not yet valid", lambda: assertion(nbf=_epoch() + 600)),
    ("issued in the future", lambda: assertion(iat=_epoch() + 600)),
    ("another audience", lambda: assertion(aud="https://other-as.example")),
    ("the revocation endpoint as audience", lambda: assertion(aud=f"{BASE_URL}/oauth/revoke")),
    ("iss is not the client", lambda: assertion(iss="someone-else")),
    ("sub names an unknown client", lambda: assertion(sub="someone-else")),
    ("no jti", lambda: assertion(drop=("jti",))),
    ("no exp", lambda: assertion(drop=("exp",))),
    ("no aud", lambda: assertion(drop=("aud",))),
    ("no iss", lambda: assertion(drop=("iss",))),
    ("jti not a string", lambda: assertion(jti=12345)),
    ("jti too long", lambda: assertion(jti="j" * 300)),
    ("a key the client never registered", lambda: assertion(OTHER_RSA_KEY)),
    ("an unregistered key without kid", lambda: assertion(OTHER_RSA_KEY, kid=None)),
    ("an unknown kid", lambda: assertion(kid="nope")),
    ("an RSA key named as EC", lambda: assertion(kid="ec-1")),
    ("HS256 with the public key as secret", lambda: _hmac_with_public_key()),
    (
        "alg none",
        lambda: jwt.encode(
            {"iss": CLIENT, "sub": CLIENT, "aud": BASE_URL, "exp": _epoch() + 60, "jti": "n"},
            None,
            algorithm="none",
        ),
    ),
    ("RS512 (not allowed)", lambda: assertion(alg="RS512")),
    ("a tampered payload", lambda: _tampered()),
]


def _hmac_with_public_key() -> str:
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"iss": CLIENT, "sub": CLIENT, "aud": BASE_URL, "exp": _epoch() + 60, "jti": str(uuid.uuid4())}
    header_b64 = _b64({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
    payload_b64 = _b64(claims)
    import hashlib
    import hmac

    signature = hmac.new(pem, f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    return f"{header_b64}.{payload_b64}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _tampered() -> str:
    head, _, signature = assertion().split(".")
    forged = _b64({"iss": CLIENT, "sub": CLIENT, "aud": BASE_URL, "exp": _epoch() + 60, "jti": "forged"})
    return f"{head}.{forged}.{signature}"


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(("case", "make"), REFUSALS, ids=[c for c, _ in REFUSALS])
def test_an_assertion_breaking_a_rule_is_invalid_client(token_fn, case, make):
    refused(post(token_fn, form(make())))


MALFORMED = [
    "",
    "not-a-jwt",
    "a.b.c",
    "..",
    "x" * 9000,
    f"{_b64(b'not json')}.{_b64({'sub': CLIENT})}.c2ln",
    f"{_b64({'alg': ['RS256']})}.{_b64({'sub': CLIENT})}.c2ln",
    f"{_b64({'alg': 'RS256'})}.{_b64([CLIENT])}.c2ln",
    f"{_b64({'alg': 'RS256'})}.{_b64({'sub': 42})}.c2ln",
    f"{_b64({'alg': 'RS256'})}.{_b64({'sub': ''})}.c2ln",
    f"{_b64({'alg': 'RS256'})}.{_b64({'sub': 'x' * 3000})}.c2ln",
    f"{_b64({'alg': 'RS256', 'kid': 7})}.{_b64({'sub': CLIENT})}.c2ln",
    _b64({"alg": "RS256"}) + "." + _b64(b'{"sub": "\\ud800"}') + ".c2ln",
    f"{_b64({'alg': 'RS256'})}.{_b64({'sub': CLIENT})}.%%%",
]


@pytest.mark.parametrize("value", MALFORMED, ids=range(len(MALFORMED)))
def test_a_malformed_assertion_is_invalid_client_never_a_5xx(token_fn, value):
    refused(post(token_fn, form(value)))


def test_a_lone_surrogate_jti_is_refused_not_a_5xx(token_fn):
    now = _epoch()
    claims = json.dumps({"iss": CLIENT, "sub": CLIENT, "aud": BASE_URL, "exp": now + 60, "jti": "JTI"})
    payload = claims.replace('"JTI"', '"\\ud800"').encode()
    signing_input = f"{_b64({'alg': 'RS256', 'kid': 'rsa-1'})}.{_b64(payload)}"
    signature = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).sign(
        signing_input.encode(), RSA_KEY
    )
    value = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    refused(post(token_fn, form(value)))


@pytest.mark.parametrize(
    "data",
    [
        {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"},
        {"client_assertion_type": None},
        {"client_assertion": None},
    ],
    ids=["saml type", "no type", "no assertion"],
)
def test_the_assertion_parameters_must_both_be_there(token_fn, data):
    sent = {k: v for k, v in {**form(assertion()), **data}.items() if v is not None}
    refused(post(token_fn, sent))


def test_an_assertion_and_a_secret_together_are_refused(token_fn):
    """RFC 6749 §2.3: one authentication method per request."""
    refused(post(token_fn, form(assertion(), client_secret="x")), 400, "invalid_request")
    basic = "Basic " + base64.b64encode(f"{CLIENT}:x".encode()).decode()
    refused(post(token_fn, form(assertion()), headers={"authorization": basic}), 400, "invalid_request")


def test_a_key_client_cannot_use_a_secret_and_a_secret_client_cannot_use_an_assertion(token_fn):
    refused(post(token_fn, {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": "x"}))
    refused(post(token_fn, {"grant_type": "client_credentials", "client_id": CLIENT}))
    value = assertion(iss=DEMO_CLIENT_ID, sub=DEMO_CLIENT_ID)
    refused(post(token_fn, form(value)))
    # the demo client's own secret still works
    ok = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    assert post(token_fn, ok).status == 200


def test_the_assertion_never_reaches_the_logs(token_fn, caplog):
    value = assertion(exp=_epoch() - 120)
    with caplog.at_level("DEBUG"):
        refused(post(token_fn, form(value)))
    assert value not in caplog.text
    assert value.split(".")[2] not in caplog.text


# --- keys at a jwks_uri -------------------------------------------------------------------------


def uri_assertion(key: Any = RSA_KEY, kid: str | None = "rsa-1") -> str:
    return assertion(key, kid=kid, iss=URI_CLIENT, sub=URI_CLIENT)


def test_keys_at_a_jwks_uri_are_fetched_once_and_cached(token_fn, published):
    for _ in range(3):
        assert post(token_fn, form(uri_assertion())).status == 200
    assert published["fetches"] == 1


def test_the_cached_keys_serve_for_five_minutes_then_are_fetched_again(token_fn, published):
    assert post(token_fn, form(uri_assertion())).status == 200
    token_fn.module.keys._cache[JWKS_URI].fetched_at -= client_keys.CACHE_SECONDS - 30
    assert post(token_fn, form(uri_assertion())).status == 200
    assert published["fetches"] == 1
    token_fn.module.keys._cache[JWKS_URI].fetched_at -= 60
    assert post(token_fn, form(uri_assertion())).status == 200
    assert published["fetches"] == 2


def test_a_rotated_key_is_found_by_refetching_once(token_fn, published):
    assert post(token_fn, form(uri_assertion())).status == 200
    published["keys"] = {"keys": [public_jwk(OTHER_RSA_KEY, "rsa-2")]}
    # the cache is fresh, but it lacks the kid: refetched (once a minute at most)
    token_fn.module.keys._cache[JWKS_URI].fetched_at -= client_keys.REFETCH_INTERVAL
    assert post(token_fn, form(uri_assertion(OTHER_RSA_KEY, kid="rsa-2"))).status == 200
    assert published["fetches"] == 2


def test_unknown_kids_do_not_make_the_server_fetch_again_and_again(token_fn, published):
    assert post(token_fn, form(uri_assertion())).status == 200
    for n in range(5):
        refused(post(token_fn, form(uri_assertion(OTHER_RSA_KEY, kid=f"made-up-{n}"))))
    assert published["fetches"] == 1


def test_a_jwks_uri_that_cannot_be_fetched_is_invalid_client(token_fn, monkeypatch):
    def failing(url: str, *, allow_loopback: bool) -> dict[str, Any]:
        raise InvalidClient("the client's jwks_uri could not be fetched")

    monkeypatch.setattr(client_keys, "fetch_jwks", failing)
    assert "jwks_uri" in refused(post(token_fn, form(uri_assertion())))


@pytest.mark.parametrize(
    "served",
    [
        {},
        {"keys": []},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        {"keys": [{**public_jwk(RSA_KEY, "p"), "d": "AQAB"}]},
    ],
    ids=["no keys", "empty", "symmetric", "private"],
)
def test_a_jwks_uri_serving_no_usable_public_key_is_invalid_client(token_fn, published, served):
    published["keys"] = served
    refused(post(token_fn, form(uri_assertion())))


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/jwks.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/jwks.json",
        "http://127.0.0.1:9/jwks.json",
        "file:///etc/passwd",
    ],
)
def test_the_jwks_fetcher_refuses_internal_addresses(url):
    """The one guarded fetcher (`primitives.fetch`, public addresses only): no SSRF via jwks_uri."""
    with pytest.raises(InvalidClient):
        client_keys.fetch_jwks(url, allow_loopback=False)


def test_the_jwks_fetch_goes_through_the_guarded_fetcher_with_the_address_guard_on(monkeypatch):
    seen: list[fetch.FetchPolicy] = []

    def recording(url: str, policy: fetch.FetchPolicy, headers: dict[str, str]) -> fetch.JsonResponse:
        seen.append(policy)
        return fetch.JsonResponse(200, {"keys": []}, "")

    monkeypatch.setattr(fetch, "get_json", recording)
    assert client_keys.fetch_jwks("https://keys.client.example/jwks.json", allow_loopback=False) == {
        "keys": []
    }
    (policy,) = seen
    assert policy.public_only and not policy.allow_loopback
