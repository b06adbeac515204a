"""The upstream identity providers this server offers on its login page, parsed from configuration.

`UPSTREAM_IDENTITY_PROVIDERS` (the template's `UpstreamIdentityProviders`) is a JSON list, one
object per provider:

    {"id": "google", "name": "Google", "issuer": "https://accounts.google.com",
     "client_id": "…apps.googleusercontent.com", "client_secret": "ssm:/wallet-mcp/google",
     "scopes": "openid email profile", "link_by_email": true, "create_users": true}

The client secret is never in the configuration itself, only where it lives: an SSM Parameter
Store SecureString (`ssm:/<prefix>…`) or a Secrets Manager secret (`secretsmanager:<prefix>…` or
its ARN), under the prefix the function's IAM policy is scoped to. Everything is checked at cold
start: a mistake is a deployment error, not a surprise at a user's first sign-in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

MAX_PROVIDERS: Final = 8
DEFAULT_SCOPES: Final = ("openid", "email", "profile")
LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 scope-token
_TENANT = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@:-]{1,2048}$")
_KNOWN_KEYS: Final = frozenset(
    {
        "id",
        "name",
        "issuer",
        "client_id",
        "client_secret",
        "scopes",
        "link_by_email",
        "create_users",
        "allowed_tenants",
        "token_endpoint_auth_method",
    }
)


class IdentityProviderConfigError(ValueError):
    """UPSTREAM_IDENTITY_PROVIDERS is malformed; the message says which provider and why."""


_Fail = Callable[[str], IdentityProviderConfigError]


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a client secret lives (never the secret itself)."""

    store: Literal["ssm", "secretsmanager"]
    name: str
    """An SSM parameter name, or a Secrets Manager secret name or ARN."""


@dataclass(frozen=True, slots=True)
class IdentityProvider:
    id: str
    """URL segment and audit name: `/oauth/authorize/upstream/<id>`; a-z, 0-9 and `-`."""
    name: str
    """Shown on the button: "Sign in with <name>"."""
    issuer: str
    """The OpenID provider's issuer identifier; its discovery document is fetched from it."""
    client_id: str
    client_secret: SecretRef | None
    """None: a public client (PKCE only), for providers that allow it."""
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    link_by_email: bool = True
    """May a first sign-in be linked to an existing local user by a *verified* email address."""
    create_users: bool = True
    """May a first sign-in with no local user to link create one."""
    allowed_tenants: tuple[str, ...] = ()
    """Multi-tenant issuers (Microsoft's `{tenantid}`): the tenants allowed to sign in; empty: any."""
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] | None = None
    """None: basic if the provider offers it, else post."""

    @property
    def discovery_url(self) -> str:
        """OpenID Connect Discovery 1.0 §4: a terminating `/` is removed before appending."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_identity_providers(
    raw: str, *, allow_loopback: bool, secrets_prefix: str
) -> tuple[IdentityProvider, ...]:
    """The providers in `raw` (JSON), in order; IdentityProviderConfigError for any mistake."""
    if not raw.strip():
        return ()
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise IdentityProviderConfigError("UPSTREAM_IDENTITY_PROVIDERS is not valid JSON") from exc
    if not isinstance(document, list):
        raise IdentityProviderConfigError("UPSTREAM_IDENTITY_PROVIDERS must be a JSON list")
    if len(document) > MAX_PROVIDERS:
        raise IdentityProviderConfigError(f"at most {MAX_PROVIDERS} upstream identity providers")
    providers: list[IdentityProvider] = []
    for index, entry in enumerate(document):
        provider = _provider(entry, index, allow_loopback=allow_loopback, secrets_prefix=secrets_prefix)
        if any(p.id == provider.id for p in providers):
            raise IdentityProviderConfigError(f"provider id {provider.id!r} is used twice")
        providers.append(provider)
    return tuple(providers)


def _provider(entry: object, index: int, *, allow_loopback: bool, secrets_prefix: str) -> IdentityProvider:
    if not isinstance(entry, dict):
        raise IdentityProviderConfigError(f"provider #{index + 1} must be a JSON object")
    label = f"provider {entry.get('id')!r}" if isinstance(entry.get("id"), str) else f"provider #{index + 1}"
    unknown = sorted(set(entry) - _KNOWN_KEYS)
    if unknown:
        raise IdentityProviderConfigError(f"{label}: unknown setting {unknown[0]!r}")

    def fail(message: str) -> IdentityProviderConfigError:
        return IdentityProviderConfigError(f"{label}: {message}")

    provider_id = entry.get("id")
    if not isinstance(provider_id, str) or not _ID.match(provider_id):
        raise fail("id must be 1-32 of a-z, 0-9 and '-', starting with a letter or digit")
    name = entry.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 40 or not name.isprintable():
        raise fail("name must be 1-40 printable characters")
    issuer = entry.get("issuer")
    if not isinstance(issuer, str) or not is_allowed_url(issuer, allow_loopback=allow_loopback):
        raise fail(
            "issuer must be an https URL without query or fragment"
            + (" (or http on loopback)" if allow_loopback else "")
        )
    client_id = entry.get("client_id")
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= 512 or not client_id.isprintable():
        raise fail("client_id must be a string of 1-512 printable characters")
    return IdentityProvider(
        id=provider_id,
        name=name.strip(),
        issuer=issuer,
        client_id=client_id,
        client_secret=_secret_ref(entry.get("client_secret"), secrets_prefix, fail),
        scopes=_scopes(entry.get("scopes"), fail),
        link_by_email=_flag(entry, "link_by_email", fail),
        create_users=_flag(entry, "create_users", fail),
        allowed_tenants=_tenants(entry.get("allowed_tenants"), fail),
        token_endpoint_auth_method=_auth_method(entry.get("token_endpoint_auth_method"), fail),
    )


def _secret_ref(raw: object, prefix: str, fail: _Fail) -> SecretRef | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise fail("client_secret must be a string")
    store, sep, name = raw.partition(":")
    if not sep or store not in ("ssm", "secretsmanager") or not _SECRET_NAME.match(name):
        # never echo the value: it may be the secret itself, pasted by mistake
        raise fail(
            "client_secret must say where the secret lives, 'ssm:/<name>' or 'secretsmanager:<name or ARN>',"
            " never the secret itself"
        )
    if store == "ssm":
        # the policy grants arn:…:parameter/<prefix>*, and an SSM name in a hierarchy starts with '/'
        if not name.startswith("/" + prefix):
            raise fail(f"the SSM parameter must be named /{prefix}… (the function may read only those)")
        return SecretRef("ssm", name)
    secret_name = name
    if name.startswith("arn:"):
        parts = name.split(":", 6)
        if len(parts) != 7 or parts[2] != "secretsmanager" or parts[5] != "secret":
            raise fail(
                "a Secrets Manager ARN must be arn:<partition>:secretsmanager:<region>:<account>:secret:…"
            )
        secret_name = parts[6]
    if not secret_name.startswith(prefix):
        raise fail(f"the secret must be named {prefix}… (the function may read only those)")
    return SecretRef("secretsmanager", name)


def _scopes(raw: object, fail: _Fail) -> tuple[str, ...]:
    if raw is None:
        return DEFAULT_SCOPES
    if not isinstance(raw, str):
        raise fail("scopes must be a space-separated string")
    scopes = tuple(dict.fromkeys(raw.split()))
    if "openid" not in scopes or not all(_SCOPE_TOKEN.match(s) for s in scopes):
        raise fail("scopes must be space-separated scope tokens including 'openid'")
    return scopes


def _flag(entry: dict[str, Any], name: str, fail: _Fail) -> bool:
    value = entry.get(name, True)
    if not isinstance(value, bool):
        raise fail(f"{name} must be true or false")
    return value


def _auth_method(raw: object, fail: _Fail) -> Literal["client_secret_basic", "client_secret_post"] | None:
    if raw is None:
        return None
    if raw == "client_secret_basic":
        return "client_secret_basic"
    if raw == "client_secret_post":
        return "client_secret_post"
    raise fail("token_endpoint_auth_method must be client_secret_basic or client_secret_post")


def _tenants(raw: object, fail: _Fail) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(t, str) and _TENANT.match(t) for t in raw):
        raise fail("allowed_tenants must be a list of tenant ids")
    return tuple(t.lower() for t in raw)


def is_allowed_url(url: str, *, allow_loopback: bool, allow_query: bool = False) -> bool:
    """An absolute https URL (http only on a loopback host, and only when allowed); no user-info or
    fragment, a query only when allowed (an endpoint may have one, RFC 6749 §3.1; an issuer may
    not, OpenID Connect Discovery §2); printable ASCII."""
    if not url or len(url) > 2000 or not all(0x21 <= ord(c) <= 0x7E for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    if not parts.hostname or "@" in parts.netloc or "#" in url:
        return False
    if not allow_query and "?" in url:
        return False
    loopback = parts.hostname in LOOPBACK_HOSTS
    if loopback and not allow_loopback:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and loopback)
