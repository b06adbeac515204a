import pytest

from wallet_mcp.primitives.errors import InvalidTarget
from wallet_mcp.primitives.resources import canonical_resource, select_audience

KNOWN = ("https://wallet.example.com/mcp", "https://wallet.example.com/api")


@pytest.mark.parametrize(
    "given",
    [
        "https://wallet.example.com/mcp",
        "HTTPS://Wallet.Example.COM/mcp",
        "https://wallet.example.com:443/mcp",
        "https://wallet.example.com/mcp/",
    ],
)
def test_resource_matches_after_canonicalisation(given):
    assert select_audience(given, KNOWN, KNOWN[0]) == "https://wallet.example.com/mcp"


def test_no_resource_gives_the_default_audience():
    assert select_audience(None, KNOWN, KNOWN[1]) == KNOWN[1]


@pytest.mark.parametrize(
    "given",
    [
        "https://evil.example.com/mcp",
        "https://wallet.example.com/MCP",
        "https://wallet.example.com/mcp#frag",
        "http://wallet.example.com/mcp",
        "/mcp",
        "mcp",
        "http://localhost:abc/mcp",
        "http://[::1/mcp",
    ],
)
def test_unknown_or_malformed_resources_are_invalid_target(given):
    with pytest.raises(InvalidTarget):
        select_audience(given, KNOWN, KNOWN[0])


def test_canonical_form_keeps_non_default_ports_and_paths():
    assert canonical_resource("http://LOCALHOST:3000/mcp/") == "http://localhost:3000/mcp"
