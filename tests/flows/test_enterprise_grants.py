"""Enterprise-managed authorization end to end on the local stack: a small enterprise IdP on
loopback (tests/support/enterprise_idp.py) signs ID-JAGs with its own key and serves its JWKS; the
stack trusts it through its `TrustedEnterpriseIdps` parameter; the official Python SDK's
`IdentityAssertionOAuthProvider` presents the ID-JAG with the jwt-bearer grant (RFC 7523 §2.1)
and calls a wallet tool for the mapped user. Then every way an ID-JAG is refused, black-box."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.streamable_http import streamable_http_client

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_PASSWORD, DEMO_USER_ID, DEMO_USERNAME
from tests.flows.test_foundation import MemoryStorage
from tests.support.enterprise_idp import EnterpriseIdp, running_idp
from tests.support.local_stack import LocalStack, free_port, running_stack
from tests.support.site import Browser, Person, create_person, eventually, mcp_call, next_second, refused
from wallet_mcp.oauth.rules.grants import IDP_CUT_OFF
from wallet_mcp.primitives import id_jag, workload_jwt
from wallet_mcp.storage.clients import ClientRecord, ClientStore

pytestmark = [pytest.mark.flow]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACME_SCOPES = "mcp:tools:list mcp:tools:call wallet:accounts:read"
WORKLOAD_SUB = "repo:acme/agent:ref:refs/heads/main"
WORKLOAD_CLIENT = "ci-agent"
BETA_SCOPES = "mcp:tools:list mcp:tools:call"


@dataclass(frozen=True)
class Enterprise:
    stack: LocalStack
    idp: EnterpriseIdp

    def id_jag(self, issuer: str = "acme", **claims) -> str:
        return self.idp[issuer].id_jag(**self.claims(**claims))

    def claims(self, **claims) -> dict:
        return {
            "audience": self.stack.base_url,
            "resource": self.stack.mcp_url,
            "client_id": DEMO_CLIENT_ID,
            "subject": "00u-demo",
            "email": "demo@example.com",
            "email_verified": True,
            **claims,
        }


@pytest.fixture(scope="module")
def enterprise(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enterprise]:
    """The IdP first (its issuers go into the stack's parameters), then a stack that trusts three
    of its issuers: `acme` maps subjects by verified email, `beta` by `sub` (the login name) and
    may grant fewer scopes, `gamma` by an identity link an administrator makes. `rogue` is served
    too but trusted by nobody."""
    with running_idp(free_port(), ("acme", "beta", "gamma", "ci", "rogue")) as idp:
        trusted = [
            {
                "id": "acme",
                "name": "Acme Corp",
                "issuer": idp["acme"].issuer,
                "jwks_uri": idp["acme"].jwks_uri,
                "client_ids": [DEMO_CLIENT_ID],
                "subject": "email",
                "scopes": ACME_SCOPES,
            },
            {
                "id": "beta",
                "name": "Beta Inc",
                "issuer": idp["beta"].issuer,
                "jwks_uri": idp["beta"].jwks_uri,
                "client_ids": [DEMO_CLIENT_ID],
                "subject": "sub",
                "scopes": BETA_SCOPES,
            },
            {
                "id": "gamma",
                "name": "Gamma LLC",
                "issuer": idp["gamma"].issuer,
                "jwks_uri": idp["gamma"].jwks_uri,
                "client_ids": [DEMO_CLIENT_ID],
                "subject": "link",
                "scopes": ACME_SCOPES,
            },
        ]
        workloads = [
            {
                "id": "ci",
                "name": "Test CI",
                "issuer": idp["ci"].issuer,
                "jwks_uri": idp["ci"].jwks_uri,
                "subjects": {WORKLOAD_SUB: WORKLOAD_CLIENT},
                "scopes": BETA_SCOPES,
            }
        ]
        parameters = {
            "TrustedEnterpriseIdps": trusted,
            "TrustedWorkloadIssuers": workloads,
            "RevocationPollSeconds": "1",
            "TokenFailuresPerAddressPerMinute": "10000",
        }
        with running_stack(tmp_path_factory.mktemp("enterprise"), parameters=parameters) as stack:
            # the machine client a CI job acts as: public (no secret anywhere), the demo user's
            ClientStore(stack.client("dynamodb"), "wallet-mcp-local-ClientsTable").put(
                ClientRecord(
                    client_id=WORKLOAD_CLIENT,
                    client_name="CI agent",
                    token_endpoint_auth_method="none",
                    grant_types=(JWT_BEARER,),
                    redirect_uris=(),
                    response_types=(),
                    scope=tuple(ACME_SCOPES.split()),
                    created_at=int(time.time()),
                    owner_user_id=DEMO_USER_ID,
                )
            )
            yield Enterprise(stack, idp)


def token(enterprise: Enterprise, assertion: str, **form: str) -> httpx.Response:
    return httpx.post(
        f"{enterprise.stack.base_url}/oauth/token",
        data={
            "grant_type": JWT_BEARER,
            "assertion": assertion,
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            **form,
        },
        timeout=30,
    )


def claims_of(access_token: str) -> dict:
    return jwt.decode(access_token, options={"verify_signature": False})


# --- the whole flow, with the official SDK -------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_sdk_presents_an_id_jag_and_calls_a_tool_on_the_mapped_users_wallet(
    enterprise, anyio_backend
):
    asked: list[tuple[str, str]] = []

    async def exchange_at_the_idp(audience: str, resource: str) -> str:
        # what the host would get from the IdP's RFC 8693 token exchange
        asked.append((audience, resource))
        return enterprise.id_jag(audience=audience, resource=resource, scope=ACME_SCOPES)

    storage = MemoryStorage()
    provider = IdentityAssertionOAuthProvider(
        server_url=enterprise.stack.mcp_url,
        storage=storage,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        issuer=enterprise.stack.base_url,
        assertion_provider=exchange_at_the_idp,
        scope="mcp:tools:call wallet:accounts:read",
    )
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(enterprise.stack.mcp_url, http_client=http)) as client,
    ):
        result = await client.call_tool("getTotalBalance", {})
        assert not result.is_error
        assert "$5,432.10" in result.content[0].text  # the demo user's wallet, found by email

    # every ID-JAG asked for names us (a step-up for `tools/list`, which the SDK lists first,
    # asks the IdP for a second one)
    assert asked and set(asked) == {(enterprise.stack.base_url, enterprise.stack.mcp_url)}
    assert storage.tokens is not None
    assert storage.tokens.refresh_token is None  # a new ID-JAG from the IdP instead (draft §5)
    claims = claims_of(storage.tokens.access_token)
    assert claims["sub"] == DEMO_USER_ID
    assert claims["client_id"] == DEMO_CLIENT_ID
    assert claims["idp"] == "acme"
    assert (
        {"mcp:tools:call", "wallet:accounts:read"} <= set(claims["scope"].split()) <= set(ACME_SCOPES.split())
    )


def test_metadata_advertises_the_jwt_bearer_grant(enterprise):
    metadata = httpx.get(f"{enterprise.stack.base_url}/.well-known/oauth-authorization-server").json()
    assert JWT_BEARER in metadata["grant_types_supported"]


def test_a_public_client_is_refused_an_id_jag(enterprise):
    response = httpx.post(
        f"{enterprise.stack.base_url}/oauth/token",
        data={
            "grant_type": JWT_BEARER,
            "client_id": WORKLOAD_CLIENT,
            "assertion": enterprise.id_jag(client_id=WORKLOAD_CLIENT),
        },
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "unauthorized_client"


def test_a_client_may_register_for_the_jwt_bearer_grant(enterprise):
    registered = httpx.post(
        f"{enterprise.stack.base_url}/oauth/register",
        json={
            "client_name": "Enterprise host",
            "grant_types": [JWT_BEARER],
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["grant_types"] == [JWT_BEARER]
    # public too: a workload token is its proof (an ID-JAG is refused to it, above)
    public = httpx.post(
        f"{enterprise.stack.base_url}/oauth/register",
        json={"grant_types": [JWT_BEARER], "token_endpoint_auth_method": "none"},
    )
    assert public.status_code == 201, public.text


def test_the_sub_mapping_and_the_idps_allowance_narrow_the_scopes(enterprise):
    # beta may grant only tools: the wallet scope it asserts and the client asks for is dropped
    assertion = enterprise.id_jag("beta", subject="demo", scope=ACME_SCOPES)
    granted = token(enterprise, assertion, scope=ACME_SCOPES)
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert set(body["scope"].split()) == {"mcp:tools:list", "mcp:tools:call"}
    assert "refresh_token" not in body
    assert claims_of(body["access_token"])["sub"] == DEMO_USER_ID


def test_the_assertion_narrows_what_the_client_asks_for(enterprise):
    granted = token(enterprise, enterprise.id_jag(scope="mcp:tools:call"), scope=ACME_SCOPES)
    assert granted.status_code == 200, granted.text
    assert granted.json()["scope"] == "mcp:tools:call"


def test_a_request_naming_the_mcp_resource_is_accepted(enterprise):
    granted = token(enterprise, enterprise.id_jag(), resource=enterprise.stack.mcp_url)
    assert granted.status_code == 200, granted.text
    assert mcp_call(enterprise.stack, granted.json()["access_token"]).status_code == 200


# --- every refusal: 400 invalid_grant, a fixed description ----------------------------------------


def refused_with(response: httpx.Response, description: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"error": "invalid_grant", "error_description": description}


def test_a_replayed_id_jag_is_refused(enterprise):
    assertion = enterprise.id_jag()
    assert token(enterprise, assertion).status_code == 200
    refused_with(token(enterprise, assertion), id_jag.REPLAYED)


def test_an_untrusted_issuer_is_refused(enterprise):
    refused_with(token(enterprise, enterprise.id_jag("rogue")), id_jag.UNTRUSTED)


def test_a_trusted_issuer_signed_with_a_foreign_key_is_refused(enterprise):
    forged = enterprise.idp["rogue"].sign(enterprise.idp["acme"].claims(**enterprise.claims()))
    refused_with(token(enterprise, forged), id_jag.BAD_SIGNATURE)


@pytest.mark.parametrize(
    "claims",
    [
        {"audience": "https://auth.other.example"},
        {"resource": "https://mcp.other.example/mcp"},
        {"resource": "API"},  # our own API: not the MCP server the grant must name
    ],
    ids=["foreign-aud", "foreign-resource", "api-resource"],
)
def test_a_wrong_aud_or_resource_is_refused(enterprise, claims):
    if claims.get("resource") == "API":
        claims = {"resource": f"{enterprise.stack.base_url}/api"}
    refused_with(token(enterprise, enterprise.id_jag(**claims)), id_jag.WRONG_AUDIENCE)


def test_a_request_resource_other_than_the_assertions_is_refused(enterprise):
    response = token(enterprise, enterprise.id_jag(), resource=f"{enterprise.stack.base_url}/api")
    refused_with(response, id_jag.WRONG_AUDIENCE)


def test_an_expired_id_jag_is_refused(enterprise):
    now = int(time.time())
    refused_with(token(enterprise, enterprise.id_jag(iat=now - 600, exp=now - 120)), id_jag.EXPIRED)


def test_an_id_jag_valid_for_too_long_is_refused(enterprise):
    now = int(time.time())
    refused_with(token(enterprise, enterprise.id_jag(exp=now + 24 * 3600)), id_jag.EXPIRED)


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "id_token"])
def test_a_wrong_typ_is_refused(enterprise, typ):
    acme = enterprise.idp["acme"]
    refused_with(token(enterprise, acme.sign(acme.claims(**enterprise.claims()), typ=typ)), id_jag.WRONG_TYP)


def test_alg_none_is_refused(enterprise):
    acme = enterprise.idp["acme"]
    unsigned = jwt.encode(
        acme.claims(**enterprise.claims()), None, algorithm="none", headers={"typ": "oauth-id-jag+jwt"}
    )
    refused_with(token(enterprise, unsigned), id_jag.WRONG_ALG)


def test_an_hmac_signed_id_jag_is_refused(enterprise):
    acme = enterprise.idp["acme"]
    hmac = jwt.encode(
        acme.claims(**enterprise.claims()),
        "a-shared-secret-long-enough-for-hs256",
        algorithm="HS256",
        headers={"typ": "oauth-id-jag+jwt"},
    )
    refused_with(token(enterprise, hmac), id_jag.WRONG_ALG)


def test_an_id_jag_issued_to_another_client_is_refused(enterprise):
    refused_with(token(enterprise, enterprise.id_jag(client_id="someone-elses-client")), id_jag.WRONG_CLIENT)


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "nobody@example.com"},  # verified, but no wallet user has it
        {"email_verified": False},  # the demo user's address, not asserted verified
        {"email": None, "email_verified": None},
    ],
    ids=["unknown-email", "unverified-email", "no-email"],
)
def test_an_unmapped_subject_is_refused(enterprise, claims):
    full = {k: v for k, v in enterprise.claims(**claims).items() if v is not None}
    refused_with(token(enterprise, enterprise.idp["acme"].id_jag(**full)), id_jag.UNMAPPED)


def test_an_unknown_login_name_is_refused_by_the_sub_mapping(enterprise):
    refused_with(token(enterprise, enterprise.id_jag("beta", subject="no-such-user")), id_jag.UNMAPPED)


def test_an_id_jag_granting_only_scopes_beyond_the_idps_allowance_is_refused(enterprise):
    refused_with(
        token(enterprise, enterprise.id_jag("beta", subject="demo", scope="wallet:accounts:read")),
        id_jag.NO_SCOPE,
    )


def test_a_missing_jti_is_refused(enterprise):
    acme = enterprise.idp["acme"]
    claims = acme.claims(**enterprise.claims())
    del claims["jti"]
    refused_with(token(enterprise, acme.sign(claims)), id_jag.MISSING)


def test_garbage_is_refused_not_a_server_error(enterprise):
    for assertion in ("", "not-a-jwt", "a.b.c", "x" * 16000, "x" * 20000):
        response = token(enterprise, assertion)
        assert response.status_code in (400, 413), (assertion[:20], response.text)  # 413: the body cap
        assert response.json()["error"] in ("invalid_grant", "invalid_request")


def test_a_wrong_client_secret_is_invalid_client(enterprise):
    response = token(enterprise, enterprise.id_jag(), client_secret="wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


# --- visible and revocable: /account and /admin -----------------------------------------------------


DEMO = Person(DEMO_USERNAME, DEMO_PASSWORD, DEMO_USER_ID)


@pytest.fixture
def demo_browser(enterprise) -> Iterator[Browser]:
    browser = Browser(enterprise.stack.base_url)
    browser.sign_in(DEMO)  # the demo user is an administrator too
    yield browser
    browser.close()


def stops(enterprise: Enterprise, access_token: str, tool: str = "getTotalBalance") -> bool:
    return eventually(lambda: refused(mcp_call(enterprise.stack, access_token, tool)), timeout=6)


def test_an_enterprise_grant_shows_on_account_and_withdrawing_it_ends_its_tokens(enterprise, demo_browser):
    access = token(enterprise, enterprise.id_jag()).json()["access_token"]
    assert mcp_call(enterprise.stack, access).status_code == 200
    assert "granted by Acme Corp" in demo_browser.get("/account").text

    done = demo_browser.press("/account", "/account/revoke", client_id=DEMO_CLIENT_ID)
    assert "Access revoked" in done.text
    assert stops(enterprise, access)
    assert "granted by Acme Corp" not in demo_browser.get("/account").text
    # the IdP still trusts the person with the app: its next grant is honoured
    next_second()
    again = token(enterprise, enterprise.id_jag())
    assert again.status_code == 200, again.text


def test_an_admin_cuts_an_idp_off_and_every_grant_it_made_ends(enterprise, demo_browser):
    next_second()
    beta = token(enterprise, enterprise.id_jag("beta", subject="demo")).json()["access_token"]
    acme = token(enterprise, enterprise.id_jag()).json()["access_token"]
    assert mcp_call(enterprise.stack, beta, "ping").status_code == 200  # beta grants tools only
    listed = demo_browser.get("/admin/enterprise").text
    assert "Beta Inc" in listed and "Acme Corp" in listed
    assert "demo" in listed and DEMO_CLIENT_ID in listed

    done = demo_browser.press("/admin/enterprise", "/admin/enterprise", idp="beta", action="cut_off")
    assert "Identity provider cut off" in done.text
    assert stops(enterprise, beta, "ping")
    assert mcp_call(enterprise.stack, acme).status_code == 200  # the other IdP's grants stand
    refused_with(token(enterprise, enterprise.id_jag("beta", subject="demo")), IDP_CUT_OFF)
    assert "granted by Beta Inc" not in demo_browser.get("/account").text
    assert "granted by Acme Corp" in demo_browser.get("/account").text

    restored = demo_browser.press("/admin/enterprise", "/admin/enterprise", idp="beta", action="restore")
    assert "Identity provider restored" in restored.text
    next_second()
    fresh = token(enterprise, enterprise.id_jag("beta", subject="demo"))
    assert fresh.status_code == 200, fresh.text
    # the resource servers learn of the restore within their poll, like of every ending
    fresh_token = fresh.json()["access_token"]
    assert eventually(lambda: mcp_call(enterprise.stack, fresh_token, "ping").status_code == 200, timeout=6)
    assert refused(mcp_call(enterprise.stack, beta, "ping"))  # nothing from before comes back


def test_only_an_administrator_may_cut_an_idp_off(enterprise):
    person = create_person(enterprise.stack)
    browser = Browser(enterprise.stack.base_url)
    try:
        browser.sign_in(person)
        assert browser.get("/admin/enterprise").status == 403
    finally:
        browser.close()


def test_a_subject_an_administrator_linked_reaches_the_linked_users_wallet(enterprise, demo_browser):
    refused_with(token(enterprise, enterprise.id_jag("gamma", subject="emp-42")), id_jag.UNMAPPED)

    page = demo_browser.get("/admin/enterprise")
    linked = demo_browser.submit(
        page,
        page.form("/admin/enterprise", idp="gamma", action="link"),
        {"subject": "emp-42", "username": DEMO_USERNAME},
    )
    assert "Linked" in demo_browser.follow(linked).text

    granted = token(enterprise, enterprise.id_jag("gamma", subject="emp-42", email="someone@else.example"))
    assert granted.status_code == 200, granted.text
    assert claims_of(granted.json()["access_token"])["sub"] == DEMO_USER_ID
    assert mcp_call(enterprise.stack, granted.json()["access_token"]).status_code == 200


# --- workload identity: a CI job's OIDC token authenticates a machine client -----------------------


def workload_token(enterprise: Enterprise, **claims) -> str:
    ci = enterprise.idp["ci"]
    now = int(time.time())
    full = {
        "iss": ci.issuer,
        "sub": WORKLOAD_SUB,
        "aud": enterprise.stack.base_url,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return ci.sign({k: v for k, v in full.items() if v is not None}, typ="JWT")


def workload_request(enterprise: Enterprise, assertion: str, **form: str) -> httpx.Response:
    return httpx.post(
        f"{enterprise.stack.base_url}/oauth/token",
        data={"grant_type": JWT_BEARER, "client_id": WORKLOAD_CLIENT, "assertion": assertion, **form},
        timeout=30,
    )


def test_a_workload_token_gets_the_machine_client_a_token_for_its_owners_wallet(enterprise):
    granted = workload_request(enterprise, workload_token(enterprise), scope=ACME_SCOPES)
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert "refresh_token" not in body
    assert set(body["scope"].split()) == set(BETA_SCOPES.split())  # the issuer's allowance
    claims = claims_of(body["access_token"])
    assert claims["sub"] == WORKLOAD_CLIENT and claims["client_id"] == WORKLOAD_CLIENT
    assert mcp_call(enterprise.stack, body["access_token"], "ping").status_code == 200


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"aud": "https://auth.other.example"}, workload_jwt.WRONG_AUDIENCE),
        ({"iat": int(time.time()) - 900, "exp": int(time.time()) - 300}, workload_jwt.EXPIRED),
        ({"sub": "repo:acme/agent:ref:refs/heads/feature"}, workload_jwt.NOT_THIS_CLIENT),
    ],
    ids=["wrong-aud", "expired", "unmapped-subject"],
)
def test_a_workload_token_that_does_not_hold_is_refused(enterprise, claims, description):
    refused_with(workload_request(enterprise, workload_token(enterprise, **claims)), description)


def test_a_workload_token_for_another_client_or_replayed_is_refused(enterprise):
    assertion = workload_token(enterprise)
    other = httpx.post(
        f"{enterprise.stack.base_url}/oauth/token",
        data={
            "grant_type": JWT_BEARER,
            "assertion": assertion,
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
        },
    )
    refused_with(other, workload_jwt.NOT_THIS_CLIENT)
    assert workload_request(enterprise, assertion).status_code == 200
    refused_with(workload_request(enterprise, assertion), workload_jwt.REPLAYED)


def test_a_workload_token_signed_by_another_key_is_refused(enterprise):
    ci, rogue = enterprise.idp["ci"], enterprise.idp["rogue"]
    now = int(time.time())
    forged = rogue.sign(
        {
            "iss": ci.issuer,
            "sub": WORKLOAD_SUB,
            "aud": enterprise.stack.base_url,
            "iat": now,
            "exp": now + 60,
        },
        typ="JWT",
    )
    refused_with(workload_request(enterprise, forged), workload_jwt.BAD_SIGNATURE)


def test_an_id_jag_for_a_client_the_idp_may_not_grant_to_is_refused(enterprise):
    registered = httpx.post(
        f"{enterprise.stack.base_url}/oauth/register",
        json={
            "client_name": "Not Acme's",
            "grant_types": [JWT_BEARER],
            "token_endpoint_auth_method": "client_secret_post",
        },
    ).json()
    response = httpx.post(
        f"{enterprise.stack.base_url}/oauth/token",
        data={
            "grant_type": JWT_BEARER,
            "assertion": enterprise.id_jag(client_id=registered["client_id"]),
            "client_id": registered["client_id"],
            "client_secret": registered["client_secret"],
        },
    )
    refused_with(response, id_jag.CLIENT_NOT_ALLOWED)
