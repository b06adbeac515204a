"""Who the current MCP request acts for: the validated access token, bound per request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from wallet_mcp.tokens.access_tokens import AccessToken

_current: ContextVar[AccessToken] = ContextVar("mcp_principal")


def current_principal() -> AccessToken:
    """The access token of the request being served; a LookupError outside one (a bug)."""
    return _current.get()


@contextmanager
def bound_principal(token: AccessToken) -> Iterator[None]:
    reset = _current.set(token)
    try:
        yield
    finally:
        _current.reset(reset)
