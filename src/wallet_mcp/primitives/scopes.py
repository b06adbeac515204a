"""Scopes: the closed set this server issues, their plain-words meaning, and the pure rules on them.

RFC 6749 §3.3: a scope is a space-delimited, order-free list of case-sensitive strings drawn
from %x21 / %x23-5B / %x5D-7E.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from wallet_mcp.primitives.errors import InvalidScope

TOOLS_LIST: Final = "mcp:tools:list"
TOOLS_CALL: Final = "mcp:tools:call"
RESOURCES_READ: Final = "mcp:resources:read"
RESOURCES_WRITE: Final = "mcp:resources:write"
ACCOUNTS_READ: Final = "wallet:accounts:read"
ACCOUNTS_WRITE: Final = "wallet:accounts:write"
TRANSACTIONS_READ: Final = "wallet:transactions:read"
TRANSACTIONS_WRITE: Final = "wallet:transactions:write"
ANALYTICS_READ: Final = "wallet:analytics:read"

SCOPE_DESCRIPTIONS: Final[dict[str, str]] = {
    TOOLS_LIST: "See which wallet tools are available",
    TOOLS_CALL: "Use wallet tools on your behalf",
    RESOURCES_READ: "Read wallet resources (accounts and recent transactions)",
    RESOURCES_WRITE: "Change wallet resources",
    ACCOUNTS_READ: "See your accounts and balances",
    ACCOUNTS_WRITE: "Create and change your accounts",
    TRANSACTIONS_READ: "See your transactions",
    TRANSACTIONS_WRITE: "Record new transactions",
    ANALYTICS_READ: "See spending analytics",
}
"""Every scope this server knows (CONTRACT.md), in the order they are shown and advertised."""

SUPPORTED_SCOPES: Final[tuple[str, ...]] = tuple(SCOPE_DESCRIPTIONS)

MONEY_MOVING_SCOPES: Final = frozenset({ACCOUNTS_WRITE, TRANSACTIONS_WRITE})
"""Scopes that create accounts (with an opening balance) or record transactions: a person is asked
every time an app wants them, remembered consent notwithstanding."""

MCP_METHOD_SCOPES: Final[dict[str, tuple[str, ...]]] = {
    "tools/list": (TOOLS_LIST,),
    "tools/call": (TOOLS_CALL,),
    "resources/list": (RESOURCES_READ,),
    "resources/templates/list": (RESOURCES_READ,),
    "resources/read": (RESOURCES_READ,),
}
"""What each MCP method needs before anything else; a tool call adds the tool's own scopes, a
resource read the resource's, `prompts/get` the prompt's, and `completion/complete` those of the
prompt or template it completes (`mcp_server.http.required_scopes`). Methods not named need none
of their own: `prompts/list` shows the same fixed catalog to any valid token, as `ping` answers it."""

WALLET_SCOPE_PREFIXES: Final = ("wallet:", "mcp:resources:")
"""Scopes that reach a person's wallet (a client-credentials token does so only through its owner)."""

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # fullmatch: "$" would let a trailing "\n" in
_MAX_SCOPE_LENGTH: Final = 1024


def parse_scope(raw: str | None) -> tuple[str, ...]:
    """Split a `scope` parameter into its distinct tokens, in first-seen order.

    Raises InvalidScope for a malformed value; unknown scopes are left to `known_only` (ignored)
    or `require_known` (the administration commands, which refuse them).
    """
    if raw is None:
        return ()
    if len(raw) > _MAX_SCOPE_LENGTH:
        raise InvalidScope("scope is too long")
    tokens: list[str] = []
    for token in raw.split(" "):
        if token == "":
            continue
        if _SCOPE_TOKEN.fullmatch(token) is None:
            raise InvalidScope("scope contains characters RFC 6749 §3.3 does not allow")
        if token not in tokens:
            tokens.append(token)
    return tuple(tokens)


def format_scope(scopes: Iterable[str]) -> str:
    """Canonical order (the order of SUPPORTED_SCOPES, unknown last) so equal sets print equally."""
    order = {name: i for i, name in enumerate(SUPPORTED_SCOPES)}
    return " ".join(sorted(set(scopes), key=lambda s: (order.get(s, len(order)), s)))


def require_known(scopes: Iterable[str]) -> None:
    unknown = [s for s in scopes if s not in SCOPE_DESCRIPTIONS]
    if unknown:
        raise InvalidScope(f"unknown scope: {unknown[0]}")


def known_only(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes this server knows, in the order given. A scope it does not know (`openid`,
    `email`, `offline_access`, another server's) is ignored, not an error: RFC 6749 §3.3 lets the
    server grant less than asked, and the response says what was granted (§5.1)."""
    return tuple(s for s in scopes if s in SCOPE_DESCRIPTIONS)


def grant_scope(
    requested: tuple[str, ...], allowed: Iterable[str], default: Iterable[str] | None = None
) -> tuple[str, ...]:
    """The scope to grant: what was asked, narrowed to what the client may have.

    Scopes this server does not know are ignored (`known_only`); when none it knows was asked (or
    the scope was omitted), the client's default scope, else everything it may have (RFC 6749
    §3.3). A known scope the client may not have is dropped, and the response says which scope was
    granted (§5.1). Nothing left is an error.
    """
    allowed_set = set(allowed)
    known = known_only(requested)
    if not known:
        fallback = set(default) & allowed_set if default else allowed_set
        granted = tuple(s for s in SUPPORTED_SCOPES if s in fallback)
    else:
        granted = tuple(s for s in known if s in allowed_set)
    if not granted:
        raise InvalidScope("none of the requested scopes may be granted to this client")
    return granted
