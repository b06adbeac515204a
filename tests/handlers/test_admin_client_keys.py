"""The administrator gives a confidential client public keys instead of its secret
(`private_key_jwt`, RFC 7523 §2.2) on its /admin/client page."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tests.handlers.oauth_helpers import token_request
from tests.handlers.test_account import NEW_CLIENT, admin_post, client_credentials, forms_of, sign_in
from tests.handlers.test_private_key_jwt import FORM, JWKS, RSA_KEY, assertion, public_jwk
from wallet_mcp.primitives.client_assertions import CLIENT_ASSERTION_TYPE


@pytest.fixture
def fns(load_function):
    return load_function("AccountFunction"), None, load_function("TokenFunction")


def created_client(account, cookies) -> tuple[str, str]:
    created = admin_post(account, cookies, "/admin/clients", NEW_CLIENT)
    assert created.status == 200, created.body
    secret = created.body.decode().split('id="client-secret">', 1)[1].split("<", 1)[0]
    client_id = next(f for f in forms_of(created)[0] if f.action == "/admin/client").fields["client_id"]
    return client_id, secret


def test_keys_replace_the_secret_and_the_client_signs_its_requests(fns):
    account, _, token = fns
    _, cookies = sign_in(account)
    client_id, secret = created_client(account, cookies)
    assert client_credentials(token, client_id, secret).status == 200

    saved = admin_post(
        account,
        cookies,
        "/admin/client",
        [("client_id", client_id), ("action", "set_keys"), ("jwks", json.dumps(JWKS))],
    )
    assert saved.status == 200, saved.body
    page = saved.body.decode()
    assert "Keys saved" in page and "2 public keys registered" in page
    assert "rotate_secret" not in page  # nothing to rotate any more

    # the secret stops at once; an assertion signed with the registered key works
    old = client_credentials(token, client_id, secret)
    assert old.status == 401
    signed = assertion(RSA_KEY, iss=client_id, sub=client_id)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": signed,
    }
    assert token.request("POST", "/oauth/token", headers=FORM, body=urlencode(form)).status == 200
    # editing its settings later keeps it a key client
    edited = admin_post(
        account, cookies, "/admin/client", [("client_id", client_id), ("action", "update"), *NEW_CLIENT]
    )
    assert edited.status == 200, edited.body
    again = assertion(RSA_KEY, iss=client_id, sub=client_id)
    form["client_assertion"] = again
    assert token_request(token, form).status == 200


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([], "exactly one of jwks or jwks_uri"),
        ([("jwks", "{not json")], "not valid JSON"),
        ([("jwks", json.dumps({"keys": [{**public_jwk(RSA_KEY, "a"), "d": "AQAB"}]}))], "public keys only"),
        ([("jwks_uri", "http://keys.example.com/jwks.json")], "https"),
        ([("jwks", json.dumps(JWKS)), ("jwks_uri", "https://keys.example.com/jwks.json")], "exactly one"),
    ],
)
def test_unusable_keys_are_refused_and_the_secret_kept(fns, fields, message):
    account, _, token = fns
    _, cookies = sign_in(account)
    client_id, secret = created_client(account, cookies)
    refused = admin_post(
        account, cookies, "/admin/client", [("client_id", client_id), ("action", "set_keys"), *fields]
    )
    assert refused.status == 400
    assert message in refused.body.decode()
    assert client_credentials(token, client_id, secret).status == 200


def test_the_administrator_requires_dpop_and_par_of_a_client(fns):
    """The switches on /admin/client: DPoP required (RFC 9449 §5.2) takes effect at the next token
    request; PAR required (RFC 9126 §6) is recorded the same way."""
    account, _, token = fns
    _, cookies = sign_in(account)
    client_id, secret = created_client(account, cookies)
    for action in ("require_dpop", "require_par"):
        saved = admin_post(account, cookies, "/admin/client", [("client_id", client_id), ("action", action)])
        assert saved.status == 200, saved.body
    page = saved.body.decode()
    assert "Stop requiring DPoP" in page and "Stop requiring PAR" in page
    refused = client_credentials(token, client_id, secret)
    assert refused.status == 400 and json.loads(refused.body)["error"] == "invalid_dpop_proof"
    admin_post(account, cookies, "/admin/client", [("client_id", client_id), ("action", "allow_bearer")])
    assert client_credentials(token, client_id, secret).status == 200
