"""Completion values for prompt arguments and resource-template variables (MCP
server/utilities/completion): "ranked by relevance", at most 100 per response (§Completion Results),
with `total` and `hasMore` saying what was left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

import mcp_types as types

MAX_VALUES: Final = 100


class CompletionRefused(Exception):
    """A reference or argument this server has no such thing as: `-32602` (§Error Handling)."""


_WORD_START: Final = re.compile(r"\b(?=\w)")


def ranked(candidates: Iterable[str], typed: str) -> types.Completion:
    """The candidates that match what was typed so far, case-insensitively and most relevant first:
    those that start with it, then those with a word that starts with it, then those that merely
    contain it; within each group, in the order given (the caller's own relevance, e.g. newest
    first). Each value once."""
    needle = typed.strip().casefold()
    groups: tuple[list[str], list[str], list[str]] = ([], [], [])
    seen: set[str] = set()
    for candidate in candidates:
        if candidate in seen:
            continue
        seen.add(candidate)
        folded = candidate.casefold()
        if folded.startswith(needle):
            groups[0].append(candidate)
        elif any(folded.startswith(needle, m.start()) for m in _WORD_START.finditer(folded)):
            groups[1].append(candidate)
        elif needle in folded:
            groups[2].append(candidate)
    matches = [*groups[0], *groups[1], *groups[2]]
    return bounded(matches)


def bounded(values: list[str], *, more: bool = False) -> types.Completion:
    """`values` in the order given, cut to the first 100; `more`: the caller stopped looking early,
    so there are more than it found and the total is unknown."""
    if more:
        return types.Completion(values=values[:MAX_VALUES], has_more=True)
    return types.Completion(values=values[:MAX_VALUES], total=len(values), has_more=len(values) > MAX_VALUES)


NOTHING: Final = types.Completion(values=[], total=0, has_more=False)
