import pytest

from wallet_mcp.primitives.errors import InvalidScope
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES, format_scope, grant_scope, parse_scope


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ()),
        ("", ()),
        ("a", ("a",)),
        ("a  b", ("a", "b")),
        ("b a b", ("b", "a")),
    ],
)
def test_parse_scope_splits_on_spaces_and_drops_duplicates(raw, expected):
    assert parse_scope(raw) == expected


@pytest.mark.parametrize("raw", ['a"b', "a\\b", "a\tb", "é", "a\x7fb"])
def test_parse_scope_refuses_characters_outside_rfc6749(raw):
    with pytest.raises(InvalidScope):
        parse_scope(raw)


def test_parse_scope_refuses_huge_values():
    with pytest.raises(InvalidScope):
        parse_scope("a " * 2000)


def test_omitted_scope_means_everything_the_client_may_have_in_canonical_order():
    allowed = ("wallet:accounts:read", "mcp:tools:call")
    assert grant_scope((), allowed) == ("mcp:tools:call", "wallet:accounts:read")


def test_requested_scope_is_narrowed_to_what_the_client_may_have():
    assert grant_scope(("mcp:tools:call", "wallet:accounts:write"), ("mcp:tools:call",)) == (
        "mcp:tools:call",
    )


def test_unknown_scopes_are_ignored_and_only_unknown_means_the_default():
    assert grant_scope(("mcp:tools:call", "admin:everything"), SUPPORTED_SCOPES) == ("mcp:tools:call",)
    assert grant_scope(("openid", "email"), SUPPORTED_SCOPES, default=("mcp:tools:list",)) == (
        "mcp:tools:list",
    )


def test_nothing_grantable_is_an_error():
    with pytest.raises(InvalidScope):
        grant_scope(("wallet:accounts:write",), ("mcp:tools:call",))


def test_format_scope_is_canonical():
    assert format_scope(["wallet:accounts:read", "mcp:tools:list", "mcp:tools:list"]) == (
        "mcp:tools:list wallet:accounts:read"
    )
