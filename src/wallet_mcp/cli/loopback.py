"""A native app's sign-in: the system browser, and a loopback redirect receiver (RFC 8252 §7.3).

The receiver listens on 127.0.0.1 on a port the OS picks (the server accepts any port for a
native client's loopback redirect URI), waits for one authorization response on `/callback`,
answers the browser with a short page, and hands the response's parameters to the caller. A
response carrying another `state` is answered and ignored (it is not from the sign-in under
way), so a page that probes the port cannot end it. Requests are never logged: their query
strings carry authorization codes.

`webbrowser` honours `$BROWSER`, so a headless driver can play the user (tests do).
"""

from __future__ import annotations

import hmac
import logging
import sys
import threading
import webbrowser
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from wallet_mcp.cli.errors import CliError

logger = logging.getLogger(__name__)

CALLBACK_PATH: Final = "/callback"
LOOPBACK_HOST: Final = "127.0.0.1"
REGISTERED_REDIRECT_URI: Final = f"http://{LOOPBACK_HOST}{CALLBACK_PATH}"
"""What a native client registers; each sign-in adds its own port (RFC 8252 §7.3)."""


class SignInTimeout(CliError):
    pass


class LoopbackReceiver:
    def __init__(self, expected_state: str | None = None) -> None:
        self._expected_state = expected_state
        self._received = threading.Event()
        self._params: dict[str, str] = {}
        self._server = ThreadingHTTPServer((LOOPBACK_HOST, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2})
        self._thread.daemon = True

    @property
    def redirect_uri(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self._server.server_address[1]}{CALLBACK_PATH}"

    def __enter__(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float) -> dict[str, str]:
        """The authorization response's parameters (`code`, `state`, `iss`, or `error`...)."""
        if not self._received.wait(timeout):
            raise SignInTimeout(
                f"no answer from the browser within {timeout:g} s: the sign-in was not completed "
                "(run the command again; --timeout SECONDS allows more time)"
            )
        return dict(self._params)

    def _accept(self, params: dict[str, str]) -> tuple[int, str]:
        state = params.get("state")
        if self._expected_state is not None and not (
            state is not None and hmac.compare_digest(state.encode(), self._expected_state.encode())
        ):
            return 400, "This response does not belong to the sign-in in progress; it was ignored."
        if "code" not in params and "error" not in params:
            return 400, "This address only receives authorization responses."
        if self._received.is_set():
            return 409, "The sign-in was already answered."
        self._params = params
        self._received.set()
        if "error" in params:
            return 200, "Sign-in was not completed. You can close this window; the terminal says why."
        return 200, "Signed in. You can close this window and go back to the terminal."

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != CALLBACK_PATH:
                    self._answer(404, "Not found.")
                    return
                raw = parse_qs(parts.query, keep_blank_values=True)
                if any(len(values) > 1 for values in raw.values()):
                    # RFC 6749 §3.1: a repeated parameter makes the response malformed
                    self._answer(400, "Malformed authorization response.")
                    return
                self._answer(*receiver._accept({k: v[0] for k, v in raw.items()}))

            def _answer(self, status: int, message: str) -> None:
                body = (
                    "<!doctype html><meta charset=utf-8><title>wallet-mcp</title>"
                    f"<p style='font:16px system-ui;margin:3em'>{escape(message)}</p>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line carries the authorization code

        return Handler


def launch_browser(url: str, *, open_browser: bool = True) -> None:
    """Show the URL, and open it in the user's browser without waiting for the browser to exit."""
    print(f"Sign in with your browser. If it does not open, visit:\n  {url}", file=sys.stderr, flush=True)
    if not open_browser:
        return

    def run() -> None:
        try:
            opened = webbrowser.open(url)
        except webbrowser.Error:
            opened = False
        if not opened:
            logger.warning("could not start a browser: open the address above yourself")

    threading.Thread(target=run, name="browser", daemon=True).start()
