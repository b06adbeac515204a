"""Which redirect URIs may be registered: loopback means a loopback address, not a name."""

from __future__ import annotations

import pytest

from wallet_mcp.primitives.errors import InvalidRedirectUri
from wallet_mcp.primitives.redirect_uris import (
    ApplicationType,
    infer_application_type,
    is_loopback_host,
    redirect_uri_matches,
    validate_redirect_uri,
)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "127.8.9.10", "::1"])
def test_loopback_hosts(host):
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", [None, "127.evil.example.com", "127.0.0.1.nip.io", "localhost.evil.example", "10.0.0.1", "::2"]
)
def test_names_that_only_look_like_loopback_are_not(host):
    assert not is_loopback_host(host)


@pytest.mark.parametrize("uri", ["http://127.evil.example.com/cb", "http://127.0.0.1.nip.io/cb"])
def test_plain_http_to_a_lookalike_name_is_refused(uri):
    with pytest.raises(InvalidRedirectUri):
        validate_redirect_uri(uri, "native")
    assert infer_application_type([uri]) == "web"


def test_native_loopback_matches_on_any_port_only_for_real_loopback():
    assert redirect_uri_matches(["http://127.0.0.1/cb"], "http://127.0.0.1:53124/cb", "native")
    assert not redirect_uri_matches(["http://127.evil.example/cb"], "http://127.evil.example:8/cb", "native")


# Strict syntax (RFC 3986, ASCII) and the host grammar stricter than RFC 3986's reg-name.
_REFUSED: list[tuple[str, str]] = [
    ("", "empty"),
    ("https://example.com/" + "a" * 2000, "longer than 2000 characters"),
    ("https://exämple.com/cb", "non-ASCII host"),
    ("https://xn--exmple-cua.com/café", "non-ASCII path"),
    ("https://example.com/cb?q=ü", "non-ASCII query"),
    ("https://example.com/cb\n", "trailing newline"),
    ("https://example.com/c\tb", "tab"),
    ("https://example.com/c\rb", "carriage return"),
    ("https://example.com/c\x00b", "NUL"),
    ("https://example.com/c\x7fb", "DEL"),
    ("https://example.com/c\x85b", "C1 control (NEL)"),
    ("https://example.com/c\u00a0b", "no-break space"),
    ("https://example.com/c b", "raw space"),
    (" https://example.com/cb", "leading space"),
    ('https://example.com/c"b', '"'),
    ("https://example.com/c<b>", "<>"),
    ("https://example.com/c\\b", "backslash"),
    ("https://example.com/c^b", "^"),
    ("https://example.com/c`b", "backtick"),
    ("https://example.com/c{b}", "{}"),
    ("https://example.com/c|b", "|"),
    ("https://example.com/c[b]", "[] outside an IP literal"),
    ("https://example.com/c%zzb", "malformed percent-escape"),
    ("https://example.com/c%2", "truncated percent-escape"),
    ("https://example.com/cb#", "empty fragment"),
    ("https://acc.example;acc-injected/cb", "; in the host"),
    ("https://acc.example,x/cb", ", in the host"),
    ("https://a!b.example/cb", "! in the host"),
    ("https://a$b.example/cb", "$ in the host"),
    ("https://a&b.example/cb", "& in the host"),
    ("https://a'b.example/cb", "' in the host"),
    ("https://a(b).example/cb", "() in the host"),
    ("https://a*b.example/cb", "* in the host"),
    ("https://a+b.example/cb", "+ in the host"),
    ("https://a=b.example/cb", "= in the host"),
    ("https://a~b.example/cb", "~ in the host"),
    ("https://exa%6dple.com/cb", "% in the host"),
    ("https://app_1.example.com/cb", "_ in the host"),
    ("https://example.com:/cb", "empty port"),
    ("https://example.com:0/cb", "port 0"),
    ("https://example.com:65536/cb", "port above 65535"),
    ("https://example.com:080a/cb", "port with a letter"),
    ("https://example.com:+80/cb", "signed port"),
    ("https://example.com:80:81/cb", "two ports"),
    ("https://example.com:123456/cb", "six-digit port"),
    ("https://-app.example.com/cb", "label starting with a hyphen"),
    ("https://app-.example.com/cb", "label ending with a hyphen"),
    ("https://app..example.com/cb", "empty label"),
    ("https://.example.com/cb", "leading dot"),
    ("https://example.com./cb", "trailing dot"),
    (f"https://{'a' * 64}.example.com/cb", "64-character label"),
    (f"https://{'.'.join(['a' * 63] * 4)}/cb", "254-character name"),
    ("https://1.2.3.256/cb", "IPv4 part above 255"),
    ("https://1.2.3.04/cb", "IPv4 part with a leading zero"),
    ("https://127.1/cb", "short IPv4 form browsers read as 127.0.0.1"),
    ("https://example.0x7f/cb", "hexadecimal last label browsers read as IPv4"),
    ("https://[v1.x]/cb", "IPvFuture"),
    ("https://[fe80::1%25eth0]/cb", "IPv6 zone identifier"),
    ("https://[::1/cb", "unclosed IPv6 bracket"),
    ("https://[::g]/cb", "IPv6 literal with a non-hex digit"),
    ("https://[1.2.3.4]/cb", "IPv4 in brackets"),
    ("https://::1/cb", "IPv6 without brackets"),
    ("http://[::1]x/cb", "text after the IPv6 literal"),
    ("https://user@example.com/cb", "user-info"),
    ("https://@example.com/cb", "empty user-info"),
    ("https:///cb", "empty host"),
    ("https:/cb", "no authority"),
    ("https://:443/cb", "port without a host"),
    ("//example.com/cb", "no scheme"),
    ("1https://example.com/cb", "scheme starting with a digit"),
    ("javascript:alert(1)", "forbidden scheme"),
    ("JavaScript:alert(1)", "forbidden scheme in capitals"),
    ("com.example.app://a;b/cb", "; in a private-use URI's host"),
    ("com.example.app://:80/cb", "private-use URI with a port and no host"),
    ("com.example.app:/c b", "raw space in a private-use URI"),
]


@pytest.mark.parametrize(("uri", "why"), _REFUSED, ids=[why for _, why in _REFUSED])
@pytest.mark.parametrize("application_type", ["web", "native"])
def test_uris_outside_the_strict_grammar_are_refused(
    uri: str, why: str, application_type: ApplicationType
) -> None:
    with pytest.raises(InvalidRedirectUri):
        validate_redirect_uri(uri, application_type)


@pytest.mark.parametrize(("uri", "why"), _REFUSED, ids=[why for _, why in _REFUSED])
def test_a_presented_uri_that_could_not_be_registered_never_matches(uri: str, why: str) -> None:
    for application_type in ("web", "native"):
        assert not redirect_uri_matches([uri], uri, application_type)  # even if stored under older rules


_ACCEPTED: list[tuple[str, ApplicationType]] = [
    ("https://app.example.com/cb", "web"),
    ("https://APP.Example.COM/cb", "web"),
    ("HTTPS://app.example.com/cb", "web"),
    ("https://app.example.com", "web"),
    ("https://app.example.com:8443/cb?x=1&y=%20;z=a,b", "web"),
    ("https://app.example.com/a/b;v=1/c:d@e!$&'()*+,=~", "web"),
    ("https://app.example.com/cb??x=/y", "web"),
    ("https://xn--exmple-cua.com/cb", "web"),
    ("https://a-b.c-d.example/cb", "web"),
    (f"https://{'a' * 63}.example.com/cb", "web"),
    (f"https://{'.'.join(['a' * 63] * 3)}.{'a' * 61}/cb", "web"),
    ("https://93.184.216.34/cb", "web"),
    ("https://[2001:db8::1]:8443/cb", "web"),
    ("https://[::ffff:192.0.2.1]/cb", "web"),
    ("https://0-1.example/cb", "web"),
    ("http://localhost/cb", "web"),
    ("http://localhost:8080/callback", "web"),
    ("http://127.0.0.1:65535/cb", "native"),
    ("http://[::1]/cb", "native"),
    ("http://[0:0:0:0:0:0:0:1]:53124/cb", "native"),
    ("com.example.wallet:/oauth/cb", "native"),
    ("com.example.wallet://callback/path", "native"),
    ("com.example.wallet:///cb", "native"),
]


@pytest.mark.parametrize(("uri", "application_type"), _ACCEPTED)
def test_uris_inside_the_grammar_are_registered_unchanged(
    uri: str, application_type: ApplicationType
) -> None:
    assert validate_redirect_uri(uri, application_type) == uri


@pytest.mark.parametrize(("uri", "application_type"), _ACCEPTED)
def test_a_registered_uri_matches_itself(uri: str, application_type: ApplicationType) -> None:
    assert redirect_uri_matches([uri], uri, application_type)


@pytest.mark.parametrize(
    ("registered", "presented", "expected"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:53124/cb", True),
        ("http://[::1]:8080/cb", "http://[::1]:9/cb", True),
        ("http://LOCALHOST/cb", "http://localhost:5/cb", True),
        ("http://127.0.0.1/cb?a=1", "http://127.0.0.1:5/cb?a=1", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:5/cb?", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:5/other", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:5/cb?a=1", False),
        ("http://127.0.0.1/cb", "http://localhost:5/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:0/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:5/cb#x", False),
        ("http://127.0.0.1/cb", "http://u@127.0.0.1:5/cb", False),
        ("http://127.0.0.1/cb", "https://127.0.0.1:5/cb", False),
        ("https://app.example.com/cb", "https://app.example.com:443/cb", False),
    ],
)
def test_native_loopback_matching_ignores_only_the_port(
    registered: str, presented: str, expected: bool
) -> None:
    assert redirect_uri_matches([registered], presented, "native") is expected


def test_web_clients_match_exactly() -> None:
    assert redirect_uri_matches(["http://127.0.0.1/cb"], "http://127.0.0.1/cb", "web")
    assert not redirect_uri_matches(["http://127.0.0.1/cb"], "http://127.0.0.1:53124/cb", "web")


def test_a_stored_uri_that_no_longer_parses_does_not_stop_the_others_matching() -> None:
    registered = ["http://127.0.0.1/c b", "http://127.0.0.1/cb"]
    assert redirect_uri_matches(registered, "http://127.0.0.1:9/cb", "native")


@pytest.mark.parametrize(
    ("uris", "expected"),
    [
        (["http://127.0.0.1:9/cb", "com.example.app:/cb"], "native"),
        (["http://[::1]/cb"], "native"),
        (["http://127.0.0.1:9/cb", "https://app.example.com/cb"], "web"),
        (["com.example.app://a;b/cb"], "web"),
        (["http://exämple.com/cb"], "web"),
        ([], "web"),
    ],
)
def test_application_type_is_native_only_when_every_uri_is_loopback_or_private_use(
    uris: list[str], expected: ApplicationType
) -> None:
    assert infer_application_type(uris) == expected


_ANY_TEXT = "".join(chr(c) for c in range(0x80)) + "äé\u2028\ud800\U0001f600"


@pytest.mark.parametrize("application_type", ["web", "native"])
@pytest.mark.parametrize(
    "template",
    [
        "https://ex{c}ample.com/cb",
        "https://example.com/c{c}b",
        "https://example.com:8{c}/cb",
        "http://[::1{c}]/cb",
        "com.example.app:/c{c}b",
        "{c}https://example.com/cb",
        "https://example.com/cb?{c}",
    ],
)
def test_every_single_character_gives_a_result_or_invalid_redirect_uri(
    template: str, application_type: ApplicationType
) -> None:
    for c in _ANY_TEXT:
        uri = template.replace("{c}", c)
        try:
            valid = validate_redirect_uri(uri, application_type) == uri
        except InvalidRedirectUri:
            valid = False
        assert redirect_uri_matches([uri], uri, application_type) is valid
        assert infer_application_type([uri]) in ("web", "native")


# What the MCP hosts register (their public docs and issue trackers): plain private-use schemes.
HOST_REDIRECTS = [
    "cursor://anysphere.cursor-mcp/oauth/callback",  # Cursor
    "vscode://vscode.github-authentication/did-authenticate",  # VS Code's URI handler
    "claude://claude.ai/settings/connectors",  # Claude Desktop's deep link
    "com.example.app:/oauth2redirect",  # RFC 8252 §7.1's own reverse-domain form
]


@pytest.mark.parametrize("uri", HOST_REDIRECTS)
def test_private_use_schemes_of_real_hosts_are_native_redirects(uri):
    assert validate_redirect_uri(uri, "native") == uri
    assert infer_application_type([uri]) == "native"
    assert redirect_uri_matches([uri], uri, "native")


@pytest.mark.parametrize("uri", HOST_REDIRECTS)
def test_a_web_client_still_may_not_use_an_app_scheme(uri):
    with pytest.raises(InvalidRedirectUri, match="not allowed for web clients"):
        validate_redirect_uri(uri, "web")


@pytest.mark.parametrize(
    "uri",
    [
        "ws://app.example/cb",
        "wss://app.example/cb",
        "ftp://app.example/cb",
        "mailto:a@b.example",
        "tel:+100",
        "sms:+100",
        "intent://cb#Intent;end",
        "view-source:https://a.example/",
        "jar:file:/x!/y",
    ],
)
def test_schemes_that_name_no_app_are_never_private_use(uri):
    with pytest.raises(InvalidRedirectUri):
        validate_redirect_uri(uri, "native")
    assert infer_application_type([uri]) == "web"
