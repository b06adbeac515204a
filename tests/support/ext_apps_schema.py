"""The MCP Apps messages as the reference package defines them: the JSON Schema that
`@modelcontextprotocol/ext-apps` ships (`dist/src/generated/schema.json`, generated from its
TypeScript types), from the pinned install (`devstack.clients.EXT_APPS`, tests/clients/ext-apps).

Each definition describes a message without its JSON-RPC envelope (`method` and `params`, or a
result): `check(message)` strips `jsonrpc` and `id`, picks the definition by method, and returns
what is wrong (nothing: valid)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from devstack import clients

BY_METHOD = {
    "ui/initialize": "McpUiInitializeRequest",
    "ui/notifications/initialized": "McpUiInitializedNotification",
    "ui/notifications/size-changed": "McpUiSizeChangedNotification",
    "ui/notifications/tool-input": "McpUiToolInputNotification",
    "ui/notifications/tool-result": "McpUiToolResultNotification",
    "ui/notifications/host-context-changed": "McpUiHostContextChangedNotification",
    "ui/request-display-mode": "McpUiRequestDisplayModeRequest",
    "ui/message": "McpUiMessageRequest",
    "ui/open-link": "McpUiOpenLinkRequest",
    "ui/update-model-context": "McpUiUpdateModelContextRequest",
}


@cache
def schema() -> dict[str, Any]:
    package = clients.ensure(clients.EXT_APPS) / "node_modules" / clients.EXT_APPS.package
    return dict(json.loads((package / "dist" / "src" / "generated" / "schema.json").read_text()))


def validator(definition: str) -> Draft202012Validator:
    defs = schema()["$defs"]
    assert definition in defs, definition
    return Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": defs})


def problems(definition: str, value: Any) -> list[str]:
    return [
        f"{definition} {list(e.absolute_path)}: {e.message}" for e in validator(definition).iter_errors(value)
    ]


def check(message: dict[str, Any]) -> list[str]:
    """A `ui/` request or notification against its definition; an unknown `ui/` method is wrong."""
    method = message.get("method")
    if not isinstance(method, str) or not method.startswith("ui/"):
        return []
    definition = BY_METHOD.get(method)
    if definition is None:
        return [f"{method} is no MCP Apps method"]
    return problems(definition, {k: v for k, v in message.items() if k not in ("jsonrpc", "id")})


def style_variable_keys() -> list[str]:
    """Every `McpUiStyleVariableKey`: a host that sends `styles.variables` sends each of them."""
    return [str(option["const"]) for option in schema()["$defs"]["McpUiStyleVariableKey"]["anyOf"]]
