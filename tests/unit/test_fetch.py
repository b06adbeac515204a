"""The one outbound fetcher: where it connects (the address guard against SSRF), what it sends, what
it accepts, and how long and how much it reads, against a real local HTTP server. TLS (SNI and the
certificate for the URL's name, not the address) is tested through the client-metadata fetch in
test_client_id_metadata.py, which has a local certificate authority."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, get_args
from urllib.parse import parse_qs

import pytest

from tests.support.resolvers import never_called, resolves_to
from wallet_mcp.primitives.fetch import (
    FetchFailed,
    FetchPolicy,
    Reason,
    UpstreamUnavailable,
    get_json,
    post_form,
)

OBJECT = b'{"issuer": "https://idp.example.com", "keys": []}'


def _response(
    status: str, body: bytes, headers: tuple[tuple[str, str], ...] = (), length: bool = True
) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers), "Connection: close"]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _json(status: str, body: bytes, *extra: tuple[str, str], length: bool = True) -> bytes:
    return _response(status, body, (("Content-Type", "application/json"), *extra), length)


def _chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"


BIG = b'{"a": "' + b"x" * 10_000 + b'"}'
"""Larger than the 8 KiB cap the local policy sets."""
ROUTES: dict[str, bytes] = {
    "/ok": _json("200 OK", OBJECT, ("Cache-Control", "max-age=60"), ("Cache-Control", "public")),
    "/error": _json("400 Bad Request", b'{"error": "invalid_grant"}'),
    "/vendor": _response("200 OK", OBJECT, (("Content-Type", "application/jwk-set+json"),)),
    "/chunked": _json("200 OK", _chunked(OBJECT, 7), ("Transfer-Encoding", "chunked"), length=False),
    "/until-close": _json("200 OK", OBJECT, length=False),
    "/html": _response("200 OK", b"<html></html>", (("Content-Type", "text/html"),)),
    "/html-503": _response("503 Service Unavailable", b"<html></html>", (("Content-Type", "text/html"),)),
    "/gzip": _json("200 OK", OBJECT, ("Content-Encoding", "gzip")),
    "/big-declared": _json("200 OK", BIG),
    "/big-undeclared": _json("200 OK", BIG, length=False),
    "/big-chunked": _json("200 OK", _chunked(BIG, 100), ("Transfer-Encoding", "chunked"), length=False),
    "/header-flood": _json("200 OK", OBJECT, *((f"X-Filler-{i}", "x" * 1000) for i in range(30))),
    "/short": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{}",
    "/duplicate": _json("200 OK", b'{"issuer": "https://a.example", "issuer": "https://b.example"}'),
    "/nan": _json("200 OK", b'{"exp": NaN}'),
    "/deep": _json("200 OK", b"[" * 3000 + b"]" * 3000),
    "/latin-1": _json("200 OK", '{"name": "Caf\u00e9"}'.encode("latin-1")),
    "/array": _json("200 OK", b"[]"),
    **{
        f"/redirect-{code}": _json(f"{code} Moved", b"{}", ("Location", "/ok"))
        for code in (301, 302, 303, 307, 308)
    },
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def _answer(self, body: bytes) -> None:
        self.server.requests.append((self.command, self.path, dict(self.headers.items()), body))
        self.close_connection = True
        if self.path == "/silent":
            self.server.release.wait(10)
        elif self.path in ("/drip-body", "/drip-headers"):
            self._drip()
        else:
            self.wfile.write(ROUTES.get(self.path, _json("404 Not Found", b"{}")))

    def _drip(self) -> None:
        """A byte at a time, each well within any read timeout: only a deadline stops it."""
        if self.path == "/drip-body":
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n"
            )
        else:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(900):
            if self.server.release.wait(0.05):
                return
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:
                return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.release = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up at their deadline are what several tests do


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    httpd = _Server()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


class Local:
    """The local server as `http://localhost:<port>`: loopback allowed, `localhost` resolved by us."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.lookups: list[str] = []

    def url(self, path: str) -> str:
        return f"http://localhost:{self.server.server_address[1]}{path}"

    def resolver(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return ["127.0.0.1"]

    def policy(self, **overrides: Any) -> FetchPolicy:
        settings: dict[str, Any] = {"allow_loopback": True, "max_bytes": 8192, "resolver": self.resolver}
        return FetchPolicy(**{**settings, **overrides})

    def get(self, path: str, **overrides: Any) -> Any:
        return get_json(self.url(path), self.policy(**overrides))


@pytest.fixture
def local(server: _Server) -> Local:
    return Local(server)


def _refused(reason: Reason, fetch: Callable[[], Any]) -> FetchFailed:
    with pytest.raises(FetchFailed) as caught:
        fetch()
    assert caught.value.reason == reason, str(caught.value)
    return caught.value


# --- what is sent, what comes back --------------------------------------------------------------------


def test_a_json_object_comes_back_with_its_status_and_cache_control(local):
    response = local.get("/ok")
    assert (response.status, response.document) == (200, {"issuer": "https://idp.example.com", "keys": []})
    assert response.cache_control == "max-age=60, public"


def test_the_request_is_a_get_for_uncompressed_json_on_a_closing_connection(local):
    local.get("/ok", public_only=True)
    method, path, headers, _ = local.server.requests[-1]
    assert (method, path) == ("GET", "/ok")
    assert headers["Host"] == f"localhost:{local.server.server_address[1]}"
    assert headers["Accept"] == "application/json"
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Connection"] == "close"
    assert headers["User-Agent"].startswith("wallet-mcp/")


def test_a_form_is_posted_and_an_oauth_error_body_comes_back(local):
    form = {"grant_type": "authorization_code", "code": "a b&c"}
    response = post_form(local.url("/error"), form, local.policy(), {"Authorization": "Basic eDp5"})
    assert (response.status, response.document) == (400, {"error": "invalid_grant"})
    method, _, headers, body = local.server.requests[-1]
    assert method == "POST"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["Authorization"] == "Basic eDp5"
    assert parse_qs(body.decode()) == {"grant_type": ["authorization_code"], "code": ["a b&c"]}


@pytest.mark.parametrize("path", ["/vendor", "/chunked", "/until-close"])
def test_json_subtypes_and_every_body_framing_are_read(local, path):
    assert local.get(path).document["issuer"] == "https://idp.example.com"


@pytest.mark.parametrize(
    ("path", "reason", "status"),
    [
        ("/html", "not_json", 200),
        ("/html-503", "not_json", 503),
        ("/gzip", "compressed", 200),
        ("/short", "protocol", None),
        ("/duplicate", "invalid_json", 200),
        ("/nan", "invalid_json", 200),
        ("/deep", "invalid_json", 200),
        ("/latin-1", "invalid_json", 200),
        ("/array", "not_object", 200),
    ],
)
def test_unusable_answers_are_refused(local, path, reason, status):
    assert _refused(reason, lambda: local.get(path)).status == status


def test_a_refusal_is_an_upstream_failure_with_a_message_fit_for_a_user(local):
    failure = _refused("not_json", lambda: local.get("/html-503"))
    assert isinstance(failure, UpstreamUnavailable)
    assert str(failure) == "the server answered HTTP 503 without JSON"
    for reason in get_args(Reason):
        assert str(FetchFailed(reason)), reason


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_and_not_followed(local, code):
    before = len(local.server.requests)
    assert _refused("redirect", lambda: local.get(f"/redirect-{code}")).status == code
    assert [path for _, path, _, _ in local.server.requests[before:]] == [f"/redirect-{code}"]


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example.com/.well-known/openid-configuration",
        "ftp://localhost/x",
        "https://u:p@idp.example/x",
    ],
)
def test_only_https_urls_are_fetched(url):
    _refused("url", lambda: get_json(url, FetchPolicy(allow_loopback=True, resolver=never_called)))


def test_http_to_a_loopback_host_needs_the_development_switch(local):
    _refused("url", lambda: local.get("/ok", allow_loopback=False))
    assert local.lookups == []


# --- how much, how long ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/big-declared", "/big-undeclared", "/big-chunked", "/header-flood"])
def test_an_oversized_answer_is_refused(local, path):
    _refused("too_large", lambda: local.get(path))


def _refused_in_time(fetch: Callable[[], Any]) -> None:
    started = time.monotonic()
    _refused("timeout", fetch)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("path", ["/silent", "/drip-body", "/drip-headers"])
def test_a_slow_server_is_cut_at_the_deadline(local, path):
    _refused_in_time(lambda: local.get(path, timeout_seconds=0.5))


def test_a_server_that_accepts_and_never_answers_is_cut_at_the_deadline():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP (backlog), never speaks
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x"
        _refused_in_time(lambda: get_json(url, FetchPolicy(allow_loopback=True, timeout_seconds=0.5)))


def test_a_lookup_that_hangs_counts_against_the_deadline():
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(10)
        return ["93.184.216.34"]

    try:
        policy = FetchPolicy(timeout_seconds=0.3, resolver=hanging)
        _refused_in_time(lambda: get_json("https://idp.example.com/x", policy))
    finally:
        release.set()


def test_policy_refuses_nonsense_bounds():
    with pytest.raises(ValueError):
        FetchPolicy(timeout_seconds=0)
    with pytest.raises(ValueError):
        FetchPolicy(max_bytes=0)


# --- where it connects: the address guard (SSRF) --------------------------------------------------------


INTERNAL = [
    ("127.0.0.1",),
    ("10.0.0.1",),
    ("172.16.0.1",),
    ("192.168.1.10",),
    ("169.254.169.254",),
    ("100.64.0.1",),
    ("0.0.0.0",),
    ("::1",),
    ("::ffff:169.254.169.254",),
    ("fe80::1",),
    ("fd00::1",),
    ("93.184.216.34", "10.0.0.1"),
]


@pytest.mark.parametrize("addresses", INTERNAL, ids="+".join)
def test_the_guard_refuses_a_name_with_any_address_that_is_not_public(addresses, recorded_connects):
    policy = FetchPolicy(public_only=True, resolver=resolves_to(*addresses))
    _refused("address", lambda: get_json("https://metadata.example.com/x", policy))
    assert recorded_connects == []


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/x",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "http://localhost/x",
        "https://[::1]/x",
        "https://[::ffff:a9fe:a9fe]/x",
    ],
)
def test_the_guard_refuses_internal_ip_literals_and_loopback_names(url, recorded_connects):
    policy = FetchPolicy(public_only=True, resolver=resolves_to("127.0.0.1"))
    _refused("address", lambda: get_json(url, policy))
    assert recorded_connects == []


@pytest.mark.parametrize("addresses", [("10.0.0.1",), ("169.254.169.254",), ("127.0.0.1", "10.0.0.1")])
def test_the_development_switch_lets_the_guard_pass_loopback_and_nothing_else(addresses):
    policy = FetchPolicy(public_only=True, allow_loopback=True, resolver=resolves_to(*addresses))
    _refused("address", lambda: get_json("https://client.example.com/x", policy))


def test_the_guard_passes_loopback_with_the_switch(local):
    assert local.get("/ok", public_only=True).status == 200


def test_the_vetted_address_is_connected_to_and_the_name_never_looked_up_again(
    recorded_connects, monkeypatch
):
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a second lookup would open a DNS-rebinding window")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    policy = FetchPolicy(public_only=True, resolver=resolves_to("93.184.216.34", "2606:4700::1111"))
    _refused("connect", lambda: get_json("https://client.example.com:8443/x", policy))
    assert [a[:2] for a in recorded_connects] == [("93.184.216.34", 8443), ("2606:4700::1111", 8443)]


def test_without_the_guard_a_configured_host_is_connected_to_wherever_it_resolves(recorded_connects):
    # the upstream provider's case: its URLs are the operator's configuration, not a requester's
    policy = FetchPolicy(resolver=resolves_to("10.0.0.1"))
    _refused("connect", lambda: get_json("https://idp.internal.example/x", policy))
    assert [a[:2] for a in recorded_connects] == [("10.0.0.1", 443)]


@pytest.mark.parametrize(
    "resolver",
    [
        resolves_to(),
        resolves_to("not-an-address"),
        lambda host, port: "93.184.216.34",
        lambda host, port: (_ for _ in ()).throw(socket.gaierror(-2, "Name or service not known")),
    ],
    ids=["nothing", "garbage", "not-a-list", "gaierror"],
)
def test_a_failed_lookup_is_refused(resolver):
    _refused("resolve", lambda: get_json("https://idp.example.com/x", FetchPolicy(resolver=resolver)))
