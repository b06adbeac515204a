"""Cookies as the pages set and read them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Cookie:
    name: str
    value: str
    path: str
    max_age: int
    http_only: bool = True


@dataclass
class CookieJar:
    """The cookies the browser sent, by name."""

    values: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.values.get(name)
