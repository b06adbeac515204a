"""Clients that authenticate with keys: registered dynamically (RFC 7591 §2 `jwks`/`jwks_uri`)
and described by a Client ID Metadata Document that declares `private_key_jwt` with a `jwks_uri`,
as ChatGPT's does (draft-ietf-oauth-client-id-metadata-document §6.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import BASE_URL, response_json
from tests.handlers.oauth_helpers import REDIRECT, VERIFIER, obtain_code
from tests.handlers.test_private_key_jwt import EC_KEY, JWKS, RSA_KEY, assertion, public_jwk
from wallet_mcp.oauth.server import client_id_metadata as cimd
from wallet_mcp.oauth.server import client_keys
from wallet_mcp.oauth.server.authorize import AuthorizeStart
from wallet_mcp.primitives.client_assertions import CLIENT_ASSERTION_TYPE

FORM = {"content-type": "application/x-www-form-urlencoded"}


def register(fn, metadata: dict[str, Any]):
    return fn.request("POST", "/oauth/register", headers={"content-type": "application/json"}, body=metadata)


SERVICE = {
    "client_name": "Key-holding service",
    "grant_types": ["client_credentials"],
    "token_endpoint_auth_method": "private_key_jwt",
    "scope": "mcp:tools:list mcp:tools:call",
}


@pytest.fixture
def fns(load_function):
    return load_function("RegisterFunction"), load_function("TokenFunction")


def test_a_client_registered_with_jwks_gets_no_secret_and_authenticates_with_its_key(fns):
    register_fn, token_fn = fns
    response = register(register_fn, {**SERVICE, "jwks": JWKS})
    assert response.status == 201, response.body
    client = response_json(response)
    assert "client_secret" not in client
    assert client["token_endpoint_auth_method"] == "private_key_jwt"
    assert client["jwks"] == JWKS
    client_id = client["client_id"]
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion(EC_KEY, alg="ES256", kid="ec-1", iss=client_id, sub=client_id),
    }
    token = token_fn.request("POST", "/oauth/token", headers=FORM, body=_encode(data))
    assert token.status == 200, token.body


def test_a_client_registered_with_a_jwks_uri(fns):
    response = register(fns[0], {**SERVICE, "jwks_uri": "https://keys.example.com/jwks.json"})
    assert response.status == 201, response.body
    assert response_json(response)["jwks_uri"] == "https://keys.example.com/jwks.json"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, "exactly one of jwks or jwks_uri"),
        ({"jwks": JWKS, "jwks_uri": "https://keys.example.com/jwks.json"}, "exactly one"),  # RFC 7591 §2
        ({"jwks_uri": "http://keys.example.com/jwks.json"}, "https"),
        ({"jwks": {"keys": []}}, "1 to 10 keys"),
        ({"jwks": [public_jwk(RSA_KEY, "a")]}, "keys"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "public keys only"),
        ({"jwks": {"keys": [{**public_jwk(RSA_KEY, "a"), "d": "AQAB"}]}}, "public keys only"),
        ({"jwks": {"keys": [{**public_jwk(RSA_KEY, "a"), "alg": "HS256"}]}}, "alg"),
        ({"jwks": {"keys": [{**public_jwk(RSA_KEY, "a"), "use": "enc"}]}}, "use"),
        ({"jwks": {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]}}, "cannot be read"),
        ({"jwks": {"keys": [{"kty": "EC", "crv": "P-384", "x": "a", "y": "b"}]}}, "cannot be read"),
        ({"token_endpoint_auth_method": "client_secret_basic", "jwks": JWKS}, "only for private_key_jwt"),
    ],
)
def test_unusable_keys_are_invalid_client_metadata(fns, changes, reason):
    response = register(fns[0], {**SERVICE, **changes})
    assert response.status == 400, response.body
    body = response_json(response)
    assert body["error"] == "invalid_client_metadata"
    assert reason in body["error_description"]


# --- a Client ID Metadata Document declaring private_key_jwt (ChatGPT's shape) ------------------

DOCUMENT_URL = "https://chat.example.com/oauth/client-metadata.json"
JWKS_URI = "https://chat.example.com/oauth/jwks.json"


def chatgpt_like_document() -> dict[str, Any]:
    return {
        "client_id": DOCUMENT_URL,
        "client_name": "Chat assistant",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": JWKS_URI,
        "application_type": "web",
    }


def _encode(data: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(data)


def test_a_metadata_document_client_with_private_key_jwt_exchanges_its_code_with_an_assertion(
    load_function, monkeypatch
):
    authorize = load_function("AuthorizeFunction")
    token_fn = load_function("TokenFunction")
    authorize.module.start = AuthorizeStart(
        authorize.module.steps,
        fetch_metadata=lambda url: cimd.FetchedDocument(chatgpt_like_document(), cache_seconds=300),
    )
    fetched: list[str] = []

    def fake_fetch(url: str, *, allow_loopback: bool) -> dict[str, Any]:
        fetched.append(url)
        return {"keys": [public_jwk(RSA_KEY, "rsa-1")]}

    monkeypatch.setattr(client_keys, "fetch_jwks", fake_fetch)

    def exchange(extra: dict[str, str]) -> Any:
        code = obtain_code(authorize, client_id=DOCUMENT_URL)
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
            "client_id": DOCUMENT_URL,
            **extra,
        }
        return token_fn.request("POST", "/oauth/token", headers=FORM, body=_encode(data))

    # a confidential document client cannot exchange its code without its key
    without = exchange({})
    assert without.status == 401
    assert response_json(without)["error"] == "invalid_client"

    signed = assertion(iss=DOCUMENT_URL, sub=DOCUMENT_URL, aud=f"{BASE_URL}/oauth/token")
    response = exchange({"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": signed})
    assert response.status == 200, response.body
    tokens = response_json(response)
    assert tokens["refresh_token"]
    assert fetched == [JWKS_URI]

    refreshed = token_fn.request(
        "POST",
        "/oauth/token",
        headers=FORM,
        body=_encode(
            {
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion(iss=DOCUMENT_URL, sub=DOCUMENT_URL),
            }
        ),
    )
    assert refreshed.status == 200, refreshed.body


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"jwks_uri": None}, "exactly one of jwks or jwks_uri"),
        ({"jwks_uri": "http://chat.example.com/jwks.json"}, "jwks_uri must be an https URL"),
        ({"jwks": JWKS}, "exactly one"),
        ({"token_endpoint_auth_method": "client_secret_jwt"}, "client secret"),
        ({"grant_types": ["authorization_code", "client_credentials"]}, "grant_types"),
    ],
)
def test_a_document_with_unusable_keys_is_refused(changes, reason):
    document = {k: v for k, v in {**chatgpt_like_document(), **changes}.items() if v is not None}
    with pytest.raises(cimd.ClientMetadataError, match=reason):
        cimd.validate_client_metadata(DOCUMENT_URL, document)


def test_a_document_with_inline_jwks_is_accepted():
    document = {**chatgpt_like_document(), "jwks": JWKS}
    del document["jwks_uri"]
    metadata = cimd.validate_client_metadata(DOCUMENT_URL, document)
    assert metadata.token_endpoint_auth_method == "private_key_jwt"
    assert json.dumps(metadata.jwks) == json.dumps(JWKS)
