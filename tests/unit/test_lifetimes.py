"""The token-lifetime rules (oauth/rules/lifetimes.py) and the admin form's parsing, table-driven."""

from __future__ import annotations

import pytest

from wallet_mcp.account.client_admin import InvalidClientForm, parse_lifetimes
from wallet_mcp.account.pages import duration
from wallet_mcp.config import Settings
from wallet_mcp.oauth.rules.lifetimes import (
    Lifetimes,
    family_deadline,
    refresh_deadlines,
    refresh_expiry,
    refusal,
)
from wallet_mcp.storage.clients import ClientRecord
from wallet_mcp.storage.refresh_tokens import RefreshToken

BOUNDS = Lifetimes(access_token_ttl=3600, refresh_token_ttl=30 * 86400, refresh_family_ttl=365 * 86400)


def client(**lifetimes: int | None) -> ClientRecord:
    return ClientRecord(
        client_id="c",
        client_name="C",
        token_endpoint_auth_method="none",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=("https://app.example.com/cb",),
        scope=("mcp:tools:list",),
        created_at=0,
        **lifetimes,  # type: ignore[arg-type]
    )


def test_the_bounds_are_the_deployments_settings() -> None:
    settings = Settings(
        issuer="https://wallet.example.com",
        access_token_ttl=900,
        refresh_token_idle_ttl=7200,
        refresh_token_family_ttl=86400,
    )
    assert Lifetimes.bounds(settings) == Lifetimes(900, 7200, 86400)


@pytest.mark.parametrize(
    ("own", "expected"),
    [
        ({}, (3600, 30 * 86400, 365 * 86400)),
        ({"access_token_ttl": 120}, (120, 30 * 86400, 365 * 86400)),
        ({"refresh_token_ttl": 600, "refresh_family_ttl": 86400}, (3600, 600, 86400)),
        ({"access_token_ttl": 7200}, (3600, 30 * 86400, 365 * 86400)),  # above the deployment's
        ({"access_token_ttl": 5, "refresh_token_ttl": 1, "refresh_family_ttl": 0}, (60, 300, 300)),  # floors
    ],
)
def test_a_clients_lifetimes_are_its_own_clamped_into_the_bounds(own: dict, expected: tuple) -> None:
    lifetimes = Lifetimes.of(client(**own), BOUNDS)
    assert (lifetimes.access_token_ttl, lifetimes.refresh_token_ttl, lifetimes.refresh_family_ttl) == expected


def test_a_deployment_below_the_floor_wins_over_the_floor() -> None:
    """A test stack's 4-second access tokens: a client never gets more than the deployment."""
    tiny = Lifetimes(4, 3600, 3600)
    assert Lifetimes.of(client(access_token_ttl=120), tiny).access_token_ttl == 4
    assert refusal("access_token_ttl", 60, tiny) is not None


@pytest.mark.parametrize(
    ("kind", "value", "refused"),
    [
        ("access_token_ttl", 60, False),
        ("access_token_ttl", 59, True),
        ("access_token_ttl", 3600, False),
        ("access_token_ttl", 3601, True),
        ("refresh_token_ttl", 300, False),
        ("refresh_token_ttl", 299, True),
        ("refresh_token_ttl", 30 * 86400 + 1, True),
        ("refresh_family_ttl", 299, True),
        ("refresh_family_ttl", 365 * 86400, False),
        ("refresh_family_ttl", 365 * 86400 + 1, True),
    ],
)
def test_refusal_bounds_each_kind(kind, value: int, refused: bool) -> None:
    assert (refusal(kind, value, BOUNDS) is not None) == refused


def token(**times: int | None) -> RefreshToken:
    base = {
        "token_hash": "h",
        "family_id": "f",
        "client_id": "c",
        "user_id": "u",
        "scope": ("mcp:tools:list",),
        "resource": "https://wallet.example.com/mcp",
        "issued_at": 10_000,
        "expires_at": 10_000 + 30 * 86400,
        "auth_time": 1_000,
        "access_jti": "j",
        "access_expires_at": 13_600,
        "granted_at": 5_000,
        "family_expires_at": 5_000 + 365 * 86400,
    }
    return RefreshToken(**{**base, **times})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("times", "lifetimes", "expected"),
    [
        # as issued
        ({}, BOUNDS, (10_000 + 30 * 86400, 5_000 + 365 * 86400)),
        # shorter values set since: they apply to the token already issued
        ({}, Lifetimes(3600, 600, 900), (10_600, 5_900)),
        # longer values set since: the stored deadlines stay
        ({}, Lifetimes(3600, 60 * 86400, 730 * 86400), (10_000 + 30 * 86400, 5_000 + 365 * 86400)),
        # a family from before the absolute lifetime: from the grant (or the sign-in) by the value now
        ({"family_expires_at": None}, Lifetimes(3600, 600, 900), (10_600, 5_900)),
        ({"family_expires_at": None, "granted_at": None}, Lifetimes(3600, 600, 900), (10_600, 1_900)),
    ],
)
def test_refresh_deadlines(times: dict, lifetimes: Lifetimes, expected: tuple[int, int]) -> None:
    assert refresh_deadlines(token(**times), lifetimes) == expected


def test_a_new_family_and_its_tokens_never_outlive_the_family() -> None:
    lifetimes = Lifetimes(3600, 600, 900)
    ends = family_deadline(1_000, lifetimes)
    assert ends == 1_900
    assert refresh_expiry(1_000, ends, lifetimes) == 1_600
    assert refresh_expiry(1_500, ends, lifetimes) == 1_900  # capped by the family
    assert family_deadline(1_000, lifetimes, stored=1_200) == 1_200


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("", None),
        ("  ", None),
        ("300", 300),
        ("300s", 300),
        ("15m", 900),
        ("15 min", 900),
        ("1H", 3600),
        ("2d", 172800),
    ],
)
def test_the_form_takes_seconds_or_a_unit(raw: str, seconds: int | None) -> None:
    assert parse_lifetimes({"refresh_token_ttl": raw}, BOUNDS)["refresh_token_ttl"] == seconds


@pytest.mark.parametrize(
    "raw", ["abc", "-5", "1.5h", "15 minutes", "9" * 11, "1e3", "0x10", "\uff11\uff12\uff10"]
)
def test_the_form_refuses_anything_else(raw: str) -> None:
    """Full-width digits too: `int()` would take them, the form does not."""
    with pytest.raises(InvalidClientForm, match="give a number of seconds"):
        parse_lifetimes({"access_token_ttl": raw}, BOUNDS)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (60, "1 min"),
        (90, "1 min 30 s"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (86400, "1 day"),
        (2592000, "30 days"),
    ],
)
def test_durations_read_as_a_person_would(seconds: int, shown: str) -> None:
    assert duration(seconds) == shown
