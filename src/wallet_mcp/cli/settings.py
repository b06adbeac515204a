"""Configuration of the command: the environment over a `.env` file, read once into a frozen object.

The variable names are the seed's (`BACKEND_API_URL`, `MCP_CLIENT_ID`, `MCP_CLIENT_SECRET`,
`AUTHORIZATION_SERVER_URL`, `MCP_SCOPE`, `BACKEND_AUTH_TOKEN`), so its `.env` works unchanged. The
file is `./.env` (optional) or `--env-file PATH` (required to exist); a variable set in the
environment wins over the file, and an empty value counts as unset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from wallet_mcp.cli.client_assertion import AssertionSigner
from wallet_mcp.cli.errors import ConfigurationError
from wallet_mcp.primitives.redirect_uris import is_loopback_host

DEFAULT_ENV_FILE: Final = ".env"
DEFAULT_LOGIN_TIMEOUT: Final = 300.0
DEFAULT_HTTP_TIMEOUT: Final = 15.0
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse_env_file(text: str, *, origin: str = DEFAULT_ENV_FILE) -> dict[str, str]:
    """`KEY=value` lines as docker compose and python-dotenv read them.

    `#` starts a comment line, or a trailing comment after white space in an unquoted value;
    `export ` in front of a key is allowed; single quotes are literal, double quotes know `\\n`,
    `\\t`, `\\"` and `\\\\`. Unquoted values keep inner spaces (`MCP_SCOPE=a b c`).
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise ConfigurationError(f"{origin}, line {number}: expected KEY=value")
        values[key] = _value(rest.strip(), f"{origin}, line {number}")
    return values


def _value(rest: str, where: str) -> str:
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        out: list[str] = []
        i = 1
        while i < len(rest):
            char = rest[i]
            if quote == '"' and char == "\\" and i + 1 < len(rest):
                out.append(_ESCAPES.get(rest[i + 1], "\\" + rest[i + 1]))
                i += 2
                continue
            if char == quote:
                trailing = rest[i + 1 :].strip()
                if trailing and not trailing.startswith("#"):
                    raise ConfigurationError(f"{where}: unexpected text after the closing quote")
                return "".join(out)
            out.append(char)
            i += 1
        raise ConfigurationError(f"{where}: missing closing quote")
    comment = re.search(r"\s#", rest)
    return (rest[: comment.start()] if comment else rest).rstrip()


def merged_environment(environ: Mapping[str, str], env_file: Path | None) -> dict[str, str]:
    """The file's variables, overridden by the environment's non-empty ones.

    `env_file=None` reads `./.env` when it exists; an explicit path must exist.
    """
    path = env_file if env_file is not None else Path(DEFAULT_ENV_FILE)
    values: dict[str, str] = {}
    if env_file is not None or path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from exc
        values = parse_env_file(text, origin=str(path))
    values.update({k: v for k, v in environ.items() if v != ""})
    return {k: v for k, v in values.items() if v != ""}


def _base_url(name: str, value: str | None) -> str | None:
    """A base URL without its trailing slash (the issuer is compared as a string, RFC 8414 §3.3).

    Plain http only to a loopback host: secrets and tokens cross these URLs (OAuth 2.1 §1.5).
    """
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name}={value!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigurationError(f"{name} must use https (plain http is only for localhost): {value}")
    return value.rstrip("/")


def config_directory(env: Mapping[str, str]) -> Path:
    """`WALLET_MCP_CONFIG_DIR`, else `$XDG_CONFIG_HOME/wallet-mcp`, else `~/.config/wallet-mcp`."""
    if env.get("WALLET_MCP_CONFIG_DIR"):
        return Path(env["WALLET_MCP_CONFIG_DIR"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]).expanduser() if env.get("XDG_CONFIG_HOME") else None
    return (base or Path.home() / ".config") / "wallet-mcp"


@dataclass(frozen=True, slots=True)
class CliSettings:
    backend_api_url: str | None = None
    authorization_server_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_private_key_file: Path | None = None
    """`MCP_CLIENT_PRIVATE_KEY_FILE`: authenticate with `private_key_jwt` (RFC 7523) instead of a secret."""
    client_key_alg: str | None = None
    """`MCP_CLIENT_KEY_ALG`: RS256 (default for RSA) or PS256; ES256 for EC P-256 keys."""
    client_key_id: str | None = None
    """`MCP_CLIENT_KEY_ID`: the `kid` to put in the assertion header (optional)."""
    scope: str | None = None
    backend_auth_token: str | None = field(default=None, repr=False)
    mcp_server_url: str | None = None
    config_dir: Path = field(default_factory=lambda: Path.home() / ".config" / "wallet-mcp")
    login_timeout: float = DEFAULT_LOGIN_TIMEOUT
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    """Seconds one request to the API or the authorization server may take (`WALLET_MCP_HTTP_TIMEOUT`)."""
    aws_endpoint_url: str | None = None
    aws_region: str | None = None
    dpop: bool = False
    """`WALLET_MCP_DPOP` (or `--dpop`): bind the tokens to the command's DPoP key (RFC 9449, `cli.dpop`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CliSettings:
        timeout = env.get("WALLET_MCP_LOGIN_TIMEOUT")
        try:
            login_timeout = float(timeout) if timeout else DEFAULT_LOGIN_TIMEOUT
        except ValueError as exc:
            raise ConfigurationError("WALLET_MCP_LOGIN_TIMEOUT must be a number of seconds") from exc
        http_timeout = _seconds(env, "WALLET_MCP_HTTP_TIMEOUT", DEFAULT_HTTP_TIMEOUT)
        return cls(
            backend_api_url=_base_url("BACKEND_API_URL", env.get("BACKEND_API_URL")),
            authorization_server_url=_base_url(
                "AUTHORIZATION_SERVER_URL", env.get("AUTHORIZATION_SERVER_URL")
            ),
            client_id=env.get("MCP_CLIENT_ID"),
            client_secret=env.get("MCP_CLIENT_SECRET"),
            client_private_key_file=(
                Path(env["MCP_CLIENT_PRIVATE_KEY_FILE"]) if env.get("MCP_CLIENT_PRIVATE_KEY_FILE") else None
            ),
            client_key_alg=env.get("MCP_CLIENT_KEY_ALG"),
            client_key_id=env.get("MCP_CLIENT_KEY_ID"),
            scope=" ".join(env["MCP_SCOPE"].split()) if env.get("MCP_SCOPE") else None,
            backend_auth_token=env.get("BACKEND_AUTH_TOKEN"),
            mcp_server_url=_base_url("MCP_SERVER_URL", env.get("MCP_SERVER_URL")),
            config_dir=config_directory(env),
            login_timeout=login_timeout,
            http_timeout=http_timeout,
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL"),
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            dpop=_flag(env, "WALLET_MCP_DPOP"),
        )

    @property
    def has_client_credentials(self) -> bool:
        return bool(self.client_id and (self.client_secret or self.client_private_key_file))

    def assertion_signer(self) -> AssertionSigner | None:
        """`private_key_jwt` when a key file is configured (never together with a secret)."""
        if self.client_private_key_file is None:
            return None
        if self.client_secret:
            raise ConfigurationError(
                "MCP_CLIENT_SECRET and MCP_CLIENT_PRIVATE_KEY_FILE are both set: a client "
                "authenticates one way (RFC 6749 §2.3); unset one"
            )
        if not self.client_id:
            raise ConfigurationError("MCP_CLIENT_PRIVATE_KEY_FILE is set but MCP_CLIENT_ID is not")
        return AssertionSigner.from_file(
            self.client_id,
            self.client_private_key_file,
            algorithm=self.client_key_alg,
            key_id=self.client_key_id,
        )

    @property
    def server_url(self) -> str | None:
        """The authorization server, else the API's base (one host serves both in this project)."""
        return self.authorization_server_url or self.backend_api_url

    def remote_mcp_url(self) -> str:
        """`MCP_SERVER_URL`, else `<AUTHORIZATION_SERVER_URL or BACKEND_API_URL>/mcp`."""
        if self.mcp_server_url:
            return self.mcp_server_url
        if self.server_url:
            return f"{self.server_url}/mcp"
        raise ConfigurationError(
            "no MCP server: set MCP_SERVER_URL, or AUTHORIZATION_SERVER_URL / BACKEND_API_URL "
            "(the MCP URL is then <that URL>/mcp)"
        )


def _flag(env: Mapping[str, str], name: str) -> bool:
    """A yes/no variable: 1, true, yes, on or 0, false, no, off (any case); unset is no."""
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(f"{name} must be 1 or 0 (true/false, yes/no, on/off)")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds from `name`, at most 300; `default` when unset."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number of seconds") from exc
    if not 0 < value <= 300:
        raise ConfigurationError(f"{name} must be more than 0 and at most 300 seconds")
    return value
