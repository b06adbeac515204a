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


def _settings(issuer: str):
    from wallet_mcp.config import Settings

    return Settings(issuer=issuer)


def test_locally_the_resources_on_the_other_loopback_names_are_the_resources():
    local = _settings("http://localhost:3000")
    aliases = local.resource_aliases
    assert aliases["http://127.0.0.1:3000/mcp"] == "http://localhost:3000/mcp"
    assert aliases["http://[::1]:3000/api"] == "http://localhost:3000/api"
    chosen = select_audience("http://127.0.0.1:3000/mcp/", local.known_resources, local.api_resource, aliases)
    assert chosen == "http://localhost:3000/mcp"
    assert local.as_addressed(local.mcp_resource, "127.0.0.1:3000") == "http://127.0.0.1:3000/mcp"
    assert local.as_addressed(local.mcp_resource, "localhost:3000") == local.mcp_resource
    assert local.as_addressed(local.mcp_resource, "evil.example.com") == local.mcp_resource  # not served


def test_a_deployed_server_has_one_name_for_each_resource():
    deployed = _settings("https://wallet.example.com")
    assert deployed.resource_aliases == {}
    with pytest.raises(InvalidTarget):
        select_audience("http://127.0.0.1/mcp", deployed.known_resources, deployed.mcp_resource, {})
    assert deployed.as_addressed(deployed.mcp_resource, "127.0.0.1") == deployed.mcp_resource
