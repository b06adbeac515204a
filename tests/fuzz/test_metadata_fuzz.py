"""Discovery documents (RFC 8414, RFC 9728, JWKS) under generated paths and query strings: a document
or a 4xx, never a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.fuzz.gateway import describe, send
from tests.fuzz.strategies import FUZZ, SURROGATE_ESCAPES, encode_form, form_pairs, odd_text, path_segment

pytestmark = pytest.mark.fuzz

DOCUMENTS = [
    "oauth-authorization-server",
    "openid-configuration",
    "oauth-protected-resource",
    "oauth-protected-resource/mcp",
    "oauth-protected-resource/api",
    "jwks.json",
]
SEGMENTS = st.one_of(
    st.sampled_from(
        ["mcp", "api", "", ".", "..", "%2e%2e", "%2F", "%00", "jwks.json", "x" * 3000, *SURROGATE_ESCAPES]
    ),
    odd_text(20).map(path_segment),
    odd_text(20),
)


@st.composite
def paths(draw: st.DrawFn) -> str:
    base = draw(st.one_of(st.sampled_from(DOCUMENTS), st.just("")))
    extra = draw(st.lists(SEGMENTS, max_size=3))
    return "/".join(["/.well-known", base, *extra]) if extra else f"/.well-known/{base}"


@pytest.fixture
def metadata_fn(load_function):
    return load_function("MetadataFunction")


QUERY_VALUES = {
    "resource": st.sampled_from(["mcp", "api", "http://localhost:3000/mcp"]),
    "callback": odd_text(),
}


@settings(FUZZ, max_examples=120)
@given(
    path=paths(),
    query=form_pairs(QUERY_VALUES).map(encode_form),
    method=st.sampled_from(["GET"] * 8 + ["HEAD", "POST", "OPTIONS", "DELETE"]),
)
def test_discovery_is_a_document_or_a_4xx(metadata_fn, path, query, method):
    response = send(metadata_fn, method, path, query=query)
    event(f"{method} {response.status}")
    assert response.status < 500, describe(response)
    if response.status == 200:
        assert json.loads(response.body), describe(response)
