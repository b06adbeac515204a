"""The HTTP client every command uses: bounded timeouts, no redirects, our User-Agent.

Bounded so a stalled server is a clear error in seconds, never a hang of the MCP client waiting
on a tool; redirects are not followed so a bearer token or a client secret is only ever sent to
the URL it was meant for.
"""

from __future__ import annotations

from typing import Any, Final

import httpx2

from wallet_mcp.mcp_server.server import SERVER_VERSION

USER_AGENT: Final = f"wallet-mcp-cli/{SERVER_VERSION}"
CONNECT_TIMEOUT: Final = 5.0


def new_http_client(timeout: float) -> httpx2.Client:
    """`timeout`: seconds a request may take as a whole (`CliSettings.http_timeout`)."""
    bounds = httpx2.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))
    return httpx2.Client(timeout=bounds, follow_redirects=False, headers={"User-Agent": USER_AGENT})


def error_fields(response: httpx2.Response) -> tuple[str, str]:
    """`error` and `error_description` of an OAuth or API error body (RFC 6749 §5.2), or stand-ins.

    Only these two fields are read: an error body is never echoed whole (it could carry anything).
    """
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        description = body.get("error_description")
        if isinstance(error, str):
            return error[:100], (description if isinstance(description, str) else error)[:500]
    return f"http_{response.status_code}", f"HTTP {response.status_code} {response.reason_phrase}".strip()


def network_reason(exc: httpx2.HTTPError) -> str:
    """A short reason for a failed request (httpx's messages name no header or body)."""
    if isinstance(exc, httpx2.TimeoutException):
        return "timed out"
    return str(exc)[:200] or type(exc).__name__
