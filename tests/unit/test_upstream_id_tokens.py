"""ID tokens from an upstream provider (OpenID Connect Core §3.1.3.7), with keys made here."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from wallet_mcp.config.upstream import IdentityProvider
from wallet_mcp.signin.upstream.discovery import ProviderMetadata
from wallet_mcp.signin.upstream.id_tokens import (
    InvalidIdToken,
    UpstreamIdentity,
    validate_id_token,
    with_userinfo,
)

ISSUER = "https://idp.example.com"
CLIENT_ID = "wallet-client"
NONCE = "n-0S6_WzA2Mj"
MS_TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def provider(**overrides: Any) -> IdentityProvider:
    values: dict[str, Any] = {
        "id": "idp",
        "name": "IdP",
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "client_secret": None,
    }
    values.update(overrides)
    return IdentityProvider(**values)


def metadata(issuer: str = ISSUER, algorithms: tuple[str, ...] = ("RS256",)) -> ProviderMetadata:
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        jwks_uri=f"{ISSUER}/jwks",
        id_token_algorithms=algorithms,
        token_endpoint_auth_methods=("client_secret_basic",),
    )


class Keys:
    """A provider's key set, with a record of each fetch (refresh=True: fetched again)."""

    def __init__(self, *published: dict[str, Any]) -> None:
        self.published = list(published)
        self.fetches: list[bool] = []

    def __call__(self, refresh: bool) -> dict[str, Any]:
        self.fetches.append(refresh)
        return {"keys": list(self.published)}


def rsa_key(kid: str = "k1") -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return private, {**jwk, "kid": kid, "use": "sig"}


@pytest.fixture(scope="module")
def signing():
    return rsa_key("k1")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": NONCE,
        "email": "Jane@Example.com",
        "email_verified": True,
        "name": "Jane  Doe",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def sign(private: Any, body: dict[str, Any], *, kid: str | None = "k1", alg: str = "RS256") -> str:
    headers = {"kid": kid} if kid else {}
    return jwt.encode(body, private, algorithm=alg, headers=headers)


def validate(token: str, keys: Keys, **kwargs: Any) -> UpstreamIdentity:
    return validate_id_token(
        token,
        provider=kwargs.pop("provider", provider()),
        metadata=kwargs.pop("metadata", metadata()),
        keys=keys,
        nonce_hash=hashlib.sha256(NONCE.encode()).hexdigest(),
    )


def test_a_valid_token_gives_the_identity(signing):
    private, jwk = signing
    identity = validate(sign(private, claims()), Keys(jwk))
    assert identity == UpstreamIdentity(
        issuer=ISSUER,
        subject="248289761001",
        email="jane@example.com",
        email_verified=True,
        name="Jane Doe",
        tenant=None,
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://evil.example.com"}, "another issuer"),
        ({"aud": "another-client"}, "another client"),
        ({"aud": [CLIENT_ID, "another-client"]}, "another party"),
        ({"azp": "another-client"}, "another party"),
        ({"exp": -120, "iat": -600}, "expired"),
        ({"nonce": "another-nonce"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"sub": None}, "invalid"),
        ({"iat": None}, "invalid"),
        ({"sub": ""}, "sub"),
    ],
)
def test_claims_that_do_not_hold_are_refused(signing, changes, reason):
    """`changes` are applied when the test runs (times relative to now: the suite may run long
    after collection)."""
    now = int(time.time())
    body = claims(**{k: now + v if k in ("exp", "iat") and v is not None else v for k, v in changes.items()})
    private, jwk = signing
    with pytest.raises(InvalidIdToken, match=reason):
        validate(sign(private, body), Keys(jwk))


def test_several_audiences_with_azp_us_pass(signing):
    private, jwk = signing
    token = sign(private, claims(aud=[CLIENT_ID, "other"], azp=CLIENT_ID))
    assert validate(token, Keys(jwk)).subject == "248289761001"


def test_alg_none_is_refused(signing):
    _, jwk = signing
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidIdToken, match="algorithm 'none'"):
        validate(f"{header}.{body}.", Keys(jwk))


def test_hs256_keyed_with_anything_is_refused_even_if_published(signing):
    _, jwk = signing
    secret = "the client secret, which the provider knows too"
    token = jwt.encode(claims(), secret, algorithm="HS256", headers={"kid": "k1"})
    for published in (("RS256",), ("RS256", "HS256")):
        with pytest.raises(InvalidIdToken, match="algorithm 'HS256'"):
            validate(token, Keys(jwk), metadata=metadata(algorithms=published))


def test_an_algorithm_the_provider_does_not_publish_is_refused(signing):
    private, jwk = signing
    with pytest.raises(InvalidIdToken, match="PS256"):
        validate(sign(private, claims(), alg="PS256"), Keys(jwk))


def test_a_published_es256_key_works_when_es256_is_published():
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key())), "kid": "ec1"}
    token = sign(private, claims(), kid="ec1", alg="ES256")
    assert validate(token, Keys(jwk), metadata=metadata(algorithms=("RS256", "ES256"))).email_verified


def test_an_unknown_kid_fetches_the_keys_again_once(signing):
    _, old = signing
    private, rotated = rsa_key("k2")
    keys = Keys(old)
    token = sign(private, claims(), kid="k2")

    def rotate(refresh: bool) -> dict[str, Any]:
        keys.fetches.append(refresh)
        return {"keys": [old, rotated] if refresh else [old]}

    assert validate(token, rotate).subject == "248289761001"  # type: ignore[arg-type]
    assert keys.fetches == [False, True]


def test_a_kid_not_published_even_after_fetching_again_is_refused(signing):
    _, jwk = signing
    stranger, _ = rsa_key("k9")
    keys = Keys(jwk)
    with pytest.raises(InvalidIdToken, match="key the provider does not publish"):
        validate(sign(stranger, claims(), kid="k9"), keys)
    assert keys.fetches == [False, True]


def test_a_signature_by_another_key_under_a_known_kid_is_refused(signing):
    _, jwk = signing
    stranger, _ = rsa_key("k1")
    with pytest.raises(InvalidIdToken, match="signature"):
        validate(sign(stranger, claims()), Keys(jwk))


def test_without_a_kid_only_a_single_suitable_key_is_used(signing):
    private, jwk = signing
    assert validate(sign(private, claims(), kid=None), Keys(jwk)).subject
    _, other = rsa_key("k2")
    with pytest.raises(InvalidIdToken, match="does not publish"):
        validate(sign(private, claims(), kid=None), Keys(jwk, other))


def test_a_key_published_for_encryption_or_another_algorithm_is_not_used(signing):
    private, jwk = signing
    with pytest.raises(InvalidIdToken, match="does not publish"):
        validate(sign(private, claims()), Keys({**jwk, "use": "enc"}))
    with pytest.raises(InvalidIdToken, match="does not publish"):
        validate(sign(private, claims()), Keys({**jwk, "alg": "RS512"}))


# --- Microsoft: a multi-tenant issuer --------------------------------------------------------------


def ms_provider(**overrides: Any) -> IdentityProvider:
    return provider(issuer="https://login.microsoftonline.com/common/v2.0", **overrides)


def test_a_tenant_issuer_is_checked_against_the_template_with_the_tokens_tid(signing):
    private, jwk = signing
    iss = f"https://login.microsoftonline.com/{TENANT}/v2.0"
    # Microsoft sends an address but never email_verified: it counts as unverified
    token = sign(private, claims(iss=iss, tid=TENANT, email_verified=None))
    identity = validate(token, Keys(jwk), provider=ms_provider(), metadata=metadata(MS_TEMPLATE))
    assert identity.issuer == iss and identity.tenant == TENANT
    assert identity.email == "jane@example.com" and identity.email_verified is False


@pytest.mark.parametrize(
    "body",
    [
        claims(iss=f"https://login.microsoftonline.com/{TENANT}/v2.0"),  # no tid
        claims(iss=f"https://login.microsoftonline.com/{TENANT}/v2.0", tid="another-tenant"),
        claims(iss="https://login.microsoftonline.com/another-tenant/v2.0", tid=TENANT),
        claims(iss=MS_TEMPLATE, tid="{tenantid}"),
        claims(iss="https://login.microsoftonline.com/x/y/v2.0", tid="x/y"),
    ],
)
def test_a_tenant_issuer_that_does_not_match_its_tid_is_refused(signing, body):
    private, jwk = signing
    with pytest.raises(InvalidIdToken):
        validate(sign(private, body), Keys(jwk), provider=ms_provider(), metadata=metadata(MS_TEMPLATE))


def test_allowed_tenants_keep_other_tenants_out(signing):
    private, jwk = signing
    iss = f"https://login.microsoftonline.com/{TENANT}/v2.0"
    token = sign(private, claims(iss=iss, tid=TENANT))
    allowed = ms_provider(allowed_tenants=(TENANT,))
    assert validate(token, Keys(jwk), provider=allowed, metadata=metadata(MS_TEMPLATE)).tenant == TENANT
    other = ms_provider(allowed_tenants=("9188040d-6c67-4c5b-b112-36a304b66dad",))
    with pytest.raises(InvalidIdToken, match="tenant"):
        validate(token, Keys(jwk), provider=other, metadata=metadata(MS_TEMPLATE))


# --- email_verified and the rest ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verified", "expected"),
    [(True, True), ("true", True), (None, False), (False, False), ("yes", False), (1, False)],
)
def test_only_an_explicit_email_verified_true_counts(signing, verified, expected):
    private, jwk = signing
    identity = validate(sign(private, claims(email_verified=verified)), Keys(jwk))
    assert identity.email_verified is expected


def test_google_s_issuer_without_scheme_is_accepted_for_google_only(signing):
    private, jwk = signing
    google = provider(issuer="https://accounts.google.com")
    google_metadata = metadata("https://accounts.google.com")
    token = sign(private, claims(iss="accounts.google.com"))
    assert (
        validate(token, Keys(jwk), provider=google, metadata=google_metadata).issuer == "accounts.google.com"
    )
    with pytest.raises(InvalidIdToken, match="issuer"):
        validate(sign(private, claims(iss="idp.example.com")), Keys(jwk))


def test_userinfo_completes_the_identity_only_for_the_same_subject(signing):
    private, jwk = signing
    identity = validate(sign(private, claims(email=None, email_verified=None, name=None)), Keys(jwk))
    assert identity.email is None
    completed = with_userinfo(
        identity, {"sub": identity.subject, "email": "j@example.com", "email_verified": True, "name": "J"}
    )
    assert (completed.email, completed.email_verified, completed.name) == ("j@example.com", True, "J")
    with pytest.raises(InvalidIdToken, match="another subject"):
        with_userinfo(identity, {"sub": "someone-else", "email": "j@example.com", "email_verified": True})


@pytest.mark.parametrize("token", ["", "not.a.jwt", "a" * 20000, "e30.e30.e30"])
def test_garbage_is_refused(signing, token):
    _, jwk = signing
    with pytest.raises(InvalidIdToken):
        validate(token, Keys(jwk))
