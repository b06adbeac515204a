"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-00): the client_id URL
rules (§3), the SSRF-guarded fetch (§6.5, §6.6) against a real local HTTPS server, and validation
of the document (§4.1, §6.2)."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qs, quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.resolvers import never_called, resolves_to
from wallet_mcp.oauth.server.client_id_metadata import (
    REFUSALS,
    ClientIdMetadata,
    ClientMetadataError,
    FetchPolicy,
    fetch_client_metadata,
    is_client_id_metadata_url,
    validate_client_metadata,
)
from wallet_mcp.primitives import fetch

# --- The client_id URL (§3) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/client.json",
        "https://example.com/a",
        "https://example.com/oauth/client-metadata.json",
        "https://example.com:8443/client.json",
        "https://example.com/client.json?version=2",
        "https://[2001:db8::1]/client.json",
        "https://93.184.216.34/client.json",
        "https://example.com/..client.json",
        "https://example.com/.well-known/client.json",
        "https://example.com/" + "a" * (2000 - len("https://example.com/")),
    ],
)
def test_https_urls_with_a_path_are_client_id_metadata_urls(url):
    assert is_client_id_metadata_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "client-123",
        "/relative/client.json",
        "http://example.com/client.json",
        "ftp://example.com/client.json",
        "https://example.com",
        "https://example.com/",
        "https://example.com/?version=2",
        "https:///client.json",
        "https:/client.json",
        "https://example.com/client.json#",
        "https://example.com/client.json#section",
        "https://user@example.com/client.json",
        "https://user:secret@example.com/client.json",
        "https://@example.com/client.json",
        "https://example.com/./client.json",
        "https://example.com/a/../client.json",
        "https://example.com/a/..",
        "https://example.com/%2e%2e/client.json",
        "https://example.com/%2E/client.json",
        "https://example.com/.%2e/client.json",
        "https://example.com:99999/client.json",
        "https://example.com:port/client.json",
        "https://example.com:0/client.json",
        "https://exa mple.com/client.json",
        "https://example.com/client .json",
        "https://example.com/client.json\r\nX-Injected: 1",
        "https://example.com/client.json\t",
        "https://bücher.example/client.json",
        "https://example.com\\@evil.example/client.json",
        "https://example.com/" + "a" * (2001 - len("https://example.com/")),
    ],
)
def test_urls_the_draft_forbids_are_not_client_id_metadata_urls(url):
    assert not is_client_id_metadata_url(url)


def test_a_url_that_is_not_a_client_id_url_is_not_fetched():
    with pytest.raises(ClientMetadataError, match="not a valid"):
        fetch_client_metadata("http://example.com/client.json", FetchPolicy(resolver=never_called))


# --- SSRF: which addresses may be fetched (§6.5) ---------------------------------------------------


NOT_PUBLIC = [
    ("10.0.0.1",),
    ("192.168.1.10",),
    ("172.16.0.1",),
    ("127.0.0.1",),
    ("127.8.9.10",),
    ("169.254.169.254",),
    ("100.64.0.1",),
    ("0.0.0.0",),
    ("255.255.255.255",),
    ("224.0.0.1",),
    ("198.18.0.1",),
    ("240.0.0.1",),
    ("::1",),
    ("::",),
    ("::ffff:10.0.0.1",),
    ("::ffff:127.0.0.1",),
    ("::ffff:169.254.169.254",),
    ("fe80::1",),
    ("fd00::1",),
    ("fec0::1",),
    ("ff02::1",),
    ("2002:a00:1::",),
    ("64:ff9b::a00:1",),
    ("::a00:1",),
    ("93.184.216.34", "10.0.0.1"),
    ("2606:4700::1111", "fd00::1"),
]


@pytest.mark.parametrize("addresses", NOT_PUBLIC, ids=lambda a: "+".join(a))
def test_a_host_resolving_to_any_address_that_is_not_public_is_refused(addresses):
    policy = FetchPolicy(resolver=resolves_to(*addresses))
    with pytest.raises(ClientMetadataError, match="not public"):
        fetch_client_metadata("https://client.example.com/client.json", policy)


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/client.json",
        "https://127.0.0.1/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/client.json",
        "https://[::ffff:a00:1]/client.json",
    ],
)
def test_an_ip_literal_host_is_checked_without_a_lookup(url):
    with pytest.raises(ClientMetadataError, match="not public"):
        fetch_client_metadata(url, FetchPolicy(resolver=never_called))


@pytest.mark.parametrize(
    "addresses",
    [("10.0.0.1",), ("169.254.169.254",), ("100.64.0.1",), ("::ffff:10.0.0.1",), ("127.0.0.1", "10.0.0.1")],
    ids=lambda a: "+".join(a),
)
def test_allow_loopback_permits_loopback_only(addresses):
    policy = FetchPolicy(allow_loopback=True, resolver=resolves_to(*addresses))
    with pytest.raises(ClientMetadataError, match="not public"):
        fetch_client_metadata("https://client.example.com/client.json", policy)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "2002:5db8:d822::1"])
def test_a_public_address_passes_the_guard_and_is_connected_to_directly(address, recorded_connects):
    policy = FetchPolicy(resolver=resolves_to(address))
    with pytest.raises(ClientMetadataError, match="could not connect"):
        fetch_client_metadata("https://client.example.com:8443/client.json", policy)
    assert [a[:2] for a in recorded_connects] == [(address, 8443)]


def test_every_resolved_address_is_tried_in_order(recorded_connects):
    policy = FetchPolicy(resolver=resolves_to("93.184.216.34", "93.184.216.35"))
    with pytest.raises(ClientMetadataError, match="could not connect"):
        fetch_client_metadata("https://client.example.com/client.json", policy)
    assert [a[:2] for a in recorded_connects] == [("93.184.216.34", 443), ("93.184.216.35", 443)]


@pytest.mark.parametrize(
    "resolver",
    [
        resolves_to(),
        resolves_to("not-an-address"),
        lambda host, port: "93.184.216.34",
        lambda host, port: (_ for _ in ()).throw(socket.gaierror(-2, "Name or service not known")),
        lambda host, port: (_ for _ in ()).throw(RuntimeError("resolver bug")),
    ],
    ids=["nothing", "garbage", "not-a-list", "gaierror", "resolver-bug"],
)
def test_a_failed_lookup_is_refused(resolver):
    with pytest.raises(ClientMetadataError, match="could not resolve"):
        fetch_client_metadata("https://client.example.com/client.json", FetchPolicy(resolver=resolver))


def test_a_lookup_that_hangs_is_bounded_by_the_timeout():
    release = threading.Event()

    def hanging(host: str, port: int) -> list[str]:
        release.wait(10)
        return ["93.184.216.34"]

    started = time.monotonic()
    try:
        with pytest.raises(ClientMetadataError, match="timed out"):
            fetch_client_metadata(
                "https://client.example.com/client.json",
                FetchPolicy(timeout_seconds=0.3, resolver=hanging),
            )
    finally:
        release.set()
    assert time.monotonic() - started < 3


def test_every_refusal_of_the_fetcher_has_words_here():
    assert set(REFUSALS) == set(get_args(fetch.Reason))


def test_the_address_guard_is_always_on_for_documents():
    assert FetchPolicy().transport().public_only
    assert FetchPolicy(allow_loopback=True).transport().public_only


def test_policy_refuses_nonsense_bounds():
    with pytest.raises(ValueError):
        FetchPolicy(timeout_seconds=0)
    with pytest.raises(ValueError):
        FetchPolicy(min_cache_seconds=600, max_cache_seconds=60)


# --- A real HTTPS server on 127.0.0.1 --------------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    cert_chain: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throw-away CA and a certificate it issued for localhost and 127.0.0.1."""
    directory = tmp_path_factory.mktemp("pki")
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("CIMD test CA"))
        .issuer_name(_name("CIMD test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(ca=directory / "ca.pem", cert_chain=directory / "server.pem", key=directory / "server.key")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert_chain.write_bytes(
        leaf_cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    pki.key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pki


def good_document(client_id: str) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_name": "Example MCP Client",
        "redirect_uris": ["http://127.0.0.1:3000/callback"],
        "token_endpoint_auth_method": "none",
    }


def _send(
    handler: BaseHTTPRequestHandler,
    status: str,
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),),
    *,
    length: bool = True,
) -> None:
    """Write a response byte for byte, then close: the client sees exactly what a test describes."""
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers), "Connection: close"]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    handler.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    handler.close_connection = True


def _chunked(body: bytes, size: int = 1000) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"


class _Handler(BaseHTTPRequestHandler):
    server: CimdServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        path, _, query = self.path.partition("?")
        url = f"https://{self.headers['Host']}{self.path}"
        document = json.dumps(good_document(url)).encode()
        padded = b"{" + b" " * 6000 + b'"a": 1}'
        match path:
            case "/good":
                cache = parse_qs(query).get("cc")
                headers = [("Content-Type", "application/json; charset=utf-8")]
                headers += [("Cache-Control", value) for value in cache or ()]
                _send(self, "200 OK", document, tuple(headers))
            case "/vendor-json":
                _send(self, "200 OK", document, (("Content-Type", "application/vnd.example.client+json"),))
            case "/chunked":
                headers = (("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"))
                _send(self, "200 OK", _chunked(document, 16), headers, length=False)
            case "/until-close":
                _send(self, "200 OK", document, length=False)
            case "/redirect":
                _send(self, "302 Found", b"", (("Location", "/good"), ("Content-Type", "application/json")))
            case "/permanent-redirect":
                _send(self, "308 Permanent Redirect", b"", (("Location", "/good"),))
            case "/missing":
                _send(self, "404 Not Found", b'{"error": "not found"}')
            case "/missing-html":
                _send(self, "404 Not Found", b"<h1>Not Found</h1>", (("Content-Type", "text/html"),))
            case "/server-error":
                _send(self, "503 Service Unavailable", b"{not json")
            case "/html":
                _send(self, "200 OK", document, (("Content-Type", "text/html"),))
            case "/no-type":
                _send(self, "200 OK", document, ())
            case "/gzip":
                _send(
                    self,
                    "200 OK",
                    document,
                    (("Content-Type", "application/json"), ("Content-Encoding", "gzip")),
                )
            case "/big-declared":
                _send(self, "200 OK", padded)
            case "/big-undeclared":
                _send(self, "200 OK", padded, length=False)
            case "/big-chunked":
                headers = (("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"))
                _send(self, "200 OK", _chunked(padded), headers, length=False)
            case "/huge-headers":
                headers = tuple((f"X-Filler-{i}", "x" * 1000) for i in range(30))
                _send(self, "200 OK", document, (("Content-Type", "application/json"), *headers))
            case "/short":
                lines = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
                self.wfile.write(lines.encode() + document[:20])
                self.close_connection = True
            case "/not-json":
                _send(self, "200 OK", b"{not json")
            case "/array":
                _send(self, "200 OK", json.dumps([good_document(url)]).encode())
            case "/string":
                _send(self, "200 OK", b'"https://localhost/"')
            case "/deep":
                _send(self, "200 OK", b"[" * 2000 + b"]" * 2000)
            case "/duplicate-key":
                _send(
                    self,
                    "200 OK",
                    b'{"client_id": "https://a.example/x", "client_id": "https://b.example/x"}',
                )
            case "/nan":
                _send(self, "200 OK", b'{"client_id": NaN}')
            case "/latin-1":
                _send(self, "200 OK", '{"client_name": "Caf\u00e9"}'.encode("latin-1"))
            case "/silent":
                self.server.release.wait(10)
            case "/drip":
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
                )
                for _ in range(4000):
                    if self.server.release.wait(0.05):
                        break
                    try:
                        self.wfile.write(b" ")
                    except OSError:
                        break
                self.close_connection = True
            case _:
                _send(self, "500 Internal Server Error", b"{}")


class CimdServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        # The handshake happens in each request's thread, so a client that gives up on the
        # certificate cannot stall the accept loop.
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (timeouts, refused certificates) are what several tests do


@pytest.fixture(scope="module")
def server(pki: Pki) -> Iterator[CimdServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_chain, pki.key)
    httpd = CimdServer(context)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@dataclass
class Local:
    """The local server as a client would reach it: `https://localhost:<port>`, trusted, loopback allowed."""

    server: CimdServer
    trusted: ssl.SSLContext
    lookups: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.server.port}{path}"

    def resolver(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return ["127.0.0.1"]

    def policy(self, **overrides: Any) -> FetchPolicy:
        settings: dict[str, Any] = {
            "allow_loopback": True,
            "ssl_context": self.trusted,
            "resolver": self.resolver,
            "timeout_seconds": 5.0,
        }
        settings.update(overrides)
        return FetchPolicy(**settings)

    def fetch(self, path: str, **overrides: Any) -> Any:
        return fetch_client_metadata(self.url(path), self.policy(**overrides))


@pytest.fixture
def local(server: CimdServer, pki: Pki) -> Local:
    return Local(server=server, trusted=ssl.create_default_context(cafile=str(pki.ca)))


def test_a_good_document_is_fetched_with_its_cache_lifetime(local):
    fetched = local.fetch("/good?cc=" + quote("max-age=120"))
    assert fetched.document == good_document(local.url("/good?cc=max-age%3D120"))
    assert fetched.cache_seconds == 120


def test_the_request_is_a_plain_get_for_json(local):
    local.fetch("/good")
    path, headers = local.server.requests[-1]
    assert path == "/good"
    assert headers["Host"] == f"localhost:{local.server.port}"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("wallet-mcp/")
    assert headers["Connection"] == "close"


def test_the_host_is_resolved_once_and_never_again(local, monkeypatch):
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a second lookup would open a DNS-rebinding window")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(socket, "gethostbyname", no_dns)
    local.fetch("/good")
    assert local.lookups == ["localhost"]


def test_the_system_resolver_is_used_by_default(local):
    fetched = local.fetch("/good", resolver=None)
    assert fetched.document["client_id"] == local.url("/good")


def test_an_ip_literal_host_is_connected_to_without_a_lookup(local):
    url = local.url("/good", host="127.0.0.1")
    fetched = fetch_client_metadata(url, local.policy(resolver=never_called))
    assert fetched.document["client_id"] == url


def test_the_fetched_document_validates(local):
    url = local.url("/good")
    metadata = validate_client_metadata(url, fetch_client_metadata(url, local.policy()).document)
    assert metadata.client_id == url
    assert metadata.client_name == "Example MCP Client"
    assert metadata.application_type == "native"


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        (None, 300),
        ("max-age=120", 120),
        ("public, max-age=600", 600),
        ('max-age="900"', 900),
        ("max-age=5", 60),
        ("max-age=0", 60),
        ("max-age=999999999999", 86400),
        ("max-age=abc", 60),
        ("max-age=120, max-age=30", 120),
        ("private", 300),
        ("no-store", 0),
        ("no-cache", 0),
        ("No-Store", 0),
        ("max-age=600, no-store", 0),
    ],
)
def test_cache_lifetime_follows_cache_control_within_bounds(local, cache_control, seconds):
    path = "/good" if cache_control is None else "/good?cc=" + quote(cache_control)
    assert local.fetch(path).cache_seconds == seconds


def test_cache_bounds_are_the_policys(local):
    policy = {"min_cache_seconds": 10, "default_cache_seconds": 20, "max_cache_seconds": 30}
    assert local.fetch("/good?cc=" + quote("max-age=1"), **policy).cache_seconds == 10
    assert local.fetch("/good?cc=" + quote("max-age=100"), **policy).cache_seconds == 30
    assert local.fetch("/good", **policy).cache_seconds == 20


@pytest.mark.parametrize("path", ["/vendor-json", "/chunked", "/until-close"])
def test_json_subtypes_and_every_body_framing_are_accepted(local, path):
    assert local.fetch(path).document["client_id"] == local.url(path)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/redirect", "redirects"),
        ("/permanent-redirect", "redirects"),
        ("/missing", "HTTP 404"),
        ("/missing-html", "HTTP 404"),
        ("/server-error", "HTTP 503"),
        ("/html", "not served as JSON"),
        ("/no-type", "not served as JSON"),
        ("/gzip", "compressed"),
        ("/big-declared", "too large"),
        ("/big-undeclared", "too large"),
        ("/big-chunked", "too large"),
        ("/huge-headers", "too large"),
        ("/short", "unusable HTTP response"),
        ("/not-json", "not valid JSON"),
        ("/deep", "not valid JSON"),
        ("/duplicate-key", "not valid JSON"),
        ("/nan", "not valid JSON"),
        ("/latin-1", "not valid JSON"),
        ("/array", "not a JSON object"),
        ("/string", "not a JSON object"),
    ],
)
def test_unusable_responses_are_refused(local, path, reason):
    with pytest.raises(ClientMetadataError, match=reason):
        local.fetch(path)


def test_a_redirect_is_not_followed(local):
    before = len(local.server.requests)
    with pytest.raises(ClientMetadataError):
        local.fetch("/redirect")
    assert [path for path, _ in local.server.requests[before:]] == ["/redirect"]


def test_loopback_is_refused_unless_allowed(local):
    before = len(local.server.requests)
    with pytest.raises(ClientMetadataError, match="not public"):
        local.fetch("/good", allow_loopback=False)
    assert len(local.server.requests) == before  # refused before connecting


def test_a_certificate_from_an_untrusted_ca_is_refused(local):
    with pytest.raises(ClientMetadataError, match="certificate"):
        local.fetch("/good", ssl_context=None)


def test_the_certificate_must_name_the_url_host_not_the_address_connected_to(local):
    url = local.url("/good", host="client.example.test")  # resolved to 127.0.0.1, not in the certificate
    with pytest.raises(ClientMetadataError, match="certificate"):
        fetch_client_metadata(url, local.policy())


def test_a_closed_port_is_refused():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    policy = FetchPolicy(allow_loopback=True, resolver=resolves_to("127.0.0.1"))
    with pytest.raises(ClientMetadataError, match="could not connect"):
        fetch_client_metadata(f"https://localhost:{port}/client.json", policy)


def _assert_refused_quickly(fetch: Callable[[], Any]) -> None:
    started = time.monotonic()
    with pytest.raises(ClientMetadataError, match="timed out"):
        fetch()
    assert time.monotonic() - started < 3


def test_a_server_that_never_starts_tls_is_refused_within_the_timeout(local):
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP (backlog), never speaks
        url = f"https://localhost:{silent.getsockname()[1]}/client.json"
        _assert_refused_quickly(lambda: fetch_client_metadata(url, local.policy(timeout_seconds=0.5)))


def test_a_server_that_never_answers_is_refused_within_the_timeout(local):
    _assert_refused_quickly(lambda: local.fetch("/silent", timeout_seconds=0.5))


def test_a_server_dripping_bytes_cannot_stretch_the_timeout(local):
    _assert_refused_quickly(lambda: local.fetch("/drip", timeout_seconds=0.5))


# --- Validating the document (§4.1, §6.2) ----------------------------------------------------------

URL = "https://client.example.com/oauth/client.json"
GOOD: dict[str, Any] = {
    "client_id": URL,
    "client_name": "Example MCP Client",
    "client_uri": "https://client.example.com",
    "logo_uri": "https://client.example.com/logo.png",
    "redirect_uris": ["http://127.0.0.1:3000/callback", "http://localhost:3000/callback"],
    "grant_types": ["authorization_code"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
}
DROP = object()


def document(**changes: Any) -> dict[str, Any]:
    result = {**GOOD, **changes}
    return {key: value for key, value in result.items() if value is not DROP}


def test_a_good_document_is_accepted():
    assert validate_client_metadata(URL, GOOD) == ClientIdMetadata(
        client_id=URL,
        client_name="Example MCP Client",
        redirect_uris=("http://127.0.0.1:3000/callback", "http://localhost:3000/callback"),
        grant_types=("authorization_code",),
        scope=None,
        client_uri="https://client.example.com",
        logo_uri="https://client.example.com/logo.png",
        application_type="native",
    )


def test_a_minimal_document_gets_the_defaults():
    metadata = validate_client_metadata(
        URL, {"client_id": URL, "redirect_uris": ["https://client.example.com/cb"]}
    )
    assert metadata.client_name == "client.example.com"
    assert metadata.grant_types == ("authorization_code",)
    assert metadata.scope is None
    assert metadata.client_uri is None
    assert metadata.logo_uri is None
    assert metadata.application_type == "web"


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"redirect_uris": ["com.example.app:/callback"]}, lambda m: m.application_type == "native"),
        (
            {"redirect_uris": ["https://client.example.com/cb"], "application_type": "web"},
            lambda m: m.application_type == "web",
        ),
        ({"application_type": "native"}, lambda m: m.application_type == "native"),
        (
            {"grant_types": ["authorization_code", "refresh_token"]},
            lambda m: m.grant_types == ("authorization_code", "refresh_token"),
        ),
        (
            {"grant_types": ["authorization_code", "authorization_code"]},
            lambda m: m.grant_types == ("authorization_code",),
        ),
        (
            {"scope": "mcp:tools:call  wallet:accounts:read"},
            lambda m: m.scope == ("mcp:tools:call", "wallet:accounts:read"),
        ),
        ({"scope": ""}, lambda m: m.scope is None),
        ({"client_name": "\x00Evil\n Client\u202e\t\x7f"}, lambda m: m.client_name == "Evil Client"),
        ({"client_name": "  \t "}, lambda m: m.client_name == "client.example.com"),
        ({"client_name": "n" * 100}, lambda m: m.client_name == "n" * 100),
        ({"client_name": None, "scope": None, "grant_types": None}, lambda m: m.scope is None),
        ({"token_endpoint_auth_method": DROP}, lambda m: True),
        ({"response_types": DROP}, lambda m: True),
        ({"software_id": "x", "contacts": ["a@b.example"]}, lambda m: True),
        (
            {"redirect_uris": [f"http://127.0.0.1:{3000 + i}/cb" for i in range(10)]},
            lambda m: len(m.redirect_uris) == 10,
        ),
        (
            {"redirect_uris": ["http://127.0.0.1:3000/cb", "http://127.0.0.1:3000/cb"]},
            lambda m: m.redirect_uris == ("http://127.0.0.1:3000/cb",),
        ),
    ],
)
def test_acceptable_variations(changes, check):
    assert check(validate_client_metadata(URL, document(**changes)))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"client_id": "https://client.example.com/oauth/other.json"}, "does not match"),
        ({"client_id": URL + "/"}, "does not match"),
        ({"client_id": "https://Client.example.com/oauth/client.json"}, "does not match"),
        ({"client_id": DROP}, "does not match"),
        ({"client_id": 42}, "does not match"),
        ({"redirect_uris": DROP}, "redirect_uris"),
        ({"redirect_uris": []}, "redirect_uris must not be empty"),
        ({"redirect_uris": [f"http://127.0.0.1:{3000 + i}/cb" for i in range(11)]}, "at most 10"),
        ({"redirect_uris": "http://127.0.0.1:3000/callback"}, "list of strings"),
        ({"redirect_uris": [42]}, "list of strings"),
        ({"redirect_uris": {"uri": "http://127.0.0.1/cb"}}, "list of strings"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "redirect_uris"),
        ({"redirect_uris": ["data:text/html,hi"]}, "redirect_uris"),
        ({"redirect_uris": ["http://attacker.example/cb"]}, "loopback"),
        ({"redirect_uris": ["https://client.example.com/cb#frag"]}, "fragment"),
        ({"redirect_uris": ["/relative"]}, "redirect_uris"),
        ({"redirect_uris": ["com.example.app:/cb"], "application_type": "web"}, "redirect_uris"),
        ({"application_type": "desktop"}, "application_type"),
        ({"application_type": 1}, "application_type"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "client secret"),
        ({"token_endpoint_auth_method": "client_secret_post"}, "client secret"),
        ({"token_endpoint_auth_method": "client_secret_jwt"}, "client secret"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "exactly one of jwks or jwks_uri"),
        ({"token_endpoint_auth_method": "tls_client_auth"}, "must be none"),
        ({"token_endpoint_auth_method": ["none"]}, "must be a string"),
        ({"client_secret": "s3cret"}, "client secret"),
        ({"client_secret_expires_at": 0}, "client secret"),
        ({"jwks_uri": "https://client.example.com/jwks.json"}, "jwks"),
        ({"jwks": {"keys": []}}, "jwks"),
        ({"grant_types": ["client_credentials"]}, "grant_types"),
        ({"grant_types": ["authorization_code", "client_credentials"]}, "grant_types"),
        ({"grant_types": ["refresh_token"]}, "grant_types"),
        ({"grant_types": ["implicit"]}, "grant_types"),
        ({"grant_types": []}, "grant_types"),
        ({"grant_types": "authorization_code"}, "list of strings"),
        ({"response_types": ["token"]}, "response_types"),
        ({"response_types": ["code", "token"]}, "response_types"),
        ({"response_types": "code"}, "response_types"),
        ({"scope": "mcp:tools:call wallet:everything"}, "does not offer"),
        ({"scope": 'mcp:tools:call "quoted"'}, "malformed"),
        ({"scope": ["mcp:tools:call"]}, "space-separated string"),
        ({"client_name": "n" * 101}, "at most 100"),
        ({"client_name": 42}, "client_name must be a string"),
        ({"client_name": ["Example"]}, "client_name must be a string"),
        ({"client_uri": "javascript:alert(1)"}, "client_uri"),
        ({"client_uri": "http://client.example.com"}, "client_uri"),
        ({"client_uri": "https://" + "a" * 2000 + ".example"}, "client_uri"),
        ({"client_uri": 42}, "client_uri"),
        ({"logo_uri": "data:image/png;base64,AAAA"}, "logo_uri"),
        ({"logo_uri": "https://user:pw@client.example.com/logo.png"}, "logo_uri"),
    ],
)
def test_unacceptable_documents_are_refused(changes, reason):
    with pytest.raises(ClientMetadataError, match=reason):
        validate_client_metadata(URL, document(**changes))


@pytest.mark.parametrize("not_a_document", [[GOOD], "{}", None, 42])
def test_a_document_that_is_not_an_object_is_refused(not_a_document):
    with pytest.raises(ClientMetadataError, match="not a JSON object"):
        validate_client_metadata(URL, not_a_document)


def test_a_document_for_a_url_that_is_not_a_client_id_url_is_refused():
    url = "http://client.example.com/oauth/client.json"
    with pytest.raises(ClientMetadataError, match="not a valid"):
        validate_client_metadata(url, document(client_id=url))


ODD_VALUES = [None, True, 0, -1, 1.5, "", "x", [], [None], [1, "a"], {}, {"a": 1}, ["code"], [[]]]
FIELDS = [*GOOD, "scope", "application_type", "jwks", "client_secret"]


@pytest.mark.parametrize("key", FIELDS)
@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_any_json_value_in_any_field_gives_a_result_or_a_client_metadata_error(key, value):
    try:
        result = validate_client_metadata(URL, document(**{key: value}))
    except ClientMetadataError:
        return
    assert isinstance(result, ClientIdMetadata)
