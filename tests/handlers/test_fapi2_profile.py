"""The FAPI 2.0 profile switch (`Fapi2Profile`): PAR and DPoP required, client secrets refused at
the token endpoint and at registration, and the metadata saying so (docs/security.md § FAPI 2.0)."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

import pytest

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import BASE_URL, response_json, with_parameters
from tests.handlers.oauth_helpers import REDIRECT
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
        body=urlencode({**form, "client_assertion": assertion(RSA_KEY, iss=KEY_CLIENT, sub=KEY_CLIENT)}),
    )
    assert without.status == 400 and response_json(without)["error"] == "invalid_dpop_proof"
    key = DpopKey()
    key.remember(without.headers)
    proof = key.proof("POST", f"{BASE_URL}/oauth/token")
    signed = assertion(RSA_KEY, iss=KEY_CLIENT, sub=KEY_CLIENT)
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
        "client_assertion": assertion(RSA_KEY, iss=KEY_CLIENT, sub=KEY_CLIENT),
    }
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "dpop": key.proof("POST", f"{BASE_URL}/oauth/token"),
    }
    response = token.request("POST", "/oauth/token", headers=headers, body=urlencode(form))
    assert response.status == 400 and response_json(response)["error"] == "invalid_dpop_proof"
