"""The command's configuration: the seed's `.env` read like docker compose reads it, the
environment winning, the config directory, and `--arg key=value` values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.support.local_stack import ROOT
from wallet_mcp.cli.errors import CliError, ConfigurationError
from wallet_mcp.cli.login import DEFAULT_SCOPE
from wallet_mcp.cli.main import main
from wallet_mcp.cli.remote import parse_arguments
from wallet_mcp.cli.settings import CliSettings, config_directory, merged_environment, parse_env_file

SEED_ENV = """\
# the seed's mcp-server/.env
BACKEND_API_URL=http://localhost:3000
MCP_CLIENT_ID=mcp-demo-client
MCP_CLIENT_SECRET=demo-secret-123
AUTHORIZATION_SERVER_URL=http://localhost:3000
MCP_SCOPE=mcp:tools:list mcp:tools:call wallet:accounts:read wallet:transactions:read
"""


def test_the_seeds_env_file_is_read_unchanged():
    settings = CliSettings.from_env(parse_env_file(SEED_ENV))

    assert settings.backend_api_url == "http://localhost:3000"
    assert settings.client_id == "mcp-demo-client"
    assert settings.client_secret == "demo-secret-123"
    assert settings.scope == "mcp:tools:list mcp:tools:call wallet:accounts:read wallet:transactions:read"
    assert "demo-secret-123" not in repr(settings)


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("A=plain", "plain"),
        ("A = spaced out ", "spaced out"),
        ("export A=exported", "exported"),
        ("A=value # a comment", "value"),
        ("A=no#comment", "no#comment"),
        ("A='single # kept'", "single # kept"),
        ('A="double\\nline"  # comment', "double\nline"),
        ('A="quote \\" inside"', 'quote " inside'),
        ("A=", ""),
    ],
)
def test_env_file_values(line, value):
    assert parse_env_file(line) == {"A": value}


@pytest.mark.parametrize("line", ["no equals sign", "1A=x", "A='unterminated", 'A="x" y'])
def test_malformed_env_file_lines_are_refused_with_their_line_number(line):
    with pytest.raises(ConfigurationError, match="line 2"):
        parse_env_file(f"# first\n{line}\n")


def test_the_environment_wins_over_the_file_and_empty_values_count_as_unset(tmp_path: Path):
    env_file = tmp_path / "custom.env"
    env_file.write_text("MCP_SCOPE=from-file\nMCP_CLIENT_ID=file-client\nBACKEND_API_URL=http://file\n")

    merged = merged_environment({"MCP_SCOPE": "from-env", "MCP_CLIENT_ID": ""}, env_file)

    assert merged == {
        "MCP_SCOPE": "from-env",
        "MCP_CLIENT_ID": "file-client",
        "BACKEND_API_URL": "http://file",
    }


def test_an_explicit_env_file_must_exist_and_dot_env_is_optional(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert merged_environment({}, None) == {}
    with pytest.raises(ConfigurationError, match="cannot read"):
        merged_environment({}, tmp_path / "missing.env")
    (tmp_path / ".env").write_text("BACKEND_API_URL=http://localhost:3000/\n")
    assert CliSettings.from_env(merged_environment({}, None)).backend_api_url == "http://localhost:3000"


def test_the_config_directory(tmp_path: Path):
    assert config_directory({"WALLET_MCP_CONFIG_DIR": str(tmp_path / "x")}) == tmp_path / "x"
    assert config_directory({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "wallet-mcp"
    assert config_directory({}) == Path.home() / ".config" / "wallet-mcp"


def test_urls_must_be_https_except_on_loopback_and_the_mcp_url_defaults_to_the_servers():
    with pytest.raises(ConfigurationError, match="not an http"):
        CliSettings.from_env({"BACKEND_API_URL": "localhost:3000"})
    with pytest.raises(ConfigurationError, match="AUTHORIZATION_SERVER_URL must use https"):
        CliSettings.from_env({"AUTHORIZATION_SERVER_URL": "http://wallet.example"})
    assert CliSettings.from_env({"BACKEND_API_URL": "https://a"}).remote_mcp_url() == "https://a/mcp"
    assert CliSettings.from_env({"AUTHORIZATION_SERVER_URL": "http://127.0.0.1:3000"}).remote_mcp_url() == (
        "http://127.0.0.1:3000/mcp"
    )
    explicit = {"AUTHORIZATION_SERVER_URL": "https://b", "MCP_SERVER_URL": "https://c/mcp"}
    assert CliSettings.from_env(explicit).remote_mcp_url() == "https://c/mcp"
    with pytest.raises(ConfigurationError, match="MCP_SERVER_URL"):
        CliSettings.from_env({}).remote_mcp_url()


def test_call_arguments_are_json_when_they_parse_and_text_otherwise():
    assert parse_arguments(
        ["limit=3", "accountId=abc", 'amount="-12.50"', "flag=true", "text=two words"]
    ) == {
        "limit": 3,
        "accountId": "abc",
        "amount": "-12.50",
        "flag": True,
        "text": "two words",
    }
    with pytest.raises(CliError, match="expected key=value"):
        parse_arguments(["novalue"])
    with pytest.raises(CliError, match="twice"):
        parse_arguments(["a=1", "a=2"])


def test_a_bad_env_file_is_a_usage_error(tmp_path: Path, capsys):
    bad = tmp_path / "bad.env"
    bad.write_text("not a variable\n")

    assert main(["serve-stdio", "--env-file", str(bad)]) == 2
    assert f"wallet-mcp: {bad}, line 1: expected KEY=value" in capsys.readouterr().err


def test_the_env_example_is_the_seeds_configuration_with_every_scope_the_cli_asks_for():
    settings = CliSettings.from_env(parse_env_file((ROOT / ".env.example").read_text()))
    seed = CliSettings.from_env(parse_env_file(SEED_ENV))

    assert dataclasses.replace(settings, scope=seed.scope) == seed
    assert settings.scope is not None and seed.scope is not None
    asked = set(settings.scope.split())
    assert set(seed.scope.split()) <= asked
    assert set(DEFAULT_SCOPE.split()) <= asked  # wallet:analytics:read included


def test_the_http_timeout_is_15_seconds_unless_set_and_must_be_a_sane_number():
    assert CliSettings.from_env({}).http_timeout == 15.0
    assert CliSettings.from_env({"WALLET_MCP_HTTP_TIMEOUT": "2.5"}).http_timeout == 2.5
    for bad in ("soon", "0", "-1", "301"):
        with pytest.raises(ConfigurationError, match="WALLET_MCP_HTTP_TIMEOUT"):
            CliSettings.from_env({"WALLET_MCP_HTTP_TIMEOUT": bad})
