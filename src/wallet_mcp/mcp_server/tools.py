"""Tools as data: name, input model, the scopes a call needs, hints, and the function that runs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import mcp_types as types
from pydantic import BaseModel

from wallet_mcp.primitives.scopes import TOOLS_CALL
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.confirmations import Operation

ArgsT = TypeVar("ArgsT", bound=BaseModel)


class ToolError(Exception):
    """A failure the caller (and the model behind it) should read: returned with `isError`.
    `reason`: what the audit trail calls the decision (`mcp_server/tool_audit.py`)."""

    def __init__(self, message: str, *, reason: str = "refused") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    text: str
    structured: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Proposal:
    """A call that needs the person's confirmation before it runs (`mcp_server/confirmation.py`):
    whose wallet, what the person is shown, and how to run it once approved, with the
    DynamoDB actions that must commit with it."""

    owner: str
    operation: Operation
    transaction_id: str
    execute: Callable[[Sequence[dict[str, Any]]], ToolOutcome]


@dataclass(frozen=True, slots=True)
class ToolSpec(Generic[ArgsT]):
    name: str
    title: str
    description: str
    arguments: type[ArgsT]
    run: Callable[[AccessToken, ArgsT], ToolOutcome]
    scopes: tuple[str, ...] = ()
    """Scopes the call needs besides `mcp:tools:call`."""
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True
    output_schema: dict[str, Any] | None = None
    propose: Callable[[AccessToken, ArgsT], Proposal | None] | None = None
    """For a tool that may move money: the operation, when this call needs the person's
    confirmation (None: run it as any other tool)."""
    meta: dict[str, Any] | None = None
    """The tool's `_meta`, e.g. the MCP Apps view that draws its results (`mcp_server/apps.py`)."""

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return (TOOLS_CALL, *self.scopes)

    def definition(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.arguments.model_json_schema(),
            output_schema=self.output_schema,
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=self.read_only,
                destructive_hint=None if self.read_only else self.destructive,
                idempotent_hint=None if self.read_only else self.idempotent,
                open_world_hint=False,
            ),
            _meta=self.meta,
        )


class ToolRegistry:
    """The tools in a fixed order, so `tools/list` is deterministic (MCP 2026-07-28)."""

    def __init__(self, tools: Sequence[ToolSpec[Any]]) -> None:
        self._tools = tuple(tools)
        self._by_name = {t.name: t for t in self._tools}
        if len(self._by_name) != len(self._tools):
            raise ValueError("duplicate tool name")
        self._definitions = [t.definition() for t in self._tools]

    def get(self, name: str) -> ToolSpec[Any] | None:
        return self._by_name.get(name)

    def definitions(self) -> list[types.Tool]:
        return list(self._definitions)

    def __iter__(self) -> Any:
        return iter(self._tools)
