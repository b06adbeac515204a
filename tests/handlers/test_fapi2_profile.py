"""The FAPI 2.0 profile switch (`Fapi2Profile`): PAR and DPoP required, client secrets refused at
the token endpoint and at registration, and the metadata saying so (docs/security.md § FAPI 2.0)."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import BASE_URL, response_json, with_parameters
from tests.handlers.oauth_helpers import REDIRECT
from tests.handlers.test_account import admin_post, sign_in
from tests.handlers.test_admin_client_keys import created_client
from tests.handlers.test_private_key_jwt import RSA_KEY, assertion, public_jwk
from tests.support.dpop_client import DpopKey
from wallet_mcp import aws
from wallet_mcp.primitives import pkce
from wallet_mcp.primitives.client_assertions import CLIENT_ASSERTION_TYPE
from wallet_mcp.storage.clients import ClientRecord, ClientStore

KEY_CLIENT = "fapi-key-client"


@pytest.fixture
def fapi(aws_stack):
    store = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    store.put(
        ClientRecord(
            client_id=KEY_CLIENT,
            client_name="FAPI client",
            token_endpoint_auth_method="private_key_jwt",
            grant_types=("authorization_code", "client_credentials"),
            redirect_uris=(REDIRECT,),
            scope=("mcp:tools:list",),
            created_at=0,
            jwks=json.dumps({"keys": [public_jwk(RSA_KEY, "rsa-1")]}),
        )
    )
    return with_parameters(aws_stack, Fapi2Profile="true")


def test_client_secrets_are_refused_at_the_token_endpoint(fapi, load_function):
    token = load_function("TokenFunction", fapi)
    key = DpopKey()
    basic = "Basic " + base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    headers = {"content-type": "application/x-www-form-urlencoded", "authorization": basic}
    body = urlencode({"grant_type": "client_credentials"})
    for _ in range(2):  # the first answer carries the nonce
        headers["dpop"] = key.proof("POST", f"{BASE_URL}/oauth/token")
        response = token.request("POST", "/oauth/token", headers=headers, body=body)
        key.remember(response.headers)
    assert response.status == 401, response.body
    assert response_json(response)["error"] == "invalid_client"


def test_a_key_client_gets_a_dpop_bound_token_and_only_with_a_proof(fapi, load_function):
    token = load_function("TokenFunction", fapi)
    form = {
        "grant_type": "client_credentials",
        "scope": "mcp:tools:list",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
    }
    headers = {"content-type": "application/x-www-form-urlencoded"}
    without = token.request(
        "POST",
        "/oauth/token",
        headers=headers,
        body=urlencode(
            {**form, "client_assertion": assertion(RSA_KEY, alg="PS256", iss=KEY_CLIENT, sub=KEY_CLIENT)}
        ),
    )
    assert without.status == 400 and response_json(without)["error"] == "invalid_dpop_proof"
    key = DpopKey()
    key.remember(without.headers)
    proof = key.proof("POST", f"{BASE_URL}/oauth/token")
    signed = assertion(RSA_KEY, alg="PS256", iss=KEY_CLIENT, sub=KEY_CLIENT)
    issued = token.request(
        "POST",
        "/oauth/token",
        headers={**headers, "dpop": proof},
        body=urlencode({**form, "client_assertion": signed}),
    )
    assert issued.status == 200, issued.body
    assert response_json(issued)["token_type"] == "DPoP"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "none"])
def test_registration_issues_no_secret_and_registers_no_public_client(fapi, load_function, method):
    register = load_function("RegisterFunction", fapi)
    response = register.request(
        "POST",
        "/oauth/register",
        body={"client_name": "x", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": method},
    )
    assert response.status == 400
    assert response_json(response)["error"] == "invalid_client_metadata"


def test_a_public_client_gets_no_token(fapi, load_function, aws_stack):
    store = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    store.put(
        ClientRecord(
            client_id="fapi-public",
            client_name="public",
            token_endpoint_auth_method="none",
            grant_types=("authorization_code",),
            redirect_uris=(REDIRECT,),
            scope=("mcp:tools:list",),
            created_at=0,
        )
    )
    token = load_function("TokenFunction", fapi)
    key = DpopKey()
    key.nonce = token.module.dpop.nonce(int(time.time()))
    form = {
        "grant_type": "authorization_code",
        "code": "x",
        "redirect_uri": REDIRECT,
        "code_verifier": "v" * 50,
    }
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "dpop": key.proof("POST", f"{BASE_URL}/oauth/token"),
    }
    response = token.request(
        "POST", "/oauth/token", headers=headers, body=urlencode({**form, "client_id": "fapi-public"})
    )
    assert response.status == 401 and response_json(response)["error"] == "invalid_client"


def test_an_authorization_request_that_was_not_pushed_is_refused(fapi, load_function):
    plain = load_function("AuthorizeFunction")
    authorize = load_function("AuthorizeFunction", fapi)
    query = {
        "response_type": "code",
        "client_id": KEY_CLIENT,
        "redirect_uri": REDIRECT,
        "scope": "mcp:tools:list",
        "state": "s",
        "code_challenge": pkce.s256("v" * 50),
        "code_challenge_method": "S256",
    }
    assert plain.request("GET", "/oauth/authorize", query=urlencode(query)).status == 200
    assert authorize.request("GET", "/oauth/authorize", query=urlencode(query)).status == 400


def test_the_metadata_says_what_the_profile_requires(fapi, load_function):
    metadata = load_function("MetadataFunction", fapi)
    server = response_json(metadata.request("GET", "/.well-known/oauth-authorization-server"))
    assert server["require_pushed_authorization_requests"] is True
    assert server["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert server["dpop_signing_alg_values_supported"] == ["ES256", "PS256"]
    for endpoint in ("token", "revocation", "introspection"):
        assert server[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == ["PS256", "ES256"]
    resource = response_json(metadata.request("GET", "/.well-known/oauth-protected-resource/mcp"))
    assert resource["dpop_bound_access_tokens_required"] is True


def test_a_proof_signed_with_rs256_is_refused(fapi, load_function):
    """§5.4.1: PS256, ES256 or EdDSA only."""
    token = load_function("TokenFunction", fapi)
    key = DpopKey("RS256")
    key.nonce = token.module.dpop.nonce(int(time.time()))
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion(RSA_KEY, alg="PS256", iss=KEY_CLIENT, sub=KEY_CLIENT),
    }
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "dpop": key.proof("POST", f"{BASE_URL}/oauth/token"),
    }
    response = token.request("POST", "/oauth/token", headers=headers, body=urlencode(form))
    assert response.status == 400 and response_json(response)["error"] == "invalid_dpop_proof"


# --- §5.4: algorithms and key sizes -------------------------------------------------------------

TOKEN_URL = f"{BASE_URL}/oauth/token"
MCP_URL = f"{BASE_URL}/mcp"
SHORT_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _key_client_token(token_fn, key: DpopKey, signed: str):
    """A client-credentials request of KEY_CLIENT with `key`'s proof (and the server's nonce)."""
    key.nonce = token_fn.module.dpop.nonce(int(time.time()))
    form = {
        "grant_type": "client_credentials",
        "scope": "mcp:tools:list",
        "resource": MCP_URL,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": signed,
    }
    headers = {"content-type": "application/x-www-form-urlencoded", "dpop": key.proof("POST", TOKEN_URL)}
    return token_fn.request("POST", "/oauth/token", headers=headers, body=urlencode(form))


def _served_at_mcp(mcp_fn, key: DpopKey, access_token: str) -> bool:
    key.nonce = mcp_fn.module.deployment.dpop_checker.nonce(int(time.time()))
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "authorization": f"DPoP {access_token}",
        "dpop": key.proof("POST", MCP_URL, access_token=access_token),
    }
    response = mcp_fn.request(
        "POST", "/mcp", headers=headers, body={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    )
    assert response.status in (200, 401), response.body
    return response.status == 200


def test_access_tokens_are_signed_ps256_and_served_at_mcp(fapi, load_function):
    """§5.4.1: PS256 (KMS RSASSA_PSS_SHA_256 with the same RSA key), and the JWKS says so."""
    token = load_function("TokenFunction", fapi)
    key = DpopKey()
    issued = _key_client_token(token, key, assertion(RSA_KEY, alg="PS256", iss=KEY_CLIENT, sub=KEY_CLIENT))
    assert issued.status == 200, issued.body
    access_token = response_json(issued)["access_token"]
    header = jwt.get_unverified_header(access_token)
    assert header["alg"] == "PS256"
    assert _served_at_mcp(load_function("McpFunction", fapi), key, access_token)
    # any JOSE library verifies it with the published key, under the published algorithm
    published = response_json(
        load_function("MetadataFunction", fapi).request("GET", "/.well-known/jwks.json")
    )
    jwk = next(k for k in published["keys"] if k["kid"] == header["kid"])
    assert jwk["alg"] == "PS256"
    claims = jwt.decode(access_token, jwt.PyJWK(jwk).key, algorithms=["PS256"], options={"verify_aud": False})
    assert claims["client_id"] == KEY_CLIENT


def test_without_the_profile_tokens_and_the_jwks_stay_rs256(aws_stack, load_function):
    published = response_json(load_function("MetadataFunction").request("GET", "/.well-known/jwks.json"))
    assert {k["alg"] for k in published["keys"]} == {"RS256"}
    basic = "Basic " + base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    issued = load_function("TokenFunction").request(
        "POST",
        "/oauth/token",
        headers={"content-type": "application/x-www-form-urlencoded", "authorization": basic},
        body=urlencode({"grant_type": "client_credentials"}),
    )
    assert jwt.get_unverified_header(response_json(issued)["access_token"])["alg"] == "RS256"


def test_an_rs256_token_issued_before_the_switch_is_served_until_it_expires(fapi, aws_stack, load_function):
    """The profile switched on in a running deployment: tokens already out (RS256, DPoP-bound) keep
    working at the resources; new ones are PS256."""
    before = load_function("TokenFunction")
    key = DpopKey()
    issued = _key_client_token(before, key, assertion(RSA_KEY, iss=KEY_CLIENT, sub=KEY_CLIENT))
    assert issued.status == 200, issued.body
    old_token = response_json(issued)["access_token"]
    assert jwt.get_unverified_header(old_token)["alg"] == "RS256"
    assert _served_at_mcp(load_function("McpFunction", fapi), key, old_token)


def test_a_token_of_another_algorithm_with_our_kid_is_refused(fapi, load_function):
    """The verifier takes RS256 or PS256 with our keys only: HS256, or another RSA key under our kid,
    fail."""
    token = load_function("TokenFunction", fapi)
    key = DpopKey()
    issued = _key_client_token(token, key, assertion(RSA_KEY, alg="PS256", iss=KEY_CLIENT, sub=KEY_CLIENT))
    genuine = response_json(issued)["access_token"]
    header = jwt.get_unverified_header(genuine)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    mcp = load_function("McpFunction", fapi)
    foreign = jwt.encode(claims, RSA_KEY, algorithm="PS256", headers={"kid": header["kid"], "typ": "at+jwt"})
    assert not _served_at_mcp(mcp, key, foreign)
    hmac = jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": header["kid"], "typ": "at+jwt"})
    assert not _served_at_mcp(mcp, key, hmac)


def test_an_rs256_client_assertion_is_refused(fapi, load_function):
    """§5.4.1: a client assertion signed RS256 is invalid_client, and nothing is issued."""
    token = load_function("TokenFunction", fapi)
    response = _key_client_token(token, DpopKey(), assertion(RSA_KEY, iss=KEY_CLIENT, sub=KEY_CLIENT))
    assert response.status == 401, response.body
    assert response_json(response)["error"] == "invalid_client"
    assert "PS256" in response_json(response)["error_description"]


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_an_assertion_signed_with_a_short_rsa_key_is_refused(fapi, load_function, aws_stack):
    """§5.4.2: keys registered before the profile (or served at a jwks_uri) are checked when used."""
    store = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    store.put(
        ClientRecord(
            client_id="fapi-short-key",
            client_name="short key",
            token_endpoint_auth_method="private_key_jwt",
            grant_types=("client_credentials",),
            redirect_uris=(),
            scope=("mcp:tools:list",),
            created_at=0,
            jwks=json.dumps({"keys": [public_jwk(SHORT_RSA_KEY, "short")]}),
        )
    )
    token = load_function("TokenFunction", fapi)
    signed = assertion(SHORT_RSA_KEY, alg="PS256", kid="short", iss="fapi-short-key", sub="fapi-short-key")
    response = _key_client_token(token, DpopKey(), signed)
    assert response.status == 401, response.body
    assert response_json(response)["error"] == "invalid_client"
    assert "2048" in response_json(response)["error_description"]


@pytest.mark.parametrize(
    ("jwk", "message"),
    [
        (public_jwk(SHORT_RSA_KEY, "short"), "2048 bits"),
        ({**public_jwk(RSA_KEY, "rs"), "alg": "RS256"}, "PS256, ES256"),
    ],
)
def test_registration_refuses_keys_the_profile_forbids(fapi, load_function, jwk, message):
    metadata = {
        "client_name": "x",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [jwk]},
    }
    response = load_function("RegisterFunction", fapi).request("POST", "/oauth/register", body=metadata)
    assert response.status == 400, response.body
    assert response_json(response)["error"] == "invalid_client_metadata"
    assert message in response_json(response)["error_description"]
    # the same key is fine without the profile
    plain = load_function("RegisterFunction").request("POST", "/oauth/register", body=metadata)
    assert plain.status == 201, plain.body


def test_the_administrator_cannot_set_a_short_rsa_key(fapi, load_function):
    account = load_function("AccountFunction", fapi)
    _, cookies = sign_in(account)
    client_id, _ = created_client(account, cookies)
    refused = admin_post(
        account,
        cookies,
        "/admin/client",
        [
            ("client_id", client_id),
            ("action", "set_keys"),
            ("jwks", json.dumps({"keys": [public_jwk(SHORT_RSA_KEY, "short")]})),
        ],
    )
    assert refused.status == 400
    assert "2048 bits" in refused.body.decode()
    saved = admin_post(
        account,
        cookies,
        "/admin/client",
        [
            ("client_id", client_id),
            ("action", "set_keys"),
            ("jwks", json.dumps({"keys": [public_jwk(RSA_KEY, "rsa-1")]})),
        ],
    )
    assert saved.status == 200, saved.body
