"""Access-token validation (RFC 9068 §4): only our own RS256 at+jwt tokens for this audience pass."""

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.unit.fake_kms import FakeKms
from wallet_mcp.tokens.access_tokens import (
    AccessTokenVerifier,
    InvalidAccessToken,
    access_token_claims,
    issue_access_token,
)
from wallet_mcp.tokens.keys import KmsPublicKeys
from wallet_mcp.tokens.signer import KmsJwtSigner

ISSUER = "https://wallet.example.com"
MCP = f"{ISSUER}/mcp"


@pytest.fixture
def kms():
    return FakeKms()


@pytest.fixture
def key_id(kms):
    return kms.create_key()


@pytest.fixture
def keys(kms, key_id):
    return KmsPublicKeys(kms, (key_id,))


@pytest.fixture
def signer(kms, keys, key_id):
    return KmsJwtSigner(kms, keys, key_id)


@pytest.fixture
def verifier(keys):
    return AccessTokenVerifier(keys, issuer=ISSUER, audience=MCP)


def claims(**overrides):
    base = access_token_claims(
        issuer=ISSUER, subject="user-1", client_id="client-1", audience=MCP, scope="mcp:tools:call", ttl=3600
    )
    base.update(overrides)
    return base


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_we_signed_verifies(signer, verifier):
    token = verifier.verify(issue_access_token(signer, claims()))
    assert token.subject == "user-1"
    assert token.client_id == "client-1"
    assert token.scopes == frozenset({"mcp:tools:call"})
    assert token.audience == MCP


def test_header_is_rs256_at_jwt_with_the_key_thumbprint(signer):
    header = jwt.get_unverified_header(issue_access_token(signer, claims()))
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": signer.kid}


def test_signing_is_one_kms_call_once_the_public_key_is_known(kms, signer):
    issue_access_token(signer, claims())
    kms.calls.clear()
    issue_access_token(signer, claims())
    assert kms.calls == ["Sign"]


def test_verification_makes_no_kms_call_when_warm(kms, signer, verifier):
    token = issue_access_token(signer, claims())
    verifier.verify(token)
    kms.calls.clear()
    verifier.verify(token)
    assert kms.calls == []


def test_alg_none_is_refused(verifier, signer):
    forged = f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': signer.kid})}.{b64(claims())}."
    with pytest.raises(InvalidAccessToken, match="algorithm"):
        verifier.verify(forged)


def test_hs256_signed_with_the_public_key_is_refused(verifier, signer, keys, key_id):
    public_pem = keys.get(key_id).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = jwt.encode(
        claims(), public_pem.decode()[:40], algorithm="HS256", headers={"kid": signer.kid, "typ": "at+jwt"}
    )
    with pytest.raises(InvalidAccessToken):
        verifier.verify(forged)


def test_a_token_signed_by_another_key_is_refused(verifier, signer):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": signer.kid, "typ": "at+jwt"})
    with pytest.raises(InvalidAccessToken):
        verifier.verify(forged)


def test_an_unknown_kid_is_refused(verifier):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "someone-else", "typ": "at+jwt"})
    with pytest.raises(InvalidAccessToken, match="unknown key"):
        verifier.verify(forged)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aud": f"{ISSUER}/api"}, "not issued for this resource"),
        ({"aud": [MCP, f"{ISSUER}/api"]}, "not issued for this resource"),
        ({"iss": "https://evil.example.com"}, "not issued by this server"),
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200}, "invalid"),
        ({"exp": int(time.time()) + 10 * 86400}, "lifetime"),
    ],
)
def test_wrong_claims_are_refused(signer, verifier, overrides, message):
    with pytest.raises(InvalidAccessToken, match=message):
        verifier.verify(issue_access_token(signer, claims(**overrides)))


@pytest.mark.parametrize("missing", ["sub", "client_id", "scope", "jti", "exp", "iat"])
def test_required_claims_must_be_present(signer, verifier, missing):
    incomplete = claims()
    del incomplete[missing]
    with pytest.raises(InvalidAccessToken):
        verifier.verify(issue_access_token(signer, incomplete))


def test_a_jwt_of_another_type_is_refused(signer, verifier):
    id_token_like = signer.sign(claims(), typ="JWT")
    with pytest.raises(InvalidAccessToken, match="not an access token"):
        verifier.verify(id_token_like)


def test_a_tampered_payload_is_refused(signer, verifier):
    header, _, signature = issue_access_token(signer, claims()).split(".")
    tampered = f"{header}.{b64(claims(scope='wallet:accounts:write'))}.{signature}"
    with pytest.raises(InvalidAccessToken):
        verifier.verify(tampered)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 10000])
def test_garbage_is_refused(verifier, garbage):
    with pytest.raises(InvalidAccessToken):
        verifier.verify(garbage)
