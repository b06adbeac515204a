"""The metadata function: RFC 8414, RFC 9728 and the JWKS, through its real Lambda handler."""

import json

import jwt
import pytest

from tests.conftest import BASE_URL, EVENTS, header, response_json
from wallet_mcp import aws
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.tokens.jwk import rsa_public_key_from_der, thumbprint


@pytest.fixture
def metadata(load_function):
    return load_function("MetadataFunction")


def test_authorization_server_metadata_lists_everything(metadata):
    response = metadata.request("GET", "/.well-known/oauth-authorization-server")
    assert response.status == 200
    document = response_json(response)
    assert document["issuer"] == BASE_URL
    assert document["token_endpoint"] == f"{BASE_URL}/oauth/token"
    assert document["authorization_endpoint"] == f"{BASE_URL}/oauth/authorize"
    assert document["registration_endpoint"] == f"{BASE_URL}/oauth/register"
    assert document["revocation_endpoint"] == f"{BASE_URL}/oauth/revoke"
    assert document["introspection_endpoint"] == f"{BASE_URL}/oauth/introspect"
    assert document["jwks_uri"] == f"{BASE_URL}/.well-known/jwks.json"
    assert document["scopes_supported"] == list(SUPPORTED_SCOPES)
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert set(document["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "none",
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    }
    # RFC 8414 §2, RFC 7523 §2.2: the assertion algorithms, never none or HMAC
    assert document["token_endpoint_auth_signing_alg_values_supported"] == ["RS256", "PS256", "ES256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["client_id_metadata_document_supported"] is True


def test_openid_configuration_is_the_same_document(metadata):
    a = metadata.request("GET", "/.well-known/oauth-authorization-server")
    b = metadata.request("GET", "/.well-known/openid-configuration")
    assert response_json(a) == response_json(b)


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]
)
def test_protected_resource_metadata_names_the_mcp_server(metadata, path):
    response = metadata.request("GET", path)
    assert response.status == 200
    document = response_json(response)
    assert document["resource"] == f"{BASE_URL}/mcp"
    assert document["authorization_servers"] == [BASE_URL]
    assert document["bearer_methods_supported"] == ["header"]
    assert "mcp:tools:call" in document["scopes_supported"]


def test_the_wallet_api_has_its_own_resource_metadata(metadata):
    document = response_json(metadata.request("GET", "/.well-known/oauth-protected-resource/api"))
    assert document["resource"] == f"{BASE_URL}/api"


def test_unknown_resource_metadata_is_404(metadata):
    response = metadata.request("GET", "/.well-known/oauth-protected-resource/nope")
    assert response.status == 404
    assert response_json(response)["error"] == "not_found"


def test_jwks_publishes_both_kms_keys_under_their_thumbprints(metadata, aws_stack):
    response = metadata.request("GET", "/.well-known/jwks.json")
    assert response.status == 200
    assert "max-age" in header(response, "cache-control")
    keys = response_json(response)["keys"]
    expected = []
    for logical_id in ("SigningKeyBlue", "SigningKeyGreen"):  # the active key first
        der = aws.kms().get_public_key(KeyId=aws_stack.physical_ids[logical_id])["PublicKey"]
        expected.append(thumbprint(rsa_public_key_from_der(der)))
    assert [k["kid"] for k in keys] == expected
    for jwk in keys:
        assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")
        assert jwt.PyJWK(jwk).key_type == "RSA"


def test_a_captured_api_gateway_event_is_served(metadata):
    event = json.loads((EVENTS / "http_api_get_metadata.json").read_text())
    response = metadata.invoke_event(event)
    assert response.status == 200
    assert response_json(response)["issuer"] == BASE_URL


def test_unknown_paths_and_methods_are_json_errors(metadata):
    assert metadata.request("GET", "/nope").status == 404
    response = metadata.request("POST", "/.well-known/jwks.json")
    assert response.status == 405
    assert response_json(response)["error"] == "method_not_allowed"


@pytest.mark.parametrize("host", ["127.0.0.1:3000", "[::1]:3000"])
def test_locally_the_metadata_names_the_resource_on_the_loopback_name_asked(metadata, host):
    """RFC 9728 §3.3: `resource` is the URL the client asked about; the issuer stays one."""
    document = response_json(
        metadata.request("GET", "/.well-known/oauth-protected-resource/mcp", headers={"host": host})
    )
    assert document["resource"] == f"http://{host}/mcp"
    assert document["authorization_servers"] == [BASE_URL]
    foreign = metadata.request(
        "GET", "/.well-known/oauth-protected-resource", headers={"host": "evil.example"}
    )
    assert response_json(foreign)["resource"] == f"{BASE_URL}/mcp"
