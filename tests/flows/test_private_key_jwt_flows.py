"""private_key_jwt end to end against the local stack, with the official MCP Python SDK's own
`PrivateKeyJWTOAuthProvider` (client_credentials, RFC 7523 §2.2): a client registers its public
keys (RFC 7591 `jwks`, or a `jwks_uri` served over HTTPS), the SDK signs its assertions with the
private key, and the token it gets calls an MCP tool."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mcp import Client
from mcp.client.auth.extensions.client_credentials import PrivateKeyJWTOAuthProvider, SignedJWTParameters
from mcp.client.streamable_http import streamable_http_client

from tests.flows.test_foundation import MemoryStorage
from tests.support.local_stack import free_port
from tests.support.metadata_document import DocumentHandler, serving_document

pytestmark = [pytest.mark.flow, pytest.mark.anyio]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_jwks(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> dict:
    algorithm = (
        jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    )
    return {"keys": [{**json.loads(algorithm.to_jwk(key.public_key())), "use": "sig"}]}


def register(stack, **keys) -> str:
    response = httpx.post(
        f"{stack.base_url}/oauth/register",
        json={
            "client_name": "private_key_jwt flow test",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": "mcp:tools:list mcp:tools:call",
            **keys,
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert "client_secret" not in response.json()
    return response.json()["client_id"]


async def call_ping(stack, client_id: str, key, algorithm: str) -> None:
    signing = SignedJWTParameters(
        issuer=client_id, subject=client_id, signing_key=pem(key), signing_algorithm=algorithm
    )
    provider = PrivateKeyJWTOAuthProvider(
        server_url=stack.mcp_url,
        storage=MemoryStorage(),
        client_id=client_id,
        assertion_provider=signing.create_assertion_provider(),
        scope="mcp:tools:list mcp:tools:call",
        issuer=stack.base_url,
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(stack.mcp_url, http_client=http)) as client,
    ):
        tools = await client.list_tools()
        assert "ping" in [t.name for t in tools.tools]
        result = await client.call_tool("ping", {})
        assert not result.is_error
        assert result.structured_content["client_id"] == client_id


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_sdk_private_key_jwt_provider_with_registered_jwks(stack, algorithm):
    key = (
        rsa.generate_private_key(65537, 2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    client_id = register(stack, jwks=public_jwks(key))
    await call_ping(stack, client_id, key, algorithm)


@pytest.fixture
def served_keys(pki) -> Iterator[tuple[str, type[DocumentHandler], ec.EllipticCurvePrivateKey]]:
    key = ec.generate_private_key(ec.SECP256R1())
    port = free_port()
    with serving_document(pki, port, json.dumps(public_jwks(key)).encode()) as handler:
        yield f"https://localhost:{port}/jwks.json", handler, key


async def test_sdk_private_key_jwt_provider_with_keys_at_a_jwks_uri(stack, served_keys):
    url, handler, key = served_keys
    client_id = register(stack, jwks_uri=url)
    await call_ping(stack, client_id, key, "ES256")
    await call_ping(stack, client_id, key, "ES256")  # a second token: the keys come from the cache
    assert handler.hits == 1


def one_assertion_grant(stack) -> dict[str, str]:
    """A client_credentials request of a newly registered key client, with one signed assertion."""
    key = ec.generate_private_key(ec.SECP256R1())
    client_id = register(stack, jwks=public_jwks(key))
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": stack.base_url,
        "exp": int(time.time()) + 60,
        "jti": str(uuid.uuid4()),
    }
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": jwt.encode(claims, key, algorithm="ES256"),
    }


def test_a_replayed_assertion_is_refused_by_the_stack(stack):
    data = one_assertion_grant(stack)
    assert httpx.post(f"{stack.base_url}/oauth/token", data=data, timeout=30).status_code == 200
    replay = httpx.post(f"{stack.base_url}/oauth/token", data=data, timeout=30)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


def test_concurrent_requests_with_one_assertion_get_one_token(stack):
    """A race: the same assertion sent four times at once to the stack's concurrent workers. The
    `jti` is spent by a conditional Put in the issuing transaction, so exactly one is answered a
    token; every other is invalid_client, refused at the read or losing the transaction."""
    data = one_assertion_grant(stack)
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: httpx.post(f"{stack.base_url}/oauth/token", data=data, timeout=60), range(4))
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 401, 401, 401], [a.text for a in answers]
    assert {a.json()["error"] for a in answers if a.status_code == 401} == {"invalid_client"}
