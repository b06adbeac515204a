"""The months a typed prefix can name (`wallet.store.month_bounds`), as the first and last
millisecond a transaction key can hold: what a limited app's month suggestions search."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wallet_mcp.wallet.store import month_bounds


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("prefix", "first", "last"),
    [
        ("2026", "2026-01-01", "2027-01-01"),
        ("2026-", "2026-01-01", "2027-01-01"),
        ("2026-0", "2026-01-01", "2026-10-01"),
        ("2026-1", "2026-10-01", "2027-01-01"),
        ("2026-11", "2026-11-01", "2026-12-01"),
        ("2026-12", "2026-12-01", "2027-01-01"),
        ("202", "2020-01-01", "2030-01-01"),
        ("1", "1970-01-01", "2000-01-01"),
    ],
)
def test_a_prefix_names_a_run_of_months(prefix, first, last):
    assert month_bounds(prefix) == (ms(first), ms(last) - 1)


def test_no_prefix_is_every_month_a_key_can_hold():
    assert month_bounds("") == (0, 10**13 - 1)
    assert month_bounds("2") == (ms("2000-01-01"), 10**13 - 1)


@pytest.mark.parametrize(
    "prefix",
    ["2026-2", "2026-13", "2026-00", "202-", "99", "1969", "2026-1-", "x", "\uff12\uff10\uff12\uff16"],
)
def test_what_no_month_starts_with_names_none(prefix):
    assert month_bounds(prefix) is None
