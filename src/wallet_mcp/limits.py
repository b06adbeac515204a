"""The rate-limit rules of the token endpoint, registration, introspection and sign-in (RFC 6749
§10.10 and RFC 9700 §4.13 ask for protection against guessing credentials; OAuth 2.1 §7.1 against
brute force of codes and tokens). A layer of its own, below both the endpoints (`oauth.server`) and
sign-in (`signin`), which count against the same rules."""

from __future__ import annotations

from dataclasses import dataclass

from wallet_mcp.config import RateLimitSettings
from wallet_mcp.storage.rate_limits import Rule

LOCKOUT_BASE_SECONDS = 30
LOCKOUT_MAX_SECONDS = 900


@dataclass(frozen=True, slots=True)
class Rules:
    token_client: Rule
    par_client: Rule
    """Pushed authorization requests of one client (the token endpoint's per-client limit, counted
    apart: a push comes before a code exchange, which counts on its own)."""
    token_address_failures: Rule
    register_address: Rule
    register_all: Rule
    introspect_client: Rule
    login_user_address_failures: Rule
    """Consecutive failures of one username from one address (exponential back-off)."""
    login_user_failures: Rule
    """Failures of one username from every address together."""
    login_address_failures: Rule
    metadata_fetch_host: Rule

    @classmethod
    def from_settings(cls, limits: RateLimitSettings) -> Rules:
        return cls(
            token_client=Rule(
                "token-client",
                limits.token_per_client_per_minute,
                60,
                "too many token requests for this client",
            ),
            par_client=Rule(
                "par-client",
                limits.token_per_client_per_minute,
                60,
                "too many pushed authorization requests for this client",
            ),
            token_address_failures=Rule(
                "token-fail-ip",
                limits.token_failures_per_address_per_minute,
                60,
                "too many failed token requests from this address",
            ),
            register_address=Rule(
                "register-ip",
                limits.registrations_per_address_per_hour,
                3600,
                "too many registrations from this address",
            ),
            register_all=Rule(
                "register-all", limits.registrations_per_hour, 3600, "too many registrations; retry later"
            ),
            introspect_client=Rule(
                "introspect-client",
                limits.introspections_per_client_per_minute,
                60,
                "too many introspection requests for this client",
            ),
            login_user_address_failures=Rule(
                "login-fail-user-ip", limits.login_failures_per_user, LOCKOUT_MAX_SECONDS
            ),
            login_user_failures=Rule(
                "login-fail-user", limits.login_failures_per_user_per_hour, 3600, "too many failed sign-ins"
            ),
            login_address_failures=Rule(
                "login-fail-ip", limits.login_failures_per_address_per_hour, 3600, "too many failed sign-ins"
            ),
            metadata_fetch_host=Rule(
                "cimd-host",
                limits.metadata_fetches_per_host_per_minute,
                60,
                "too many client metadata document fetches from this host",
            ),
        )


def lockout_remaining(failures: int, last_failure_at: int, allowed: int, now: int) -> int:
    """Seconds a user stays locked out: none below `allowed` consecutive failures, then 30 s, doubling
    with each further failure, at most 15 minutes (OWASP Authentication: exponential back-off)."""
    if failures < allowed:
        return 0
    duration: int = min(LOCKOUT_BASE_SECONDS * 2 ** (failures - allowed), LOCKOUT_MAX_SECONDS)
    return max(0, last_failure_at + duration - now)
