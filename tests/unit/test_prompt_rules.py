"""The pure rules under the MCP prompts and completions: ranking, argument validation, months, the
budget arithmetic, and finding what an argument names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wallet_mcp.mcp_server.completions import MAX_VALUES, bounded, ranked
from wallet_mcp.mcp_server.prompts import (
    PromptArgumentSpec,
    PromptError,
    PromptRegistry,
    PromptSpec,
    RenderedPrompt,
)
from wallet_mcp.mcp_server.wallet_prompts import (
    budget_text,
    find_account,
    find_transaction,
    month_title,
    previous_month,
)
from wallet_mcp.wallet.model import Account, CategorySpending, Transaction


def test_ranking_puts_prefixes_first_then_word_starts_then_the_rest():
    names = ["Cash Wallet", "Everyday Checking", "Emergency Savings", "Checking (old)", "Savings"]
    assert ranked(names, "ch").values == ["Checking (old)", "Everyday Checking"]
    assert ranked(names, "sav").values == ["Savings", "Emergency Savings"]
    assert ranked(names, "e").values == [
        "Everyday Checking",
        "Emergency Savings",
        "Cash Wallet",
        "Checking (old)",
    ]
    assert ranked(names, "  EVERY ").values == ["Everyday Checking"]


def test_ranking_lists_each_value_once_and_says_how_many():
    completion = ranked(["a", "ab", "a", "b"], "")
    assert completion.values == ["a", "ab", "b"]
    assert completion.total == 3 and completion.has_more is False


def test_at_most_100_values_with_the_total_and_has_more():
    many = [f"v{i:03d}" for i in range(250)]
    completion = ranked(many, "v")
    assert len(completion.values) == MAX_VALUES and completion.values[0] == "v000"
    assert completion.total == 250 and completion.has_more is True
    early = bounded(many[:101], more=True)
    assert len(early.values) == MAX_VALUES and early.total is None and early.has_more is True


def _spec(**overrides):
    def render(_principal, arguments):
        return RenderedPrompt(description="d", text=repr(sorted(arguments.items())))

    fields = {
        "name": "p",
        "title": "P",
        "description": "a prompt",
        "render": render,
        "arguments": (PromptArgumentSpec("needed", "n", required=True), PromptArgumentSpec("optional", "o")),
    }
    return PromptSpec(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({}, "missing required argument: needed"),
        ({"needed": " "}, "missing required argument: needed"),
        ({"needed": "x", "other": "y"}, "unknown argument 'other'"),
        ({"needed": 5}, "must be a string"),
        ({"needed": "x" * 201}, "at most 200"),
    ],
)
def test_prompt_arguments_are_validated(given, message):
    with pytest.raises(PromptError, match=message):
        _spec().validated(given)


def test_blank_optional_arguments_count_as_not_given_and_values_are_trimmed():
    assert _spec().validated({"needed": " x ", "optional": ""}) == {"needed": "x"}


def test_a_prompt_definition_carries_its_arguments():
    definition = _spec().definition()
    assert [(a.name, a.required) for a in definition.arguments] == [("needed", True), ("optional", False)]


def test_prompt_names_are_unique():
    with pytest.raises(ValueError, match="duplicate"):
        PromptRegistry([_spec(), _spec()])


@pytest.mark.parametrize(
    ("month", "previous", "title"),
    [
        ("2026-11", "2026-10", "November 2026"),
        ("2026-01", "2025-12", "January 2026"),
        ("1970-01", "1969-12", "January 1970"),
    ],
)
def test_months(month, previous, title):
    assert previous_month(month) == previous
    assert month_title(month) == title


def _spent(category, cents, count=1, currency="USD"):
    return CategorySpending(category=category, currency=currency, spent=cents, count=count)


def test_the_pace_of_a_month_in_progress():
    text = budget_text(
        month="2026-11",
        limit=100_000,
        currency="USD",
        category=None,
        spending=[
            _spent("groceries", 30_000, 3),
            _spent("dining", 10_000, 2),
            _spent("dining", 999, 1, "EUR"),
        ],
        today=datetime(2026, 11, 10, tzinfo=UTC),
    )
    assert (
        "Budget: $1,000.00 for spending in November 2026, a month in progress (day 10 of 30, 20 days left)."
        in text
    )
    assert "Spent so far: $400.00 in 5 transactions: 40.0% of the budget, $600.00 left." in text
    assert "At this pace the month would end at about $1,200.00." in text  # 400 / 10 days * 30
    assert "• groceries: $300.00" in text and "• dining: $100.00" in text
    assert "not counted against this budget: €9.99." in text


def test_a_past_month_over_budget_in_one_category():
    text = budget_text(
        month="2026-10",
        limit=5_000,
        currency="USD",
        category="dining",
        spending=[_spent("groceries", 30_000, 3), _spent("dining", 7_550, 2)],
        today=datetime(2026, 11, 10, tzinfo=UTC),
    )
    assert "for dining spending in October 2026, a past month." in text
    assert "Spent: $75.50 in 2 transactions: 151.0% of the budget, over budget by $25.50." in text
    assert "At this pace" not in text and "groceries" not in text


def _tx(tx_id, description, amount=-100, days=0):
    return Transaction(
        transaction_id=tx_id,
        account_id="a",
        amount=amount,
        currency="USD",
        category="dining",
        description=description,
        occurred_at=1_790_000_000_000 - days * 86_400_000,
        created_at=0,
    )


def test_a_transaction_is_found_by_id_then_exact_description_then_words_newest_first():
    recent = [
        _tx("t1", "Coffee bar"),
        _tx("t2", "Coffee", days=1),
        _tx("t3", "coffee", days=2),
        _tx("t4", "Tea"),
    ]
    assert find_transaction(recent, "t4") == (recent[3], 1)
    assert find_transaction(recent, "COFFEE") == (recent[1], 2)
    assert find_transaction(recent, "bar") == (recent[0], 1)
    with pytest.raises(PromptError, match="none of your 100 most recent"):
        find_transaction(recent, "t9")


def _account(account_id, name):
    return Account(account_id, name, "checking", "USD", 0, 0, 0)


def test_an_account_is_found_by_id_or_unique_name():
    accounts = [_account("a1", "Main"), _account("a2", "Joint"), _account("a3", "joint")]
    assert find_account(accounts, "MAIN") == accounts[0]
    assert find_account(accounts, "a3") == accounts[2]
    with pytest.raises(PromptError, match=r"2 accounts are named .*\(a2, a3\)"):
        find_account(accounts, "Joint")
    with pytest.raises(PromptError, match='no account is named "Savings"'):
        find_account(accounts, "Savings")
