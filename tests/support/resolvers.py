"""Stand-in DNS resolvers for the outbound fetcher's address guard (no lookup leaves the machine)."""

from __future__ import annotations

from collections.abc import Callable


def never_called(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolver called for {host}:{port}")


def resolves_to(*addresses: str) -> Callable[[str, int], list[str]]:
    return lambda host, port: list(addresses)
