"""Which redirect URIs may be registered: loopback means a loopback address, not a name."""

from __future__ import annotations

import pytest

from wallet_mcp.oauth.errors import InvalidRedirectUri
from wallet_mcp.oauth.redirect_uris import (
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
