"""Prompts as data: name, arguments (each with its completer), the scopes rendering needs, and the
function that renders the prompt from the caller's wallet.

Prompts are user-controlled (MCP server/prompts §User Interaction Model): a host shows them as
slash commands, the user picks one and fills its arguments. Arguments arrive as strings; an unknown
name, a missing required argument or a value the prompt cannot use is a JSON-RPC `-32602`
(§Error Handling), raised here as `PromptError` and mapped in `server.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from wallet_mcp.tokens.access_tokens import AccessToken

MAX_ARGUMENT_LENGTH = 200
"""Longer than any month, amount, name or description a prompt takes: anything longer is refused."""

Completer = Callable[[AccessToken, str, Mapping[str, str]], types.Completion]
"""(caller, the partial value typed so far, the arguments already filled in) -> suggestions."""


class PromptError(Exception):
    """A prompt request the server refuses with `-32602` (MCP server/prompts §Error Handling)."""


@dataclass(frozen=True, slots=True)
class PromptArgumentSpec:
    name: str
    description: str
    required: bool = False
    complete: Completer | None = None
    """Suggestions for `completion/complete` (MCP server/utilities/completion); None: no suggestions."""


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    description: str
    text: str
    """One user message: the request and the wallet data it is about."""


@dataclass(frozen=True, slots=True)
class PromptSpec:
    name: str
    title: str
    description: str
    render: Callable[[AccessToken, Mapping[str, str]], RenderedPrompt]
    arguments: tuple[PromptArgumentSpec, ...] = ()
    scopes: tuple[str, ...] = ()
    """What rendering reads, the same scopes as the tools that read the same data: the HTTP layer
    checks them (and answers 403 `insufficient_scope` for a step-up) before the SDK sees the call.
    Completing this prompt's arguments needs them too: suggestions are the same user's data."""

    def argument(self, name: str) -> PromptArgumentSpec | None:
        return next((a for a in self.arguments if a.name == name), None)

    def definition(self) -> types.Prompt:
        return types.Prompt(
            name=self.name,
            title=self.title,
            description=self.description,
            arguments=[
                types.PromptArgument(name=a.name, description=a.description, required=a.required)
                for a in self.arguments
            ],
        )

    def validated(self, given: Mapping[str, Any] | None) -> dict[str, str]:
        """The arguments to render with: known names only, required ones present, values bounded.

        An empty (or blank) value counts as not given: hosts send "" for an optional field the
        user left empty.
        """
        values: dict[str, str] = {}
        for name, value in (given or {}).items():
            if self.argument(name) is None:
                raise PromptError(f"unknown argument {name[:64]!r} for prompt {self.name}")
            if not isinstance(value, str):
                raise PromptError(f"argument {name} must be a string")
            if len(value) > MAX_ARGUMENT_LENGTH:
                raise PromptError(f"argument {name} must be at most {MAX_ARGUMENT_LENGTH} characters")
            if value.strip():
                values[name] = value.strip()
        missing = [a.name for a in self.arguments if a.required and a.name not in values]
        if missing:
            raise PromptError(f"missing required argument: {', '.join(missing)}")
        return values

    def get(self, principal: AccessToken, given: Mapping[str, Any] | None) -> types.GetPromptResult:
        rendered = self.render(principal, self.validated(given))
        return types.GetPromptResult(
            description=rendered.description,
            messages=[
                types.PromptMessage(role="user", content=types.TextContent(type="text", text=rendered.text))
            ],
        )


class PromptRegistry:
    """The prompts in a fixed order, so `prompts/list` is deterministic."""

    def __init__(self, prompts: Sequence[PromptSpec]) -> None:
        self._prompts = tuple(prompts)
        self._by_name = {p.name: p for p in self._prompts}
        if len(self._by_name) != len(self._prompts):
            raise ValueError("duplicate prompt name")
        self._definitions = [p.definition() for p in self._prompts]

    def get(self, name: str) -> PromptSpec | None:
        return self._by_name.get(name)

    def definitions(self) -> list[types.Prompt]:
        return list(self._definitions)

    def __iter__(self) -> Any:
        return iter(self._prompts)
