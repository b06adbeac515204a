"""The two rules every path that honours a grant asks: is the grant still alive
(`oauth.rules.grants.refusal`), and may remembered consent stand in for the consent page
(`oauth.rules.consent.may_skip_consent`). Table tests: each row one reason, and its edges."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wallet_mcp.oauth.rules import grants
from wallet_mcp.oauth.rules.consent import approved_before, may_skip_consent
from wallet_mcp.oauth.rules.grants import NOT_READ, Grant, refusal
from wallet_mcp.storage.clients import ClientRecord
from wallet_mcp.storage.consents import Consent, Limits
from wallet_mcp.storage.revocations import Revoked, ScopeCutoff, UserCutoff
from wallet_mcp.tokens.access_tokens import AccessToken

READ = frozenset({"wallet:accounts:read"})
PAY = frozenset({"wallet:accounts:read", "wallet:transactions:write"})
RESOURCE = "http://localhost:3000/mcp"


def grant(
    *, issued_at: int = 1_000, scopes: frozenset[str] = READ, user: str | None = "u1", jti: str = "t1"
) -> Grant:
    return Grant(client_id="app", user_id=user, scopes=scopes, issued_at=issued_at, jti=jti)


def client(**changes: object) -> ClientRecord:
    record = ClientRecord(
        client_id="app",
        client_name="App",
        token_endpoint_auth_method="client_secret_post",
        client_secret_hash="hash",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=("https://app.example/cb",),
        scope=tuple(sorted(PAY)),
        created_at=0,
    )
    return replace(record, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("revoked", "candidate", "reason"),
    [
        (Revoked(), grant(), None),
        (Revoked(jtis=frozenset({"t1"})), grant(), grants.REVOKED),
        (Revoked(jtis=frozenset({"t2"})), grant(), None),
        (Revoked(clients={"app": 1_000}), grant(issued_at=999), grants.CLIENT_ENDED),
        (Revoked(clients={"app": 1_000}), grant(issued_at=1_000), grants.CLIENT_ENDED),  # its own second
        (Revoked(clients={"app": 1_000}), grant(issued_at=1_001), None),  # issued after it
        (Revoked(clients={"other": 5_000}), grant(), None),  # another client's cut-off
        # a disabled person: refused whenever the grant was issued, while disabled
        (Revoked(users={"u1": UserCutoff(500, disabled=True)}), grant(issued_at=9_000), grants.USER_DISABLED),
        # enabled again: what was issued before stays dead, what is issued after lives
        (Revoked(users={"u1": UserCutoff(1_000)}), grant(issued_at=1_000), grants.USER_CUT_OFF),
        (Revoked(users={"u1": UserCutoff(1_000)}), grant(issued_at=1_001), None),
        (Revoked(users={"u2": UserCutoff(9_000, disabled=True)}), grant(), None),
        # a client acting for nobody has no person to disable
        (Revoked(users={"u1": UserCutoff(9_000, disabled=True)}), grant(user=None), None),
        (Revoked(grants={("u1", "app"): 1_000}), grant(issued_at=1_000), grants.WITHDRAWN),
        (Revoked(grants={("u1", "app"): 1_000}), grant(issued_at=1_001), None),
        (Revoked(grants={("u2", "app"): 9_000}), grant(), None),  # another person's withdrawal
        (Revoked(grants={("u1", "other"): 9_000}), grant(), None),  # another client's grant
        (Revoked(scopes={"app": ScopeCutoff(1_000, READ)}), grant(scopes=PAY), grants.SCOPE_NARROWED),
        (Revoked(scopes={"app": ScopeCutoff(1_000, READ)}), grant(scopes=READ), None),  # within it
        (Revoked(scopes={"app": ScopeCutoff(1_000, READ)}), grant(scopes=PAY, issued_at=1_001), None),
    ],
)
def test_a_grant_is_refused_for_exactly_one_reason(
    revoked: Revoked, candidate: Grant, reason: str | None
) -> None:
    assert refusal(candidate, revoked) == reason


@pytest.mark.parametrize(
    ("record", "candidate", "reason"),
    [
        (client(), grant(), None),
        (None, grant(), grants.CLIENT_ENDED),  # unknown, expired, disabled or deleted
        (client(grants_valid_after=1_000), grant(issued_at=1_000), grants.CLIENT_ENDED),
        (client(grants_valid_after=1_000), grant(issued_at=1_001), None),  # enabled again, new grant
        (client(scope=tuple(READ)), grant(scopes=PAY), grants.SCOPE_NARROWED),
        (client(scope=tuple(READ)), grant(scopes=READ), None),
    ],
)
def test_the_client_record_is_asked_when_the_caller_read_it(
    record: ClientRecord | None, candidate: Grant, reason: str | None
) -> None:
    assert refusal(candidate, Revoked(), record) == reason


def test_a_resource_server_that_did_not_read_the_client_relies_on_the_cut_offs() -> None:
    assert refusal(grant(scopes=PAY), Revoked(), NOT_READ) is None
    assert refusal(grant(scopes=PAY), Revoked(), client(scope=tuple(READ))) == grants.SCOPE_NARROWED


def test_a_token_grant_is_its_client_owner_scopes_issue_time_and_id() -> None:
    token = AccessToken(
        subject="u1",
        client_id="app",
        scopes=READ,
        audience=RESOURCE,
        issued_at=1_000,
        expires_at=4_600,
        jti="t9",
    )
    assert Grant.of(token, "owner") == Grant("app", "owner", READ, 1_000, "t9")


def consent(scopes: frozenset[str] = READ, *, resource: str = RESOURCE, updated_at: int = 2_000) -> Consent:
    return Consent(
        user_id="u1",
        client_id="app",
        scope=tuple(sorted(scopes)),
        granted_at=updated_at,
        updated_at=updated_at,
        resources={resource: tuple(sorted(scopes))},
    )


PUBLIC_LOOPBACK = client(
    token_endpoint_auth_method="none",
    client_secret_hash=None,
    application_type="native",
    redirect_uris=("http://127.0.0.1/cb",),
)


@pytest.mark.parametrize(
    ("record", "redirect_uri", "remembered", "scope", "resource", "silent"),
    [
        (client(), "https://app.example/cb", consent(), READ, RESOURCE, True),
        (client(), "https://app.example/cb", None, READ, RESOURCE, False),  # nothing remembered
        # RFC 8252 §8.6: anyone can present a public client's id, on any loopback port
        (PUBLIC_LOOPBACK, "http://127.0.0.1:4711/cb", consent(), READ, RESOURCE, False),
        (PUBLIC_LOOPBACK, "http://127.0.0.1/cb", consent(), READ, RESOURCE, False),
        (client(), "https://app.example/other", consent(), READ, RESOURCE, False),  # not registered exactly
        (client(), "https://app.example/cb", consent(), PAY, RESOURCE, False),  # more than was seen
        (client(), "https://app.example/cb", consent(PAY), PAY, RESOURCE, False),  # moves money: asked again
        (
            client(),
            "https://app.example/cb",
            consent(),
            READ,
            "http://localhost:3000/api",
            False,
        ),  # other resource
        # an administrator cut the client off after the approval: it no longer counts
        (client(grants_valid_after=2_000), "https://app.example/cb", consent(), READ, RESOURCE, False),
        (client(grants_valid_after=1_999), "https://app.example/cb", consent(), READ, RESOURCE, True),
    ],
)
def test_remembered_consent_is_silent_only_for_a_confidential_client_and_what_was_seen(
    record: ClientRecord,
    redirect_uri: str,
    remembered: Consent | None,
    scope: frozenset[str],
    resource: str,
    silent: bool,
) -> None:
    assert may_skip_consent(record, redirect_uri, remembered, scope, resource) is silent


def test_the_consent_page_says_when_all_of_it_was_approved_before() -> None:
    assert approved_before(consent(PAY), PAY, RESOURCE)
    assert not approved_before(consent(READ), PAY, RESOURCE)
    assert not approved_before(consent(PAY), PAY, "http://localhost:3000/api")
    assert not approved_before(None, READ, RESOURCE)


@pytest.mark.parametrize(
    ("cutoff", "candidate", "reason"),
    [
        (UserCutoff(1_000, disabled=True), replace(grant(issued_at=5_000), idp="acme"), grants.IDP_CUT_OFF),
        (UserCutoff(1_000), replace(grant(issued_at=1_000), idp="acme"), grants.IDP_CUT_OFF),
        (UserCutoff(1_000), replace(grant(issued_at=1_001), idp="acme"), None),  # restored: new grants
        (UserCutoff(1_000, disabled=True), replace(grant(), idp="beta"), None),  # another IdP's
        (UserCutoff(1_000, disabled=True), grant(), None),  # not granted by an IdP at all
    ],
)
def test_an_enterprise_idp_cut_off_ends_the_grants_it_made(cutoff, candidate, reason):
    assert refusal(candidate, Revoked(idps={"acme": cutoff})) == reason


@pytest.mark.parametrize(
    ("expires_at", "now", "reason"),
    [
        (None, 9_999_999, None),  # until revoked
        (2_000, 1_999, None),
        (2_000, 2_000, grants.EXPIRED),  # its own second: over
        (2_000, 2_001, grants.EXPIRED),
    ],
)
def test_a_grant_ends_when_the_duration_the_person_chose_is_over(
    expires_at: int | None, now: int, reason: str | None
) -> None:
    assert grants.lapsed(expires_at, now) == reason
    assert refusal(grant(), Revoked(), expires_at=expires_at, now=now) == reason


def test_remembered_consent_never_stands_in_once_the_grant_has_lapsed() -> None:
    lapsing = replace(consent(), limits=Limits(expires_at=2_000))
    assert may_skip_consent(client(), "https://app.example/cb", lapsing, READ, RESOURCE, now=1_999)
    assert not may_skip_consent(client(), "https://app.example/cb", lapsing, READ, RESOURCE, now=2_000)
