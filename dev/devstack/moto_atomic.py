"""`moto_server`, with each request handled atomically.

DynamoDB evaluates a conditional write or a transaction atomically: of two concurrent
`TransactWriteItems` whose conditions cannot both hold, one is cancelled. moto's server handles
requests on threads with no lock around its backends, so two concurrent transactions can both see
their conditions hold and both commit (and a read can walk a table while another request changes
it: "dictionary changed size during iteration"). The local stack's gateway runs several workers
at once, so this server handles one request at a time, as far as the backends see it: connections
are still accepted concurrently, and each request is a few milliseconds.

Usage: `python -m devstack.moto_atomic HOST PORT`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from devstack.moto_kms import pss_salt_like_aws


class Serialized:
    """WSGI middleware: the wrapped application handles one request (body included) at a time."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            result = self._app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def main(argv: list[str]) -> None:
    host, port = argv[0], int(argv[1])
    pss_salt_like_aws()  # PS256 tokens under the FAPI 2.0 profile, signed as AWS KMS signs them
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, Serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(sys.argv[1:])
