"""The trusted enterprise IdPs' configuration (https deployed, loopback only with the development
switch), the scope intersection of an ID-JAG, and the IdP key cache (refetched for an unknown
`kid`, at most once a minute)."""

from __future__ import annotations

import json

import pytest

from wallet_mcp.config import ConfigurationError, Settings
from wallet_mcp.config.enterprise import (
    EnterpriseIdpConfigError,
    TrustedIdp,
    parse_trusted_idps,
    parse_workload_issuers,
)
from wallet_mcp.oauth.server.jwt_bearer import REFETCH_INTERVAL, IdpKeys
from wallet_mcp.primitives.id_jag import granted_scope

ACME = {
    "id": "acme",
    "name": "Acme Corp",
    "issuer": "https://acme.okta.com",
    "jwks_uri": "https://acme.okta.com/oauth2/v1/keys",
    "client_ids": ["mcp-demo-client"],
    "subject": "email",
    "scopes": "mcp:tools:list mcp:tools:call",
}


def parse(entry: dict, *, allow_loopback: bool = False) -> tuple[TrustedIdp, ...]:
    return parse_trusted_idps(json.dumps([entry]), allow_loopback=allow_loopback)


def test_a_copy_paste_example_parses():
    (idp,) = parse(ACME)
    assert idp.issuer == "https://acme.okta.com"
    assert idp.client_ids == frozenset({"mcp-demo-client"})
    assert idp.scopes == ("mcp:tools:list", "mcp:tools:call")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issuer": "http://acme.okta.com"}, "issuer must be an https URL"),
        ({"issuer": "http://127.0.0.1:9000/acme"}, "issuer must be an https URL"),
        ({"jwks_uri": "http://127.0.0.1:9000/jwks"}, "jwks_uri must be an https URL"),
        ({"issuer": "https://acme.okta.com#x"}, "issuer must be"),
        ({"subject": "name"}, "subject must be"),
        ({"client_ids": []}, "client_ids must be"),
        ({"scopes": ""}, "scopes must be"),
        ({"id": "Acme!"}, "id must be"),
        ({"extra": 1}, "unknown setting 'extra'"),
    ],
)
def test_a_mistake_is_a_deployment_error(change, message):
    with pytest.raises(EnterpriseIdpConfigError, match=message):
        parse({**ACME, **change})


def test_a_loopback_issuer_only_with_the_development_switch():
    local = {**ACME, "issuer": "http://127.0.0.1:9000/acme", "jwks_uri": "http://127.0.0.1:9000/acme/jwks"}
    (idp,) = parse(local, allow_loopback=True)
    assert idp.issuer == "http://127.0.0.1:9000/acme"
    with pytest.raises(EnterpriseIdpConfigError):
        parse(local)


def test_the_same_issuer_twice_is_refused():
    with pytest.raises(EnterpriseIdpConfigError, match="configured twice"):
        parse_trusted_idps(json.dumps([ACME, {**ACME, "id": "acme2"}]), allow_loopback=False)


def test_settings_read_the_parameter_and_refuse_a_bad_one():
    env = {"PUBLIC_BASE_URL": "https://wallet.example", "TRUSTED_ENTERPRISE_IDPS": json.dumps([ACME])}
    assert [i.id for i in Settings.from_env(env).trusted_idps] == ["acme"]
    with pytest.raises(ConfigurationError):
        Settings.from_env({**env, "TRUSTED_ENTERPRISE_IDPS": "{"})


@pytest.mark.parametrize(
    ("requested", "asserted", "client", "idp", "granted"),
    [
        (("a", "b"), ("a", "b"), ("a", "b"), ("a", "b"), ("a", "b")),
        (("a", "b", "c"), ("a", "b", "c"), ("a", "b", "c"), ("a", "b"), ("a", "b")),  # the IdP's allowance
        (("a", "b"), ("a",), ("a", "b"), ("a", "b"), ("a",)),  # the assertion's
        (("a", "b"), None, ("b",), ("a", "b"), ("b",)),  # the client's
        ((), ("b", "a"), ("a", "b"), ("a", "b"), ("b", "a")),  # nothing asked: what is asserted
        ((), None, ("a",), ("a", "b"), ("a",)),  # nothing asked or asserted: the IdP's, narrowed
        (("c",), ("a",), ("a", "c"), ("a", "c"), ()),
    ],
)
def test_the_scope_is_the_intersection(requested, asserted, client, idp, granted):
    assert granted_scope(requested, asserted, client, idp) == granted


def test_the_key_set_is_cached_and_fetched_again_for_an_unknown_kid():
    (idp,) = parse(ACME)
    now = [1_000_000]
    fetched: list[str] = []
    keys = [{"kty": "EC", "crv": "P-256", "kid": "one", "x": _X, "y": _Y}]

    def fetch(url: str) -> dict:
        fetched.append(url)
        return {"keys": keys}

    cache = IdpKeys(fetch, lambda: now[0])
    cache.keys(idp.jwks_uri, "one")
    cache.keys(idp.jwks_uri, "one")
    assert len(fetched) == 1
    cache.keys(idp.jwks_uri, "two")  # a kid the set lacks, but fetched a moment ago: no second fetch
    assert len(fetched) == 1
    now[0] += REFETCH_INTERVAL
    cache.keys(idp.jwks_uri, "two")  # the IdP rotated: fetched again
    assert fetched == [ACME["jwks_uri"]] * 2


# a P-256 public key (any valid point will do for the cache)
_X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
_Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"


WORKLOAD = {
    "id": "github",
    "name": "GitHub Actions",
    "issuer": "https://token.actions.githubusercontent.com",
    "jwks_uri": "https://token.actions.githubusercontent.com/.well-known/jwks",
    "subjects": {"repo:acme/agent:ref:refs/heads/main": "mcp_agent"},
    "scopes": "mcp:tools:list",
}


def test_a_workload_issuer_parses_and_maps_exact_subjects():
    (issuer,) = parse_workload_issuers(json.dumps([WORKLOAD]), allow_loopback=False)
    assert issuer.subjects == {"repo:acme/agent:ref:refs/heads/main": "mcp_agent"}
    assert issuer.audience is None


@pytest.mark.parametrize(
    "change",
    [{"subjects": {}}, {"subjects": ["repo:x"]}, {"issuer": "http://ci.example"}, {"audience": 5}, {"x": 1}],
)
def test_a_workload_issuer_mistake_is_a_deployment_error(change):
    with pytest.raises(EnterpriseIdpConfigError):
        parse_workload_issuers(json.dumps([{**WORKLOAD, **change}]), allow_loopback=False)


def test_an_issuer_cannot_be_both_an_enterprise_idp_and_a_workload_issuer():
    idps = parse(ACME)
    with pytest.raises(EnterpriseIdpConfigError, match="used twice"):
        parse_workload_issuers(
            json.dumps([{**WORKLOAD, "issuer": ACME["issuer"]}]), allow_loopback=False, enterprise=idps
        )
