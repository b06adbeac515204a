"""Failures the user reads: one message, one exit status, no traceback."""

from __future__ import annotations

from typing import Final

EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
"""Missing or contradictory configuration, as argparse uses for a bad command line."""


class CliError(Exception):
    """A failure shown as `wallet-mcp: <message>` on stderr, exiting with `status`."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ConfigurationError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class ServiceError(Exception):
    """A remote party (authorization server, wallet API) failed or refused: the message says which.

    The bridge turns it into a tool result with `isError`; the other commands into `CliError`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
