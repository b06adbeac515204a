"""Upstream identity providers: their configuration, discovery, key caching, fetching, linking."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from wallet_mcp.config import ConfigurationError, Settings
from wallet_mcp.config.upstream import (
    IdentityProvider,
    IdentityProviderConfigError,
    SecretRef,
    parse_identity_providers,
)
from wallet_mcp.primitives.fetch import FetchPolicy, JsonResponse, UpstreamUnavailable, get_json
from wallet_mcp.signin.upstream import linking
from wallet_mcp.signin.upstream.discovery import ProviderDirectory, issuer_matches, parse_metadata
from wallet_mcp.signin.upstream.id_tokens import UpstreamIdentity
from wallet_mcp.storage.users import UserRecord

GOOGLE = {
    "id": "google",
    "name": "Google",
    "issuer": "https://accounts.google.com",
    "client_id": "123.apps.googleusercontent.com",
    "client_secret": "ssm:/wallet-mcp/google-client-secret",
}
MICROSOFT = {
    "id": "microsoft",
    "name": "Microsoft",
    "issuer": "https://login.microsoftonline.com/common/v2.0",
    "client_id": "00000000-0000-0000-0000-000000000000",
    "client_secret": "secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:wallet-mcp/ms-AbC",
}


def parse(*entries: dict[str, Any], loopback: bool = False) -> tuple[IdentityProvider, ...]:
    return parse_identity_providers(
        json.dumps(list(entries)), allow_loopback=loopback, secrets_prefix="wallet-mcp/"
    )


# --- configuration ----------------------------------------------------------------------------------


def test_google_and_microsoft_parse_with_defaults():
    google, microsoft = parse(GOOGLE, MICROSOFT)
    assert google.client_secret == SecretRef("ssm", "/wallet-mcp/google-client-secret")
    assert google.scopes == ("openid", "email", "profile")
    assert google.link_by_email and google.create_users
    assert google.discovery_url == "https://accounts.google.com/.well-known/openid-configuration"
    assert microsoft.client_secret is not None and microsoft.client_secret.store == "secretsmanager"
    assert parse_identity_providers("", allow_loopback=False, secrets_prefix="x/") == ()
    assert parse_identity_providers("[]", allow_loopback=False, secrets_prefix="x/") == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"client_secret": "GOCSPX-the-secret-itself"}, "never the secret itself"),
        ({"client_secret": "ssm:/other-app/secret"}, "/wallet-mcp/"),
        ({"client_secret": "secretsmanager:other/secret"}, "wallet-mcp/"),
        ({"client_secret": "secretsmanager:arn:aws:s3:::bucket"}, "ARN"),
        ({"issuer": "http://accounts.google.com"}, "https"),
        ({"issuer": "https://accounts.google.com?x=1"}, "issuer"),
        ({"issuer": "http://127.0.0.1:9000"}, "issuer"),
        ({"id": "Google"}, "id must be"),
        ({"id": "a" * 33}, "id must be"),
        ({"name": ""}, "name"),
        ({"scopes": "email profile"}, "openid"),
        ({"link_by_email": "yes"}, "true or false"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method"),
        ({"allowed_tenants": "common"}, "allowed_tenants"),
        ({"clientsecret": "x"}, "unknown setting 'clientsecret'"),
    ],
)
def test_configuration_mistakes_are_named(change, message):
    with pytest.raises(IdentityProviderConfigError, match=message) as raised:
        parse({**GOOGLE, **change})
    assert "GOCSPX" not in str(raised.value)  # a secret pasted by mistake is never repeated


def test_ids_are_unique_and_the_list_is_bounded():
    with pytest.raises(IdentityProviderConfigError, match="used twice"):
        parse(GOOGLE, GOOGLE)
    with pytest.raises(IdentityProviderConfigError, match="at most"):
        parse(*({**GOOGLE, "id": f"g{i}"} for i in range(9)))
    with pytest.raises(IdentityProviderConfigError, match="JSON"):
        parse_identity_providers("{not json", allow_loopback=False, secrets_prefix="wallet-mcp/")


def test_a_loopback_issuer_needs_the_development_switch():
    local = {**GOOGLE, "issuer": "http://127.0.0.1:9000"}
    assert parse(local, loopback=True)[0].issuer == "http://127.0.0.1:9000"
    with pytest.raises(IdentityProviderConfigError):
        parse({**GOOGLE, "issuer": "http://idp.example.com"}, loopback=True)


def test_settings_refuse_a_bad_configuration_at_cold_start():
    env = {"PUBLIC_BASE_URL": "https://wallet.example.com"}
    settings = Settings.from_env({**env, "UPSTREAM_IDENTITY_PROVIDERS": json.dumps([GOOGLE])})
    assert [p.id for p in settings.identity_providers] == ["google"]
    with pytest.raises(ConfigurationError, match="never the secret itself"):
        Settings.from_env(
            {**env, "UPSTREAM_IDENTITY_PROVIDERS": json.dumps([{**GOOGLE, "client_secret": "x"}])}
        )


# --- discovery ----------------------------------------------------------------------------------------


def discovery(issuer: str, **overrides: Any) -> dict[str, Any]:
    base = "https://login.microsoftonline.com/common/oauth2/v2.0" if "microsoft" in issuer else issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/keys",
        "response_types_supported": ["code", "id_token"],
        "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
        **overrides,
    }


def test_discovery_keeps_only_asymmetric_algorithms_and_defaults_to_basic():
    (google,) = parse(GOOGLE)
    metadata = parse_metadata(google, discovery(google.issuer), allow_loopback=False)
    assert metadata.id_token_algorithms == ("RS256",)
    assert metadata.auth_method(True) == "client_secret_basic"
    assert metadata.auth_method(False) == "none"
    with pytest.raises(UpstreamUnavailable, match="no algorithm"):
        parse_metadata(
            google,
            discovery(google.issuer, id_token_signing_alg_values_supported=["HS256"]),
            allow_loopback=False,
        )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"issuer": "https://evil.example.com"}, "another issuer"),
        ({"token_endpoint": "http://accounts.google.com/token"}, "token_endpoint"),
        ({"jwks_uri": None}, "jwks_uri"),
        ({"response_types_supported": ["id_token"]}, "authorization code"),
        ({"userinfo_endpoint": "http://accounts.google.com/userinfo"}, "userinfo"),
    ],
)
def test_unusable_discovery_documents_are_refused(document, message):
    (google,) = parse(GOOGLE)
    with pytest.raises(UpstreamUnavailable, match=message):
        parse_metadata(google, {**discovery(google.issuer), **document}, allow_loopback=False)


def test_microsoft_s_tenant_template_matches_common_and_organizations_only():
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"
    assert issuer_matches(template, "https://login.microsoftonline.com/common/v2.0")
    assert issuer_matches(template, "https://login.microsoftonline.com/organizations/v2.0")
    assert not issuer_matches(template, "https://login.microsoftonline.com/v2.0")
    assert not issuer_matches(template, "https://login.microsoftonline.com/a/b/v2.0")
    assert not issuer_matches(template, "https://evil.example.com/common/v2.0")
    assert not issuer_matches("https://{tenantid}.example.com/{tenantid}", "https://a.example.com/a")
    (microsoft,) = parse(MICROSOFT)
    assert parse_metadata(microsoft, discovery(template), allow_loopback=False).issuer == template


def test_the_post_method_is_chosen_when_basic_is_not_offered_or_configured():
    (google,) = parse(GOOGLE)
    post_only = parse_metadata(
        google,
        discovery(google.issuer, token_endpoint_auth_methods_supported=["client_secret_post"]),
        allow_loopback=False,
    )
    assert post_only.auth_method(True) == "client_secret_post"
    with pytest.raises(UpstreamUnavailable, match="client_secret_basic"):
        post_only.auth_method(True, "client_secret_basic")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_metadata_and_keys_are_cached_and_keys_refetched_on_demand_at_most_every_30_s():
    (google,) = parse(GOOGLE)
    fetched: list[str] = []

    def fetch(url: str, policy: FetchPolicy) -> JsonResponse:
        fetched.append(url.rsplit("/", 1)[1])
        document = discovery(google.issuer) if "openid-configuration" in url else {"keys": []}
        return JsonResponse(200, document, "")

    clock = Clock()
    directory = ProviderDirectory(FetchPolicy(), clock=clock, fetch=fetch)
    metadata = directory.metadata(google)
    assert directory.metadata(google) is metadata
    directory.keys(google, metadata)
    directory.keys(google, metadata)
    directory.keys(google, metadata, refresh=True)  # just fetched: not again
    clock.now += 31
    directory.keys(google, metadata, refresh=True)
    clock.now += 3600
    directory.metadata(google)
    assert fetched == ["openid-configuration", "keys", "keys", "openid-configuration"]


# --- fetching -------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}

    def do_GET(self) -> None:
        status, headers, body = self.routes[self.path]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_reads_json_and_refuses_redirects_other_types_and_large_bodies(server):
    json_type = {"Content-Type": "application/json; charset=utf-8"}
    _Handler.routes = {
        "/ok": (200, json_type, b'{"a": 1}'),
        "/moved": (302, {"Location": "/ok", **json_type}, b"{}"),
        "/html": (200, {"Content-Type": "text/html"}, b"<html>"),
        "/big": (200, json_type, b'{"a": "' + b"x" * 300_000 + b'"}'),
        "/list": (200, json_type, b"[1]"),
    }
    policy = FetchPolicy(allow_loopback=True)
    assert get_json(f"{server}/ok", policy).document == {"a": 1}
    for path, message in [
        ("/moved", "redirect"),
        ("/html", "without JSON"),
        ("/big", "too large"),
        ("/list", "not an object"),
    ]:
        with pytest.raises(UpstreamUnavailable, match=message):
            get_json(f"{server}{path}", policy)
    with pytest.raises(UpstreamUnavailable, match="not https"):
        get_json(f"{server}/ok", FetchPolicy(allow_loopback=False))
    with pytest.raises(UpstreamUnavailable, match="not https"):
        get_json("http://idp.example.com/ok", policy)


# --- linking --------------------------------------------------------------------------------------------


def user(name: str, disabled: bool = False) -> UserRecord:
    return UserRecord(
        username=name, user_id=f"id-{name}", password_hash=None, created_at=0, disabled=disabled
    )


def identity(email: str | None = "jane@example.com", verified: bool = True) -> UpstreamIdentity:
    return UpstreamIdentity("https://idp.example.com", "sub-1", email, verified, "Jane", None)


@pytest.mark.parametrize(
    ("who", "link_exists", "linked", "same_email", "settings", "expected"),
    [
        # linked before: that user, whatever the email says now
        (
            identity("new@example.com"),
            True,
            user("jane"),
            [user("other")],
            {},
            linking.UseUser(user("jane"), False),
        ),
        (identity(), True, None, [], {}, "linked_user_missing"),
        (identity(), True, user("jane", disabled=True), [], {}, "user_disabled"),
        # first time: a verified address links the one user who has it
        (identity(), False, None, [user("jane")], {}, linking.UseUser(user("jane"), True)),
        (identity(), False, None, [user("a"), user("b")], {}, "email_ambiguous"),
        (identity(), False, None, [user("jane", disabled=True)], {}, "user_disabled"),
        (
            identity(),
            False,
            None,
            [user("jane")],
            {"link_by_email": False},
            linking.CreateUser(store_email=False),
        ),
        # an unverified address links nobody (and is not kept)
        (identity(verified=False), False, None, [user("jane")], {}, linking.CreateUser(store_email=False)),
        (identity(None, False), False, None, [], {}, linking.CreateUser(store_email=False)),
        (identity(), False, None, [], {}, linking.CreateUser(store_email=True)),
        (identity(), False, None, [], {"create_users": False}, "no_local_user"),
    ],
)
def test_linking_rules(who, link_exists, linked, same_email, settings, expected):
    (configured,) = parse({**GOOGLE, **settings})
    decision = linking.decide(
        configured, who, link_exists=link_exists, linked_user=linked, same_email=same_email
    )
    if isinstance(expected, str):
        assert isinstance(decision, linking.Refuse) and decision.reason == expected
    else:
        assert decision == expected
