import pytest

from wallet_mcp.primitives import bearer

PRM = "https://wallet.example.com/.well-known/oauth-protected-resource/mcp"


def test_no_authorization_header_means_no_token():
    assert bearer.bearer_token(None) is None


@pytest.mark.parametrize("header", ["Bearer abc.def-_~+/=", "bearer abc", "BEARER  abc "])
def test_bearer_scheme_is_case_insensitive(header):
    assert bearer.bearer_token(header) is not None


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer a b", 'Bearer a"b', "Token abc"])
def test_anything_but_one_bearer_token_is_malformed(header):
    with pytest.raises(bearer.MalformedAuthorization):
        bearer.bearer_token(header)


def test_missing_token_challenge_has_no_error_code_but_names_the_metadata():
    challenge = bearer.missing_token(PRM, ["mcp:tools:list"])
    assert challenge.status == 401
    assert challenge.header() == f'Bearer scope="mcp:tools:list", resource_metadata="{PRM}"'


def test_invalid_token_challenge():
    header = bearer.invalid_token(PRM, 'token "expired"').header()
    assert header.startswith('Bearer error="invalid_token", error_description="token \\"expired\\""')
    assert header.endswith(f'resource_metadata="{PRM}"')


def test_insufficient_scope_names_every_scope_the_request_needs():
    challenge = bearer.insufficient_scope(PRM, {"wallet:accounts:write", "mcp:tools:call"})
    assert challenge.status == 403
    assert 'error="insufficient_scope"' in challenge.header()
    assert 'scope="mcp:tools:call wallet:accounts:write"' in challenge.header()
