"""`wallet-mcp` authenticating with a private key file (`MCP_CLIENT_PRIVATE_KEY_FILE`, RFC 7523
§2.2 `private_key_jwt`) instead of a secret: `call` through the SDK's `PrivateKeyJWTOAuthProvider`,
and the stdio bridge's own client-credentials requests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devstack.seed import DEMO_USER_ID
from tests.cli.conftest import BALANCE_TEXT, JWT
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.storage.clients import ClientRecord, ClientStore

pytestmark = pytest.mark.flow


def key_client(stack, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """A client_credentials client of the demo user's wallet that holds only a public key."""
    algorithm = (
        jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
    )
    jwks = {"keys": [{**json.loads(algorithm.to_jwk(key.public_key())), "kid": "cli-1"}]}
    client_id = f"cli-key-{uuid.uuid4().hex[:8]}"
    ClientStore(stack.client("dynamodb"), "wallet-mcp-local-ClientsTable").put(
        ClientRecord(
            client_id=client_id,
            client_name="CLI with a key",
            token_endpoint_auth_method="private_key_jwt",
            grant_types=("client_credentials",),
            redirect_uris=(),
            scope=SUPPORTED_SCOPES,
            created_at=0,
            owner_user_id=DEMO_USER_ID,
            jwks=json.dumps(jwks),
        )
    )
    return client_id


def key_file(tmp_path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Path:
    path = tmp_path / "client-key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    return path


def key_env(stack, client_id: str, path: Path, **extra: str) -> dict[str, str]:
    return {
        "BACKEND_API_URL": stack.base_url,
        "AUTHORIZATION_SERVER_URL": stack.base_url,
        "MCP_CLIENT_ID": client_id,
        "MCP_CLIENT_PRIVATE_KEY_FILE": str(path),
        **extra,
    }


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_call_authenticates_with_a_private_key_file(stack, cli, tmp_path, kind):
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    client_id = key_client(stack, key)
    env = key_env(stack, client_id, key_file(tmp_path, key), MCP_CLIENT_KEY_ID="cli-1")
    balance = cli.run("call", "getTotalBalance", env=env)
    assert balance.returncode == 0, balance.stderr
    assert BALANCE_TEXT.match(balance.stdout.rstrip("\n"))
    assert not JWT.search(balance.stderr)  # no assertion, no token in the logs


@pytest.mark.anyio
async def test_the_stdio_bridge_authenticates_with_a_private_key_file(stack, cli, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    client_id = key_client(stack, key)
    stderr = tmp_path / "stderr.log"
    async with cli.bridge(key_env(stack, client_id, key_file(tmp_path, key)), stderr) as client:
        result = await client.call_tool("getTotalBalance", {})
        assert not result.is_error, result.content
        assert BALANCE_TEXT.match(result.content[0].text)
    assert not JWT.search(stderr.read_text())


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"MCP_CLIENT_SECRET": "also-a-secret"}, "both set"),
        ({"MCP_CLIENT_KEY_ALG": "ES256"}, "RS256 or PS256"),
    ],
)
def test_a_key_file_with_a_secret_or_a_wrong_algorithm_is_a_configuration_error(
    stack, cli, tmp_path, extra, expected
):
    path = key_file(tmp_path, rsa.generate_private_key(65537, 2048))
    result = cli.run("call", "ping", env=key_env(stack, "anyone", path, **extra))
    assert result.returncode != 0
    assert expected in result.stderr


def test_an_unreadable_key_file_is_a_configuration_error(stack, cli, tmp_path):
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("hello")
    result = cli.run("call", "ping", env=key_env(stack, "anyone", bad))
    assert result.returncode != 0
    assert "not an unencrypted PEM private key" in result.stderr
