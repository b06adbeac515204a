"""DPoP (RFC 9449) through the handlers: proofs at the token endpoint, tokens bound by `cnf.jkt`,
and every refusal at /oauth/token, /mcp and /api, with the RFC's error codes and challenges."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import jwt
import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import BASE_URL, Function, header, response_json, with_parameters
from tests.handlers.oauth_helpers import FORM, REDIRECT, VERIFIER, obtain_code
from tests.support.dpop_client import DpopKey
from wallet_mcp import aws
from wallet_mcp.primitives.dpop import NONCE_WINDOW
from wallet_mcp.storage.clients import ClientRecord, ClientStore

TOKEN_URL = f"{BASE_URL}/oauth/token"
MCP_URL = f"{BASE_URL}/mcp"
API = f"{BASE_URL}/api"
PUBLIC = "dpop-public-app"
REQUIRING = "dpop-requiring-app"
SCOPE = "mcp:tools:list mcp:tools:call"


@pytest.fixture
def clients(aws_stack):
    store = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    for client_id, required in ((PUBLIC, False), (REQUIRING, True)):
        store.put(
            ClientRecord(
                client_id=client_id,
                client_name=client_id,
                token_endpoint_auth_method="none",
                grant_types=("authorization_code", "refresh_token"),
                redirect_uris=(REDIRECT,),
                scope=("mcp:tools:list", "mcp:tools:call"),
                created_at=0,
                dpop_bound_access_tokens=required,
            )
        )
    return store


@pytest.fixture
def token_fn(load_function, clients) -> Function:
    return load_function("TokenFunction")


@pytest.fixture
def mcp_fn(load_function) -> Function:
    return load_function("McpFunction")


def _basic() -> str:
    return "Basic " + base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()


def token_post(token_fn: Function, data: dict[str, str], proofs: list[str] = (), basic: bool = True):
    """A token request; several proofs travel as one comma-joined `DPoP` header (what a proxy
    folding repeated headers would make of them)."""
    headers = dict(FORM)
    if basic:
        headers["authorization"] = _basic()
    if proofs:
        headers["dpop"] = ", ".join(proofs)
    return token_fn.request("POST", "/oauth/token", headers=headers, body=urlencode(data))


CLIENT_CREDENTIALS = {"grant_type": "client_credentials", "scope": SCOPE, "resource": MCP_URL}


def bound_token(token_fn: Function, key: DpopKey, data: dict[str, str] = CLIENT_CREDENTIALS, **kw):
    """A token request with a proof of `key`, once more with the nonce if the server asks for one."""
    response = token_post(token_fn, data, [key.proof("POST", TOKEN_URL)], **kw)
    if response.status == 400 and response_json(response)["error"] == "use_dpop_nonce":
        key.remember(response.headers)
        response = token_post(token_fn, data, [key.proof("POST", TOKEN_URL)], **kw)
    key.remember(response.headers)
    return response


def refused(response, status: int, error: str) -> dict:
    assert response.status == status, response.body
    found = response_json(response)
    assert found["error"] == error, found
    return found


def mcp_post(mcp_fn: Function, authorization: str | None, proof: str | None = None, url_path: str = "/mcp"):
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if authorization is not None:
        headers["authorization"] = authorization
    if proof is not None:
        headers["dpop"] = proof
    return mcp_fn.request(
        "POST", url_path, headers=headers, body={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    )


# --- the token endpoint ------------------------------------------------------------------------------


def test_a_proof_first_gets_the_nonce_then_a_dpop_bound_token(token_fn):
    key = DpopKey()
    first = token_post(token_fn, CLIENT_CREDENTIALS, [key.proof("POST", TOKEN_URL)])
    refused(first, 400, "use_dpop_nonce")
    assert header(first, "dpop-nonce")
    key.remember(first.headers)
    second = token_post(token_fn, CLIENT_CREDENTIALS, [key.proof("POST", TOKEN_URL)])
    assert second.status == 200, second.body
    issued = response_json(second)
    assert issued["token_type"] == "DPoP"
    claims = jwt.decode(issued["access_token"], options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": key.jkt}
    assert header(second, "dpop-nonce")


def test_without_a_proof_the_token_stays_a_bearer_token(token_fn):
    response = token_post(token_fn, CLIENT_CREDENTIALS)
    assert response.status == 200, response.body
    issued = response_json(response)
    assert issued["token_type"] == "Bearer"
    assert "cnf" not in jwt.decode(issued["access_token"], options={"verify_signature": False})


@pytest.fixture
def nonced(token_fn) -> DpopKey:
    """A key that holds a current server nonce."""
    key = DpopKey()
    key.remember(token_post(token_fn, CLIENT_CREDENTIALS, [key.proof("POST", TOKEN_URL)]).headers)
    assert key.nonce
    return key


def test_a_replayed_proof_is_refused_at_the_token_endpoint(token_fn, nonced):
    proof = nonced.proof("POST", TOKEN_URL)
    assert token_post(token_fn, CLIENT_CREDENTIALS, [proof]).status == 200
    refused(token_post(token_fn, CLIENT_CREDENTIALS, [proof]), 400, "invalid_dpop_proof")


@pytest.mark.parametrize(
    ("what", "build"),
    [
        ("wrong htu", lambda k: k.proof("POST", f"{BASE_URL}/oauth/par")),
        ("another host", lambda k: k.proof("POST", "https://evil.example/oauth/token")),
        ("wrong htm", lambda k: k.proof("GET", TOKEN_URL)),
        ("stale iat", lambda k: k.proof("POST", TOKEN_URL, iat=int(time.time()) - 600)),
        ("future iat", lambda k: k.proof("POST", TOKEN_URL, iat=int(time.time()) + 600)),
        ("wrong typ", lambda k: k.proof("POST", TOKEN_URL, header={"typ": "JWT"})),
        ("private key in jwk", lambda k: k.proof("POST", TOKEN_URL, header={"jwk": _private_jwk(k)})),
        ("no jti", lambda k: _without(k, "jti")),
    ],
)
def test_a_bad_proof_is_refused_at_the_token_endpoint(token_fn, nonced, what, build):
    refused(token_post(token_fn, CLIENT_CREDENTIALS, [build(nonced)]), 400, "invalid_dpop_proof")


def _private_jwk(key: DpopKey) -> dict:
    return json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.private))


def _without(key: DpopKey, claim: str) -> str:
    proof = key.proof("POST", TOKEN_URL)
    payload = jwt.decode(proof, options={"verify_signature": False})
    payload.pop(claim)
    headers = {"typ": "dpop+jwt", "jwk": key.public_jwk}
    return jwt.encode(payload, key.private, algorithm="ES256", headers=headers)


def _unsigned(key: DpopKey, alg: str) -> str:
    payload = {"jti": "x" * 20, "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time()), "nonce": key.nonce}
    head = {"typ": "dpop+jwt", "alg": alg, "jwk": key.public_jwk}
    segment = lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()  # noqa: E731
    signing_input = f"{segment(head)}.{segment(payload)}"
    if alg == "none":
        return f"{signing_input}."
    # HS256 keyed with the public key's JSON: the classic algorithm confusion
    mac = hmac.new(json.dumps(key.public_jwk).encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_a_proof_with_alg_none_or_hmac_is_refused(token_fn, nonced, alg):
    refused(token_post(token_fn, CLIENT_CREDENTIALS, [_unsigned(nonced, alg)]), 400, "invalid_dpop_proof")


def test_a_proof_with_no_nonce_or_an_old_one_is_told_the_current_one(token_fn, nonced):
    old = token_fn.module.dpop.nonce(int(time.time()) - 2 * NONCE_WINDOW)
    for nonce in (None, old, "bogus"):
        response = token_post(token_fn, CLIENT_CREDENTIALS, [nonced.proof("POST", TOKEN_URL, nonce=nonce)])
        refused(response, 400, "use_dpop_nonce")
        assert header(response, "dpop-nonce") == nonced.nonce


def test_two_proofs_are_refused(token_fn, nonced):
    proofs = [nonced.proof("POST", TOKEN_URL), nonced.proof("POST", TOKEN_URL)]
    refused(token_post(token_fn, CLIENT_CREDENTIALS, proofs), 400, "invalid_dpop_proof")


def test_a_client_that_requires_dpop_gets_no_token_without_a_proof(token_fn, load_function):
    authorize = load_function("AuthorizeFunction")
    code = obtain_code(authorize, client_id=REQUIRING, resource=MCP_URL)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": REQUIRING,
    }
    refused(token_post(token_fn, data, basic=False), 400, "invalid_dpop_proof")
    # the code was not spent: the same request with a proof succeeds
    response = bound_token(token_fn, DpopKey(), data, basic=False)
    assert response.status == 200, response.body
    assert response_json(response)["token_type"] == "DPoP"


# --- refresh tokens of public clients ------------------------------------------------------------------


def test_a_public_clients_refresh_token_is_bound_to_its_key(token_fn, load_function):
    authorize = load_function("AuthorizeFunction")
    key = DpopKey()
    code = obtain_code(authorize, client_id=PUBLIC, resource=MCP_URL)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": PUBLIC,
    }
    issued = bound_token(token_fn, key, data, basic=False)
    assert issued.status == 200, issued.body
    refresh = {"grant_type": "refresh_token", "refresh_token": response_json(issued)["refresh_token"]}
    refresh["client_id"] = PUBLIC
    # no proof: refused, the token unspent
    refused(token_post(token_fn, refresh, basic=False), 400, "invalid_dpop_proof")
    # another key (with a good nonce): invalid_grant
    thief = DpopKey()
    thief.nonce = key.nonce
    refused(
        token_post(token_fn, refresh, [thief.proof("POST", TOKEN_URL)], basic=False), 400, "invalid_grant"
    )
    # the key it is bound to: a new DPoP-bound pair
    renewed = token_post(token_fn, refresh, [key.proof("POST", TOKEN_URL)], basic=False)
    assert renewed.status == 200, renewed.body
    assert response_json(renewed)["token_type"] == "DPoP"
    claims = jwt.decode(response_json(renewed)["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["jkt"] == key.jkt


# --- /mcp -----------------------------------------------------------------------------------------------


@pytest.fixture
def bound(token_fn) -> tuple[DpopKey, str]:
    key = DpopKey()
    response = bound_token(token_fn, key)
    assert response.status == 200, response.body
    return key, response_json(response)["access_token"]


def test_a_bound_token_with_its_proof_is_served_at_mcp(mcp_fn, bound):
    key, token = bound
    response = mcp_post(mcp_fn, f"DPoP {token}", key.proof("POST", MCP_URL, access_token=token))
    assert response.status == 200, response.body
    assert header(response, "dpop-nonce")


def test_a_bound_token_presented_as_bearer_is_refused(mcp_fn, bound):
    _, token = bound
    response = mcp_post(mcp_fn, f"Bearer {token}")
    refused(response, 401, "invalid_token")
    assert header(response, "www-authenticate").startswith("DPoP ")


def test_the_dpop_scheme_with_an_unbound_token_is_refused(mcp_fn, token_fn):
    unbound = response_json(token_post(token_fn, CLIENT_CREDENTIALS))["access_token"]
    key = DpopKey()
    key.nonce = token_fn.module.dpop.nonce(int(time.time()))
    response = mcp_post(mcp_fn, f"DPoP {unbound}", key.proof("POST", MCP_URL, access_token=unbound))
    refused(response, 401, "invalid_token")


@pytest.mark.parametrize(
    ("what", "build"),
    [
        ("no proof", lambda k, t: None),
        ("bad ath", lambda k, t: k.proof("POST", MCP_URL, access_token=t + "x")),
        ("no ath", lambda k, t: k.proof("POST", MCP_URL)),
        ("non-ASCII ath", lambda k, t: k.proof("POST", MCP_URL, claims={"ath": "é" * 43})),
        ("ath not a string", lambda k, t: k.proof("POST", MCP_URL, claims={"ath": 7})),
        ("wrong htu", lambda k, t: k.proof("POST", f"{API}/accounts", access_token=t)),
        ("wrong htm", lambda k, t: k.proof("GET", MCP_URL, access_token=t)),
        ("stale iat", lambda k, t: k.proof("POST", MCP_URL, access_token=t, iat=int(time.time()) - 600)),
    ],
)
def test_a_bad_proof_is_refused_at_mcp(mcp_fn, bound, what, build):
    key, token = bound
    response = mcp_post(mcp_fn, f"DPoP {token}", build(key, token))
    refused(response, 401, "invalid_dpop_proof")
    challenge = header(response, "www-authenticate")
    assert challenge.startswith("DPoP ") and 'algs="ES256 RS256 PS256"' in challenge
    assert 'error="invalid_dpop_proof"' in challenge


def test_a_replayed_proof_is_refused_at_mcp(mcp_fn, bound):
    key, token = bound
    proof = key.proof("POST", MCP_URL, access_token=token)
    assert mcp_post(mcp_fn, f"DPoP {token}", proof).status == 200
    refused(mcp_post(mcp_fn, f"DPoP {token}", proof), 401, "invalid_dpop_proof")


def test_a_proof_without_a_current_nonce_is_told_one_at_mcp(mcp_fn, bound):
    key, token = bound
    response = mcp_post(mcp_fn, f"DPoP {token}", key.proof("POST", MCP_URL, access_token=token, nonce=None))
    refused(response, 401, "use_dpop_nonce")
    assert 'error="use_dpop_nonce"' in header(response, "www-authenticate")
    key.remember(response.headers)
    retried = mcp_post(mcp_fn, f"DPoP {token}", key.proof("POST", MCP_URL, access_token=token))
    assert retried.status == 200, retried.body


def test_a_proof_by_another_key_is_refused_at_mcp(mcp_fn, bound):
    key, token = bound
    other = DpopKey()
    other.nonce = key.nonce
    response = mcp_post(mcp_fn, f"DPoP {token}", other.proof("POST", MCP_URL, access_token=token))
    refused(response, 401, "invalid_token")


# --- /api -------------------------------------------------------------------------------------------------


@pytest.fixture
def api_fn(load_function, demo_wallet) -> Function:
    return load_function("WalletFunction")


@pytest.fixture
def api_bound(token_fn) -> tuple[DpopKey, str]:
    key = DpopKey("RS256")
    data = {"grant_type": "client_credentials", "scope": "wallet:accounts:read", "resource": API}
    response = bound_token(token_fn, key, data)
    assert response.status == 200, response.body
    return key, response_json(response)["access_token"]


def api_get(api_fn: Function, authorization: str, proof: str | None = None, query: str = ""):
    headers = {"authorization": authorization}
    if proof is not None:
        headers["dpop"] = proof
    return api_fn.request("GET", "/api/accounts", headers=headers, query=query)


def test_a_bound_token_with_its_proof_is_served_at_the_api(api_fn, api_bound):
    key, token = api_bound
    # htu without the query (RFC 9449 §4.3)
    response = api_get(
        api_fn, f"DPoP {token}", key.proof("GET", f"{API}/accounts", access_token=token), "x=1"
    )
    assert response.status == 200, response.body
    assert header(response, "dpop-nonce")


def test_the_api_refuses_bearer_use_replay_and_a_wrong_url(api_fn, api_bound):
    key, token = api_bound
    refused(api_get(api_fn, f"Bearer {token}"), 401, "invalid_token")
    proof = key.proof("GET", f"{API}/accounts", access_token=token)
    assert api_get(api_fn, f"DPoP {token}", proof).status == 200
    refused(api_get(api_fn, f"DPoP {token}", proof), 401, "invalid_dpop_proof")
    wrong = key.proof("GET", f"{API}/balance", access_token=token)
    refused(api_get(api_fn, f"DPoP {token}", wrong), 401, "invalid_dpop_proof")


# --- metadata and the global switch -----------------------------------------------------------------------


def test_the_metadata_advertises_dpop(load_function):
    metadata = load_function("MetadataFunction")
    server = response_json(metadata.request("GET", "/.well-known/oauth-authorization-server"))
    assert server["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "PS256"]
    resource = response_json(metadata.request("GET", "/.well-known/oauth-protected-resource/mcp"))
    assert resource["dpop_bound_access_tokens_required"] is False


def test_when_dpop_is_required_everywhere_bearer_tokens_are_not_issued_nor_accepted(
    aws_stack, load_function, clients
):
    variant = with_parameters(aws_stack, RequireDpop="true")
    token_fn = load_function("TokenFunction", variant)
    refused(token_post(token_fn, CLIENT_CREDENTIALS), 400, "invalid_dpop_proof")
    key = DpopKey()
    issued = bound_token(token_fn, key)
    assert issued.status == 200 and response_json(issued)["token_type"] == "DPoP"
    metadata = load_function("MetadataFunction", variant)
    resource = response_json(metadata.request("GET", "/.well-known/oauth-protected-resource/mcp"))
    assert resource["dpop_bound_access_tokens_required"] is True
    mcp_fn = load_function("McpFunction", variant)
    missing = mcp_post(mcp_fn, None)
    assert missing.status == 401
    assert header(missing, "www-authenticate").startswith("DPoP ")


# --- the replay cache: per instance by default, single use everywhere when asked -------------------------


def test_by_default_a_replay_is_caught_per_instance_only(load_function, bound):
    """The documented trade-off (docs/security.md § DPoP): no network call per request, so a proof
    replayed to another instance within its 60 seconds is not caught."""
    key, token = bound
    first, second = load_function("McpFunction"), load_function("McpFunction")
    proof = key.proof("POST", MCP_URL, access_token=token)
    assert mcp_post(first, f"DPoP {token}", proof).status == 200
    assert mcp_post(second, f"DPoP {token}", proof).status == 200
    refused(mcp_post(second, f"DPoP {token}", proof), 401, "invalid_dpop_proof")


def test_with_strict_replay_a_proof_is_single_use_across_instances(aws_stack, load_function, bound):
    key, token = bound
    variant = with_parameters(aws_stack, DpopStrictReplay="true")
    first, second = load_function("McpFunction", variant), load_function("McpFunction", variant)
    proof = key.proof("POST", MCP_URL, access_token=token)
    assert mcp_post(first, f"DPoP {token}", proof).status == 200
    refused(mcp_post(second, f"DPoP {token}", proof), 401, "invalid_dpop_proof")


def test_with_strict_replay_the_api_spends_proofs_across_instances(
    aws_stack, load_function, demo_wallet, api_bound
):
    key, token = api_bound
    variant = with_parameters(aws_stack, DpopStrictReplay="true")
    first, second = load_function("WalletFunction", variant), load_function("WalletFunction", variant)
    proof = key.proof("GET", f"{API}/accounts", access_token=token)
    assert api_get(first, f"DPoP {token}", proof).status == 200
    refused(api_get(second, f"DPoP {token}", proof), 401, "invalid_dpop_proof")


def test_introspection_shows_the_binding(token_fn, bound):
    key, token = bound
    response = token_fn.request(
        "POST",
        "/oauth/introspect",
        headers={**FORM, "authorization": _basic()},
        body=urlencode({"token": token}),
    )
    assert response.status == 200, response.body
    found = response_json(response)
    assert found["active"] is True and found["token_type"] == "DPoP"
    assert found["cnf"] == {"jkt": key.jkt}


def test_locally_the_htu_is_the_loopback_name_the_client_used(mcp_fn, bound):
    """`make dev` answers on every loopback name; a proof names the URL the client used."""
    key, token = bound
    headers = {
        "host": "127.0.0.1:3000",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "authorization": f"DPoP {token}",
        "dpop": key.proof("POST", "http://127.0.0.1:3000/mcp", access_token=token),
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert mcp_fn.request("POST", "/mcp", headers=headers, body=body).status == 200
    headers["dpop"] = key.proof("POST", MCP_URL, access_token=token)  # localhost, not the name used
    refused(mcp_fn.request("POST", "/mcp", headers=headers, body=body), 401, "invalid_dpop_proof")


@pytest.mark.parametrize(
    "value", ["", "a.b.c", "x" * 9000, "e30.e30.", "ÿ.ÿ.ÿ", "..", "eyJhbGciOiJub25lIn0.e30."]
)
def test_a_malformed_dpop_header_is_refused_never_a_5xx(token_fn, mcp_fn, bound, value):
    _, token = bound
    refused(token_post(token_fn, CLIENT_CREDENTIALS, [value]), 400, "invalid_dpop_proof")
    response = mcp_post(mcp_fn, f"DPoP {token}", value)
    refused(response, 401, "invalid_dpop_proof")
