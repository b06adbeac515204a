"""The tools this server offers, in the order `tools/list` shows them."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from wallet_mcp.mcp_server.tools import ToolOutcome, ToolRegistry, ToolSpec
from wallet_mcp.primitives.scopes import format_scope
from wallet_mcp.tokens.access_tokens import AccessToken


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


def ping(principal: AccessToken, _: NoArguments) -> ToolOutcome:
    scope = format_scope(principal.scopes)
    return ToolOutcome(
        text=f"🏓 pong — authenticated as {principal.subject} (client {principal.client_id}); scope: {scope}",
        structured={
            "ok": True,
            "subject": principal.subject,
            "client_id": principal.client_id,
            "scope": scope,
            "token_expires_at": principal.expires_at,
            "server_time": int(time.time()),
        },
    )


PING = ToolSpec(
    name="ping",
    title="Ping",
    description=(
        "Check the connection and the OAuth authentication: answers pong with who you are connected as."
    ),
    arguments=NoArguments,
    run=ping,
    output_schema={
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "subject": {"type": "string"},
            "client_id": {"type": "string"},
            "scope": {"type": "string"},
            "token_expires_at": {"type": "integer"},
            "server_time": {"type": "integer"},
        },
        "required": ["ok", "subject", "client_id", "scope", "token_expires_at", "server_time"],
    },
)


def build_registry(wallet: list[ToolSpec[Any]] | None = None) -> ToolRegistry:
    """`ping` first, then the wallet tools in their fixed order."""
    return ToolRegistry([PING, *(wallet or [])])
