"""Authorization codes bound to a DPoP key (RFC 9449 §10): `dpop_jkt` at /oauth/authorize and at
PAR, or a `DPoP` header on the push (§10.1); the token request that redeems the code must prove
that key, else `invalid_grant` — and the code stays unspent for its holder."""

from __future__ import annotations

from urllib.parse import urlencode

import jwt
import pytest

from tests.conftest import header, response_json
from tests.handlers.oauth_helpers import REDIRECT, VERIFIER, obtain_code
from tests.handlers.test_dpop import (
    MCP_URL,
    PUBLIC,
    TOKEN_URL,
    bound_token,
    clients,  # noqa: F401  (the fixture: the public client)
    refused,
    token_post,
)
from tests.handlers.test_par import BASIC, FORM, authorize_with, push, request_params, sign_in_and_approve
from tests.handlers.test_par import REDIRECT as PAR_REDIRECT
from tests.handlers.test_par import VERIFIER as PAR_VERIFIER
from tests.support.dpop_client import DpopKey

PAR_URL = TOKEN_URL.replace("/oauth/token", "/oauth/par")


pytestmark = pytest.mark.usefixtures("clients")


@pytest.fixture
def token_fn(load_function):
    return load_function("TokenFunction")


@pytest.fixture
def authorize_fn(load_function):
    return load_function("AuthorizeFunction")


def redeem(token_fn, code: str, key: DpopKey | None) -> object:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": PUBLIC,
    }
    if key is None:
        return token_post(token_fn, data, basic=False)
    return bound_token(token_fn, key, data, basic=False)


def cnf_jkt(response) -> str:
    claims = jwt.decode(response_json(response)["access_token"], options={"verify_signature": False})
    return claims["cnf"]["jkt"]


def test_a_code_bound_by_dpop_jkt_is_redeemed_with_a_proof_of_that_key(authorize_fn, token_fn):
    key = DpopKey()
    code = obtain_code(authorize_fn, client_id=PUBLIC, resource=MCP_URL, dpop_jkt=key.jkt)
    response = redeem(token_fn, code, key)
    assert response.status == 200, response.body
    assert response_json(response)["token_type"] == "DPoP"
    assert cnf_jkt(response) == key.jkt


def test_a_proof_of_another_key_is_invalid_grant_and_leaves_the_code_unspent(authorize_fn, token_fn):
    key, thief = DpopKey(), DpopKey()
    code = obtain_code(authorize_fn, client_id=PUBLIC, resource=MCP_URL, dpop_jkt=key.jkt)
    refused(redeem(token_fn, code, thief), 400, "invalid_grant")
    assert redeem(token_fn, code, key).status == 200


def test_no_proof_for_a_bound_code_is_invalid_grant(authorize_fn, token_fn):
    key = DpopKey()
    code = obtain_code(authorize_fn, client_id=PUBLIC, resource=MCP_URL, dpop_jkt=key.jkt)
    refused(redeem(token_fn, code, None), 400, "invalid_grant")
    assert redeem(token_fn, code, key).status == 200


def test_without_dpop_jkt_any_key_or_none_redeems_the_code(authorize_fn, token_fn):
    """§10 makes the parameter optional: a code without it is bound at the token request."""
    code = obtain_code(authorize_fn, client_id=PUBLIC, resource=MCP_URL)
    response = redeem(token_fn, code, None)
    assert response.status == 200 and response_json(response)["token_type"] == "Bearer"


# --- at PAR ---------------------------------------------------------------------------------------


def pushed_code(authorize_fn, token_fn, params: dict[str, str], headers: dict[str, str] | None = None) -> str:
    pushed = push(token_fn, params, {**BASIC, **(headers or {})})
    assert pushed.status == 201, pushed.body
    page = authorize_with(
        authorize_fn, {"client_id": params["client_id"], "request_uri": response_json(pushed)["request_uri"]}
    )
    assert page.status == 200, page.body
    return sign_in_and_approve(authorize_fn, page)


def redeem_pushed(token_fn, code: str, key: DpopKey | None):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": PAR_REDIRECT,
        "code_verifier": PAR_VERIFIER,
    }
    headers = {**FORM, **BASIC}
    if key is not None:
        first = token_fn.request(
            "POST",
            "/oauth/token",
            headers={**headers, "dpop": key.proof("POST", TOKEN_URL)},
            body=urlencode(data),
        )
        if first.status != 400 or response_json(first)["error"] != "use_dpop_nonce":
            return first
        key.remember(first.headers)
        headers["dpop"] = key.proof("POST", TOKEN_URL)
    return token_fn.request("POST", "/oauth/token", headers=headers, body=urlencode(data))


def test_dpop_jkt_pushed_binds_the_code(authorize_fn, token_fn):
    key, thief = DpopKey(), DpopKey()
    code = pushed_code(authorize_fn, token_fn, request_params(dpop_jkt=key.jkt))
    refused(redeem_pushed(token_fn, code, None), 400, "invalid_grant")
    refused(redeem_pushed(token_fn, code, thief), 400, "invalid_grant")
    response = redeem_pushed(token_fn, code, key)
    assert response.status == 200, response.body
    assert cnf_jkt(response) == key.jkt


def test_a_proof_on_the_push_binds_the_code_as_dpop_jkt_would(authorize_fn, token_fn):
    """§10.1: the nonce is asked for first, as at the token endpoint; the key proved binds."""
    key, thief = DpopKey(), DpopKey()
    first = push(token_fn, request_params(), {**BASIC, "dpop": key.proof("POST", PAR_URL)})
    refused(first, 400, "use_dpop_nonce")
    key.remember(first.headers)
    code = pushed_code(authorize_fn, token_fn, request_params(), {"dpop": key.proof("POST", PAR_URL)})
    refused(redeem_pushed(token_fn, code, thief), 400, "invalid_grant")
    response = redeem_pushed(token_fn, code, key)
    assert response.status == 200, response.body
    assert cnf_jkt(response) == key.jkt


def test_a_push_whose_dpop_jkt_and_proof_disagree_is_refused(token_fn):
    key, other = DpopKey(), DpopKey()
    key.remember(push(token_fn, request_params(), {**BASIC, "dpop": key.proof("POST", PAR_URL)}).headers)
    response = push(
        token_fn, request_params(dpop_jkt=other.jkt), {**BASIC, "dpop": key.proof("POST", PAR_URL)}
    )
    refused(response, 400, "invalid_request")


def test_a_bad_proof_on_the_push_is_refused(token_fn):
    key = DpopKey()
    key.remember(push(token_fn, request_params(), {**BASIC, "dpop": key.proof("POST", PAR_URL)}).headers)
    response = push(token_fn, request_params(), {**BASIC, "dpop": key.proof("POST", TOKEN_URL)})
    refused(response, 400, "invalid_dpop_proof")
    assert header(response, "dpop-nonce")


@pytest.mark.parametrize(
    "value",
    ["A" * 42, "A" * 43 + "=", "A" * 42 + "+", "A" * 42 + "B", "A" * 44, "é" * 43],
)
def test_a_malformed_dpop_jkt_is_refused_at_par(token_fn, value):
    refused(push(token_fn, request_params(dpop_jkt=value)), 400, "invalid_request")
