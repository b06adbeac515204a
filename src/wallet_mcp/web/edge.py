"""Requests through the optional CloudFront distribution and its AWS WAF web ACL
(`EdgeProtection=true`, docs/operations.md § Edge: CloudFront and AWS WAF).

HTTP APIs have no resource policy, so the origin cannot refuse callers that skip CloudFront by
itself: CloudFront adds a secret header (`X-Origin-Verify`, a Secrets Manager value the template
generates) to every origin request and each function refuses a request without it, before any
route runs. A verified request is then restored to what the viewer sent: the `Host` is the public
one (CloudFront sends the origin's own host), and the caller's address is the viewer's, which the
distribution's viewer-request function writes into `X-Viewer-Address` over anything a client sent
(API Gateway's `sourceIp` is a CloudFront edge server, shared by everyone behind it).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from wallet_mcp.web.errors import error_response

ORIGIN_HEADER: Final = b"x-origin-verify"
VIEWER_HEADER: Final = b"x-viewer-address"


class EdgeOnly:
    """ASGI middleware: only requests that came through the distribution reach `app`."""

    def __init__(self, app: ASGIApp, secret: str, public_host: str) -> None:
        if not secret:
            raise ValueError("the edge origin secret is empty")
        self._app = app
        self._secret = secret.encode()
        self._host = public_host.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = [(bytes(k), bytes(v)) for k, v in scope["headers"]]
        presented = [value for name, value in headers if name == ORIGIN_HEADER]
        if len(presented) != 1 or not hmac.compare_digest(presented[0], self._secret):
            response = error_response(
                403, "access_denied", "this origin answers only through its CloudFront distribution"
            )
            await response(scope, receive, send)
            return
        viewer = viewer_address(next((v for n, v in headers if n == VIEWER_HEADER), b""))
        client = scope.get("client")
        restored = [
            (name, value) for name, value in headers if name not in (ORIGIN_HEADER, VIEWER_HEADER, b"host")
        ]
        restored.append((b"host", self._host))
        await self._app(
            {
                **scope,
                "headers": restored,
                "client": (viewer, 0) if viewer else client,
                "server": (self._host.decode().rsplit(":", 1)[0], 443),
            },
            receive,
            send,
        )


def viewer_address(value: bytes) -> str | None:
    """The viewer's IP the distribution's function wrote, if it is one (else None: the request
    keeps API Gateway's source address)."""
    try:
        return str(ipaddress.ip_address(value.decode("ascii").strip()))
    except (UnicodeDecodeError, ValueError):
        return None
