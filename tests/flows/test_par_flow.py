"""PAR (RFC 9126) against the local stack: a confidential client that holds a key pushes its
authorization request with a `private_key_jwt` assertion, a person signs in and consents through
the real pages reached with only `client_id` and `request_uri`, and the code is exchanged with a
second assertion; the `request_uri` does not work twice."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.flows.test_private_key_jwt_flows import public_jwks
from tests.support.browser import FormBrowser
from wallet_mcp.primitives import pkce

pytestmark = [pytest.mark.flow, pytest.mark.anyio]

CALLBACK = "http://localhost:8766/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def signed(key: ec.EllipticCurvePrivateKey, client_id: str, audience: str) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + 60, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm="ES256")


async def test_a_pushed_request_signed_with_a_key_ends_in_tokens(stack):
    key = ec.generate_private_key(ec.SECP256R1())
    async with httpx.AsyncClient(timeout=30) as http:
        registered = await http.post(
            f"{stack.base_url}/oauth/register",
            json={
                "client_name": "PAR flow test",
                "redirect_uris": [CALLBACK],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": public_jwks(key),
                "require_pushed_authorization_requests": True,
                "scope": "mcp:tools:list mcp:tools:call",
            },
        )
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        metadata = (await http.get(f"{stack.base_url}/.well-known/oauth-authorization-server")).json()
        verifier = "flow-verifier-" + "f" * 50
        pushed = await http.post(
            metadata["pushed_authorization_request_endpoint"],
            data={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": CALLBACK,
                "scope": "mcp:tools:list mcp:tools:call",
                "state": "flow",
                "code_challenge": pkce.s256(verifier),
                "code_challenge_method": "S256",
                "resource": f"{stack.base_url}/mcp",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": signed(key, client_id, metadata["issuer"]),
            },
        )
        assert pushed.status_code == 201, pushed.text
        request_uri = pushed.json()["request_uri"]
        query = urlencode({"client_id": client_id, "request_uri": request_uri})
        url = f"{metadata['authorization_endpoint']}?{query}"
        browser = FormBrowser(DEMO_USERNAME, DEMO_PASSWORD)
        landing = await browser.authorize(url)
        await browser.aclose()
        assert landing.params["state"] == "flow" and landing.params["iss"] == metadata["issuer"]
        tokens = await http.post(
            metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": landing.params["code"],
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": signed(key, client_id, metadata["token_endpoint"]),
            },
        )
        assert tokens.status_code == 200, tokens.text
        assert json.loads(tokens.text)["refresh_token"]
        # the request_uri was spent; a plain request from this client is refused (it requires PAR)
        again = await http.get(url)
        assert again.status_code == 400
