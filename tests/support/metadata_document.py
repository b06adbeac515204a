"""A Client ID Metadata Document served over HTTPS on loopback (the test CA's certificate), for the
flow tests: the handler class counts the fetches it answered."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.tls import TestPki


class DocumentHandler(BaseHTTPRequestHandler):
    document: bytes = b"{}"
    cache_control = "max-age=300"
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", self.cache_control)
        self.send_header("Content-Length", str(len(self.document)))
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving_document(
    pki: TestPki, port: int, document: bytes, *, cache_control: str = "max-age=300"
) -> Iterator[type[DocumentHandler]]:
    """`document` at https://localhost:`port`/ (any path) until the block ends."""
    handler = type(
        "Handler", (DocumentHandler,), {"document": document, "cache_control": cache_control, "hits": 0}
    )
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield handler
    finally:
        server.shutdown()
