"""Fixtures of the fuzz tests, and where Hypothesis keeps its caches."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.fuzz.gateway import crashes_recorded

# Hypothesis writes caches (constants, Unicode tables) to ./.hypothesis even without an example
# database; keep them out of the working tree.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "wallet-mcp-fuzz-hypothesis")


@pytest.fixture(autouse=True)
def _record_crashes() -> Iterator[None]:
    """The exception behind a 5xx, for the assertion message."""
    with crashes_recorded():
        yield
