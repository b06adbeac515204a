"""Child processes that cannot outlive the local stack."""

from __future__ import annotations

import ctypes
import signal
import sys


def die_with_parent() -> None:
    """`preexec_fn` for children: on Linux, SIGTERM them when their parent dies (PR_SET_PDEATHSIG),
    so even a killed `make dev` leaves no orphan emulator or worker behind."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
