"""Bearer tokens at a protected resource (RFC 6750) and the challenges it answers with.

RFC 6750 §2.1: only the Authorization header is accepted (MCP authorization forbids tokens in
the query string). §3: a request without credentials gets a challenge with no error code; a bad
token gets `invalid_token` (401); a token lacking scope gets `insufficient_scope` (403) naming
every scope the request needs. RFC 9728 §5.1 adds `resource_metadata`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final, Literal

from wallet_mcp.primitives.scopes import format_scope, known_only


class MalformedAuthorization(Exception):
    """An Authorization header that is not a single well-formed Bearer credential."""


Scheme = Literal["Bearer", "DPoP"]


def bearer_token(authorization: str | None) -> str | None:
    """The token from `Authorization: Bearer <token>`, None if there is no Authorization header."""
    found = credentials(authorization)
    if found is None:
        return None
    if found[0] != "Bearer":
        raise MalformedAuthorization("the Authorization scheme must be Bearer")
    return found[1]


_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
"""RFC 6750 §2.1 `b64token`, matched in C: a per-character Python check cost ~0.3 ms a request."""


def credentials(authorization: str | None) -> tuple[Scheme, str] | None:
    """The scheme and token of `Authorization: Bearer <token>` or `Authorization: DPoP <token>`
    (RFC 9449 §7.1), None if there is no Authorization header."""
    if authorization is None:
        return None
    raw_scheme, _, token = authorization.strip().partition(" ")
    scheme: Scheme
    if raw_scheme.lower() == "bearer":
        scheme = "Bearer"
    elif raw_scheme.lower() == "dpop":
        scheme = "DPoP"
    else:
        raise MalformedAuthorization("the Authorization scheme must be Bearer or DPoP")
    token = token.strip()
    # RFC 6750 §2.1 b64token syntax; anything else cannot be one of our tokens
    if _B64TOKEN.fullmatch(token) is None:
        raise MalformedAuthorization("malformed bearer token")
    return scheme, token


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True, slots=True)
class Challenge:
    status: Literal[401, 403]
    error: str | None
    description: str | None
    scope: str | None
    resource_metadata: str
    scheme: Scheme = "Bearer"
    algs: str | None = None
    """RFC 9449 §7.1: the DPoP challenge's `algs` (the proof algorithms accepted)."""
    dpop_nonce: str | None = None
    """RFC 9449 §9: a fresh server nonce, sent as the `DPoP-Nonce` header."""

    def header(self) -> str:
        params = []
        if self.algs:
            params.append(f'algs="{self.algs}"')
        if self.error:
            params.append(f'error="{self.error}"')
        if self.description:
            params.append(f'error_description="{_quote(self.description)}"')
        if self.scope:
            params.append(f'scope="{self.scope}"')
        params.append(f'resource_metadata="{self.resource_metadata}"')
        return f"{self.scheme} " + ", ".join(params)

    def body(self) -> dict[str, str]:
        if self.error is None:
            return {"error": "unauthorized", "error_description": "a bearer token is required"}
        return {"error": self.error, "error_description": self.description or self.error}


def missing_token(resource_metadata: str, scope: Iterable[str] = ()) -> Challenge:
    """RFC 6750 §3.1: no error code when the request carried no credentials."""
    return Challenge(401, None, None, format_scope(scope) or None, resource_metadata)


def invalid_token(resource_metadata: str, description: str, scope: Iterable[str] = ()) -> Challenge:
    """`scope`: what a client starting a new authorization should ask for (MCP 2025-11-25
    §Protected Resource Metadata Discovery: servers SHOULD name it in the 401). Without it, a client
    that does not refresh on a 401 (the Python SDK 1.x after a restart) falls back to every scope of
    the metadata, write scopes included."""
    return Challenge(401, "invalid_token", description, format_scope(scope) or None, resource_metadata)


def insufficient_scope(
    resource_metadata: str, needed: Iterable[str], granted: Iterable[str] = ()
) -> Challenge:
    """`scope` names what the request needs and what the token already holds (MCP 2025-11-25
    §Scope Challenge Handling, the recommended approach): a client that re-authorizes with exactly
    the challenge's scope keeps its other permissions instead of trading them for this one. The
    description names only what is missing."""
    wanted = set(needed)
    return Challenge(
        403,
        "insufficient_scope",
        f"this request needs scope: {format_scope(wanted)}",
        format_scope(wanted | set(known_only(granted))),
        resource_metadata,
    )


def dpop(challenge: Challenge, algs: Iterable[str], nonce: str | None = None) -> Challenge:
    """`challenge` as a DPoP challenge (RFC 9449 §7.1): the scheme, the accepted `algs`, and with
    `nonce` the `DPoP-Nonce` the client must put in its next proof."""
    return replace(challenge, scheme="DPoP", algs=" ".join(algs), dpop_nonce=nonce)


def dpop_refusal(
    resource_metadata: str, error: str, description: str, algs: Iterable[str], nonce: str | None = None
) -> Challenge:
    """RFC 9449 §7.1, §9: `invalid_dpop_proof` or `use_dpop_nonce` (401) at a resource."""
    return dpop(Challenge(401, error, description, None, resource_metadata), algs, nonce)
