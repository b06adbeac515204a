"""Client authentication (RFC 6749 §2.3): Basic, form post, or none for public clients."""

import base64

import pytest

from wallet_mcp.credentials import opaque
from wallet_mcp.oauth.server.client_auth import authenticate_client, presented_client
from wallet_mcp.primitives.errors import InvalidClient, InvalidRequest
from wallet_mcp.storage.clients import ClientRecord


def record(client_id, secret=None, method="client_secret_basic"):
    return ClientRecord(
        client_id=client_id,
        client_name=client_id,
        token_endpoint_auth_method=method if secret else "none",
        client_secret_hash=opaque.digest(secret) if secret else None,
        grant_types=("client_credentials",),
        redirect_uris=(),
        scope=("mcp:tools:call",),
        created_at=0,
    )


class Store:
    def __init__(self, *records):
        self.records = {r.client_id: r for r in records}

    def get(self, client_id, *, now):
        return self.records.get(client_id)


STORE = Store(record("conf", "s3cret:with/odd chars"), record("public"))


def basic(client_id, secret):
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def test_basic_credentials_are_form_decoded_before_comparison():
    presented = presented_client({}, basic("conf", "s3cret:with/odd chars"))
    assert presented.method == "client_secret_basic"
    assert authenticate_client(presented, STORE.get(presented.client_id, now=0)).client_id == "conf"


def test_post_credentials():
    presented = presented_client({"client_id": "conf", "client_secret": "s3cret:with/odd chars"}, None)
    assert presented.method == "client_secret_post"
    assert authenticate_client(presented, STORE.get(presented.client_id, now=0)).client_id == "conf"


def test_public_client_authenticates_with_client_id_alone():
    presented = presented_client({"client_id": "public"}, None)
    assert authenticate_client(presented, STORE.get(presented.client_id, now=0)).client_id == "public"


@pytest.mark.parametrize(
    ("form", "authorization"),
    [
        ({"client_id": "conf", "client_secret": "wrong"}, None),
        ({}, basic("conf", "wrong")),
        ({"client_id": "conf"}, None),  # a confidential client without its secret
        ({"client_id": "nobody", "client_secret": "x"}, None),
        ({}, basic("nobody", "x")),
        ({"client_id": "public", "client_secret": "anything"}, None),  # a public client has no secret
        ({}, None),
        ({}, "Basic !!!notbase64"),
        ({}, "Basic " + base64.b64encode(b"no-colon").decode()),
    ],
)
def test_failures_are_invalid_client(form, authorization):
    with pytest.raises(InvalidClient):
        presented = presented_client(form, authorization)
        authenticate_client(presented, STORE.get(presented.client_id, now=0))


def test_two_authentication_methods_at_once_are_refused():
    with pytest.raises(InvalidRequest, match="more than one"):
        presented_client({"client_secret": "x"}, basic("conf", "x"))


def test_form_client_id_must_match_the_basic_one():
    with pytest.raises(InvalidRequest):
        presented_client({"client_id": "other"}, basic("conf", "x"))


def test_invalid_client_is_a_401():
    assert InvalidClient("x").status_code == 401
