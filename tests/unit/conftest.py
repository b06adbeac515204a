"""Fixtures shared by the unit tests."""

from __future__ import annotations

import socket
from typing import Any

import pytest


@pytest.fixture
def recorded_connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """socket.connect records where it would connect and refuses: nothing leaves this machine."""
    seen: list[tuple[Any, ...]] = []

    def connect(self: socket.socket, address: tuple[Any, ...]) -> None:
        seen.append(address)
        raise ConnectionRefusedError("refused by the test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen
