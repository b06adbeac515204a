"""Configuration, read once from the environment into a frozen object and passed in.

Every variable is set by `infra/template.yaml` on the deployed functions and by the local
gateway from the same template locally. Nothing below reads `os.environ` after start-up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:  # parsed (and their modules loaded) only where the environment names some
    from wallet_mcp.config.enterprise import TrustedIdp, TrustedWorkloadIssuer
    from wallet_mcp.config.upstream import IdentityProvider


class ConfigurationError(RuntimeError):
    """A setting this function needs is missing or malformed (a deployment mistake)."""


LOOPBACK_HOSTS: Final = ("localhost", "127.0.0.1", "[::1]")
"""The names of this machine a local issuer is reached by."""


@dataclass(frozen=True, slots=True)
class Tables:
    clients: str | None = None
    auth_codes: str | None = None
    refresh_tokens: str | None = None
    users: str | None = None
    sessions: str | None = None
    consents: str | None = None
    wallet: str | None = None
    rate_limits: str | None = None
    auth_requests: str | None = None
    revoked_tokens: str | None = None
    personal_tokens: str | None = None
    audit: str | None = None
    connection_log: str | None = None

    def require(self, name: str) -> str:
        value: str | None = getattr(self, name)
        if not value:
            raise ConfigurationError(f"table {name!r} is not configured for this function")
        return value


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """Per-window limits (docs/operations.md § Rate limits); 0 in a variable keeps the default."""

    token_per_client_per_minute: int = 120
    token_failures_per_address_per_minute: int = 30
    registrations_per_address_per_hour: int = 300
    """Sized for hosts that register each user's connection from a few shared egress addresses."""
    registrations_per_hour: int = 5000
    introspections_per_client_per_minute: int = 600
    login_failures_per_user: int = 5
    """Consecutive failed sign-ins of one user from one address before that address is locked out
    for that user, for longer after each further one (other addresses are not)."""
    login_failures_per_user_per_hour: int = 50
    """Failed sign-ins of one user from every address together, per hour: bounds distributed guessing."""
    login_failures_per_address_per_hour: int = 100
    metadata_fetches_per_host_per_minute: int = 20
    """Client ID Metadata Document fetches from one host: whoever starts an authorization request
    picks the URL, so no host can be hammered (or this server held) through it."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RateLimitSettings:
        defaults = cls()
        return cls(
            **{
                name: _int(env, f"RATE_LIMIT_{name.upper()}", getattr(defaults, name))
                for name in cls.__dataclass_fields__
            }
        )


@dataclass(frozen=True, slots=True)
class Settings:
    issuer: str
    """PUBLIC_BASE_URL: the issuer identifier and the base of every public URL, no trailing slash."""
    access_token_ttl: int = 3600
    refresh_token_idle_ttl: int = 30 * 24 * 3600
    refresh_token_family_ttl: int = 365 * 24 * 3600
    """The absolute lifetime of a refresh-token family, from the grant (`oauth.rules.lifetimes`)."""
    auth_code_ttl: int = 60
    refresh_reuse_grace: int = 30
    unused_client_ttl: int = 7 * 24 * 3600
    allow_loopback_client_metadata: bool = False
    require_pushed_authorization_requests: bool = False
    """RFC 9126 §5: every authorization request must be pushed first (`/oauth/par`)."""
    dpop_required: bool = False
    """RFC 9449: every access token is DPoP-bound (a token request without a proof is refused, and
    the resources refuse unbound access tokens): DPOP_REQUIRED."""
    dpop_strict_replay: bool = False
    """A DPoP proof's `jti` is single use across every instance (one conditional write per proof)
    rather than per instance within the proof window: DPOP_STRICT_REPLAY."""
    fapi2_profile: bool = False
    """The FAPI 2.0 Security Profile (docs/security.md): PAR, DPoP and, for confidential clients,
    `private_key_jwt` required: FAPI2_PROFILE. It implies the two settings above it."""
    revocation_poll_seconds: int = 5
    extra_allowed_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the MCP endpoint and the wallet API besides the issuer's own."""
    signing_key_id: str | None = None
    verification_key_ids: tuple[str, ...] = ()
    confirmation_threshold_max: int = 0
    """US cents: the highest "confirm debits over" a person may set on /account (0: every debit
    needs the person's confirmation): CONFIRMATION_THRESHOLD_MAX_USD, a decimal amount."""
    confirm_api_debits: bool = False
    """The wallet API's debits wait for the person's confirmation as the MCP tools' do
    (CONFIRM_API_DEBITS; api/confirmations.py)."""
    require_create_account_confirmation: bool = False
    """An administrator's rule: createAccount needs the person's confirmation too
    (REQUIRE_CREATE_ACCOUNT_CONFIRMATION)."""
    confirmation_step_up_over: int = 50_000
    """US cents: approving a payment over this (any amount in another currency) asks for the
    password again: CONFIRMATION_STEP_UP_OVER_USD."""
    confirmation_key_id: str | None = None
    """The KMS HMAC key the MCP function derives its confirmation secrets from (the sealing key
    of `requestState`, the op ids of pending operations): CONFIRMATION_KEY_ID."""
    tables: Tables = Tables()
    rate_limits: RateLimitSettings = RateLimitSettings()
    identity_providers: tuple[IdentityProvider, ...] = ()
    """Upstream OpenID providers offered on the login page (docs/identity-providers.md)."""
    allow_loopback_identity_providers: bool = False
    """Development only: upstream providers on loopback, over plain http."""
    upstream_secrets_prefix: str = "wallet-mcp/"
    """Upstream client secrets must be named under this prefix (the IAM policy grants only it)."""
    connection_log_retention: int = 24 * 3600
    """How long the connection log keeps each step of a client's connection attempts (docs/storage.md)."""
    bootstrap_admin_token_sha256: str = ""
    """SHA-256 (hex) of the one-time token that creates the first administrator at /admin/bootstrap
    (`account/bootstrap.py`); empty: no bootstrap."""
    edge_origin_secret: str = field(default="", repr=False)
    """Behind the optional CloudFront distribution: the secret its origin requests carry
    (`web/edge.py`); empty when the API is reached directly."""
    trusted_idps: tuple[TrustedIdp, ...] = ()
    """Enterprise IdPs whose ID-JAGs the token endpoint accepts (docs/enterprise.md); on loopback
    only with `allow_loopback_identity_providers`."""
    trusted_workload_issuers: tuple[TrustedWorkloadIssuer, ...] = ()
    """Issuers of workload identity tokens that authenticate machine clients with the jwt-bearer
    grant (docs/enterprise.md § Workload identity)."""
    tool_audit_retention: int = 90 * 24 * 3600
    """Seconds each MCP tool call's audit record is kept (`ToolAuditRetentionSeconds`)."""

    # --- derived URLs (RFC 8414 / RFC 9728 / MCP authorization) ---------------------------
    @property
    def mcp_resource(self) -> str:
        """The MCP server's canonical URI: the `resource` of its metadata and the `aud` of its tokens."""
        return f"{self.issuer}/mcp"

    @property
    def api_resource(self) -> str:
        """The wallet Backend API's resource identifier."""
        return f"{self.issuer}/api"

    @property
    def known_resources(self) -> tuple[str, ...]:
        return (self.mcp_resource, self.api_resource)

    @property
    def mcp_resource_metadata_url(self) -> str:
        """RFC 9728 §3.1: the well-known URI with the resource's path appended."""
        return f"{self.issuer}/.well-known/oauth-protected-resource/mcp"

    @property
    def api_resource_metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/oauth-protected-resource/api"

    @property
    def served_hosts(self) -> tuple[str, ...]:
        """The `Host` values the MCP endpoint answers (MCP transports §Security: DNS-rebinding
        protection): the issuer's; locally also its port on every loopback name, so a client
        configured with `127.0.0.1` or `[::1]` reaches `make dev` too."""
        netloc = urlsplit(self.issuer).netloc
        if not self.is_local:
            return (netloc,)
        port = urlsplit(self.issuer).port
        suffix = f":{port}" if port else ""
        return tuple(dict.fromkeys((netloc, *(f"{host}{suffix}" for host in LOOPBACK_HOSTS))))

    @property
    def resource_aliases(self) -> dict[str, str]:
        """Locally, each resource's URL on the other loopback names (`http://127.0.0.1:3000/mcp`)
        mapped to the resource: a client given that URL discovers it as its resource (RFC 9728
        §3.3) and asks for a token for it, which is a token for the resource itself. None when
        deployed: one host, one name."""
        if not self.is_local:
            return {}
        own = urlsplit(self.issuer).netloc
        return {
            f"http://{host}{urlsplit(resource).path}": resource
            for host in self.served_hosts
            if host != own
            for resource in self.known_resources
        }

    def as_addressed(self, url: str, host: str | None) -> str:
        """`url` (one of the issuer's) on the loopback name a local request came in on, for the
        documents and challenges that must name the resource as the client knows it; `url` itself
        for the issuer's own host, any other host, and when deployed."""
        parts = urlsplit(url)
        if host is None or not self.is_local or host == parts.netloc or host not in self.served_hosts:
            return url
        return parts._replace(netloc=host).geturl()

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """Origins allowed to call the MCP endpoint from a browser (and CORS): the issuer's, the
        configured extras, and locally the issuer's port on every loopback name."""
        loopback = tuple(f"http://{host}" for host in self.served_hosts) if self.is_local else ()
        return tuple(dict.fromkeys((self.issuer, *loopback, *self.extra_allowed_origins)))

    def require_confirmation_key(self) -> str:
        if not self.confirmation_key_id:
            raise ConfigurationError("CONFIRMATION_KEY_ID is not configured for this function")
        return self.confirmation_key_id

    def require_signing_key(self) -> str:
        if not self.signing_key_id:
            raise ConfigurationError("SIGNING_KEY_ID is not configured for this function")
        return self.signing_key_id

    @property
    def is_local(self) -> bool:
        """True when the issuer is plain-http loopback (local development only)."""
        return self.issuer.startswith(("http://localhost", "http://127.0.0.1"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        issuer = env.get("PUBLIC_BASE_URL", "").strip()
        if not issuer:
            raise ConfigurationError("PUBLIC_BASE_URL is not set")
        if issuer.endswith("/"):
            raise ConfigurationError("PUBLIC_BASE_URL must not end with '/' (it is the issuer identifier)")
        if not (issuer.startswith("https://") or issuer.startswith(("http://localhost", "http://127.0.0.1"))):
            raise ConfigurationError("PUBLIC_BASE_URL must be https (plain http only on localhost)")
        signing = env.get("SIGNING_KEY_ID") or None
        verification = tuple(k.strip() for k in env.get("VERIFICATION_KEY_IDS", "").split(",") if k.strip())
        if signing and signing not in verification:
            verification = (signing, *verification)
        allow_loopback_idps = env.get("ALLOW_LOOPBACK_IDENTITY_PROVIDERS", "false") == "true"
        secrets_prefix = env.get("UPSTREAM_SECRETS_PREFIX") or "wallet-mcp/"
        identity_providers = _identity_providers(env, allow_loopback_idps, secrets_prefix)
        trusted_idps, workload_issuers = _enterprise(env, allow_loopback_idps)
        fapi2 = env.get("FAPI2_PROFILE", "false") == "true"
        return cls(
            issuer=issuer,
            trusted_idps=trusted_idps,
            trusted_workload_issuers=workload_issuers,
            fapi2_profile=fapi2,
            dpop_required=fapi2 or env.get("DPOP_REQUIRED", "false") == "true",
            dpop_strict_replay=env.get("DPOP_STRICT_REPLAY", "false") == "true",
            identity_providers=identity_providers,
            allow_loopback_identity_providers=allow_loopback_idps,
            upstream_secrets_prefix=secrets_prefix,
            access_token_ttl=_int(env, "ACCESS_TOKEN_TTL_SECONDS", 3600),
            refresh_token_idle_ttl=_int(env, "REFRESH_TOKEN_IDLE_TTL_SECONDS", 30 * 24 * 3600),
            refresh_token_family_ttl=_int(env, "REFRESH_TOKEN_FAMILY_TTL_SECONDS", 365 * 24 * 3600),
            auth_code_ttl=_int(env, "AUTHORIZATION_CODE_TTL_SECONDS", 60),
            refresh_reuse_grace=_int(env, "REFRESH_TOKEN_REUSE_GRACE_SECONDS", 30, minimum=0),
            unused_client_ttl=_int(env, "UNUSED_CLIENT_TTL_SECONDS", 7 * 24 * 3600),
            allow_loopback_client_metadata=env.get("ALLOW_LOOPBACK_CLIENT_METADATA", "false") == "true",
            require_pushed_authorization_requests=(
                fapi2 or env.get("REQUIRE_PUSHED_AUTHORIZATION_REQUESTS", "false") == "true"
            ),
            revocation_poll_seconds=_int(env, "REVOCATION_POLL_SECONDS", 5),
            connection_log_retention=_int(env, "CONNECTION_LOG_RETENTION_SECONDS", 24 * 3600),
            edge_origin_secret=env.get("EDGE_ORIGIN_SECRET", ""),
            bootstrap_admin_token_sha256=env.get("BOOTSTRAP_ADMIN_TOKEN_SHA256", ""),
            tool_audit_retention=_int(env, "TOOL_AUDIT_RETENTION_SECONDS", 90 * 24 * 3600),
            extra_allowed_origins=tuple(
                o.strip() for o in env.get("ALLOWED_ORIGINS", "").split(",") if o.strip()
            ),
            signing_key_id=signing,
            verification_key_ids=verification,
            confirmation_key_id=env.get("CONFIRMATION_KEY_ID") or None,
            confirmation_threshold_max=_cents(env, "CONFIRMATION_THRESHOLD_MAX_USD"),
            require_create_account_confirmation=env.get("REQUIRE_CREATE_ACCOUNT_CONFIRMATION", "false")
            == "true",
            confirm_api_debits=env.get("CONFIRM_API_DEBITS", "false") == "true",
            confirmation_step_up_over=_cents(env, "CONFIRMATION_STEP_UP_OVER_USD", "500"),
            rate_limits=RateLimitSettings.from_env(env),
            tables=Tables(
                clients=env.get("CLIENTS_TABLE") or None,
                auth_codes=env.get("AUTH_CODES_TABLE") or None,
                refresh_tokens=env.get("REFRESH_TOKENS_TABLE") or None,
                users=env.get("USERS_TABLE") or None,
                sessions=env.get("SESSIONS_TABLE") or None,
                consents=env.get("CONSENTS_TABLE") or None,
                wallet=env.get("WALLET_TABLE") or None,
                rate_limits=env.get("RATE_LIMITS_TABLE") or None,
                auth_requests=env.get("AUTH_REQUESTS_TABLE") or None,
                revoked_tokens=env.get("REVOKED_TOKENS_TABLE") or None,
                personal_tokens=env.get("PERSONAL_TOKENS_TABLE") or None,
                audit=env.get("AUDIT_TABLE") or None,
                connection_log=env.get("CONNECTION_LOG_TABLE") or None,
            ),
        )


def _identity_providers(
    env: Mapping[str, str], allow_loopback: bool, secrets_prefix: str
) -> tuple[IdentityProvider, ...]:
    """`UPSTREAM_IDENTITY_PROVIDERS`; its parser is loaded only when there is something to parse
    (most functions and deployments have none: their cold starts skip the module)."""
    raw = env.get("UPSTREAM_IDENTITY_PROVIDERS", "")
    if not raw.strip():
        return ()
    from wallet_mcp.config.upstream import IdentityProviderConfigError, parse_identity_providers

    try:
        return parse_identity_providers(raw, allow_loopback=allow_loopback, secrets_prefix=secrets_prefix)
    except IdentityProviderConfigError as exc:
        raise ConfigurationError(str(exc)) from exc


def _enterprise(
    env: Mapping[str, str], allow_loopback: bool
) -> tuple[tuple[TrustedIdp, ...], tuple[TrustedWorkloadIssuer, ...]]:
    """`TRUSTED_ENTERPRISE_IDPS` and `TRUSTED_WORKLOAD_ISSUERS`, parsed as `_identity_providers`."""
    idps, workloads = env.get("TRUSTED_ENTERPRISE_IDPS", ""), env.get("TRUSTED_WORKLOAD_ISSUERS", "")
    if not idps.strip() and not workloads.strip():
        return (), ()
    from wallet_mcp.config.enterprise import (
        EnterpriseIdpConfigError,
        parse_trusted_idps,
        parse_workload_issuers,
    )

    try:
        trusted_idps = parse_trusted_idps(idps, allow_loopback=allow_loopback)
        return trusted_idps, parse_workload_issuers(
            workloads, allow_loopback=allow_loopback, enterprise=trusted_idps
        )
    except EnterpriseIdpConfigError as exc:
        raise ConfigurationError(str(exc)) from exc


def _cents(env: Mapping[str, str], name: str, default: str = "0") -> int:
    """A decimal amount of US dollars (at most two decimals) as cents; absent or empty: `default`."""
    raw = (env.get(name) or default).strip()
    if not re.fullmatch(r"[0-9]{1,7}(\.[0-9]{1,2})?", raw):
        raise ConfigurationError(f"{name} must be an amount like 50 or 49.99, got {raw!r}")
    whole, _, cents = raw.partition(".")
    return int(whole) * 100 + int(cents.ljust(2, "0") or 0)


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}")
    return value


@cache
def settings() -> Settings:
    """The process's settings, read on first use (once per cold start)."""
    return Settings.from_env()
