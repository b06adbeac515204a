"""What `login` checks before it redeems a code: the loopback receiver keeps only the response
of the sign-in under way, and the response must carry our `state` and the issuer's `iss`."""

from __future__ import annotations

import httpx
import pytest

from wallet_mcp.cli.discovery import AuthorizationServer, same_issuer, well_known_url
from wallet_mcp.cli.errors import CliError
from wallet_mcp.cli.login import check_authorization_response
from wallet_mcp.cli.loopback import LoopbackReceiver, SignInTimeout

SERVER = AuthorizationServer(
    issuer="http://localhost:3000",
    token_endpoint="http://localhost:3000/oauth/token",
    authorization_endpoint="http://localhost:3000/oauth/authorize",
    registration_endpoint=None,
    revocation_endpoint=None,
    iss_parameter_supported=True,
)


def test_the_receiver_ignores_responses_with_another_state_and_keeps_ours():
    with LoopbackReceiver(expected_state="ours") as receiver:
        assert receiver.redirect_uri.startswith("http://127.0.0.1:")
        forged = httpx.get(receiver.redirect_uri, params={"code": "attacker", "state": "theirs"})
        other_path = httpx.get(receiver.redirect_uri.replace("/callback", "/other"))
        repeated = httpx.get(f"{receiver.redirect_uri}?code=a&code=b&state=ours")
        with pytest.raises(SignInTimeout, match=r"within 0\.2 s"):
            receiver.wait(0.2)
        ours = httpx.get(
            receiver.redirect_uri, params={"code": "c0de", "state": "ours", "iss": SERVER.issuer}
        )
        late = httpx.get(receiver.redirect_uri, params={"code": "again", "state": "ours"})
        params = receiver.wait(1)

    assert (forged.status_code, other_path.status_code, repeated.status_code) == (400, 404, 400)
    assert ours.status_code == 200 and "Signed in" in ours.text
    assert ours.headers["cache-control"] == "no-store"
    assert late.status_code == 409
    assert params == {"code": "c0de", "state": "ours", "iss": SERVER.issuer}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"code": "c", "state": "other", "iss": SERVER.issuer}, "does not carry our state"),
        ({"code": "c", "state": "s", "iss": "http://evil.example"}, "comes from 'http://evil.example'"),
        ({"code": "c", "state": "s"}, "carries no iss"),
        (
            {"error": "access_denied", "state": "s", "iss": SERVER.issuer},
            "sign-in was not completed: access_denied",
        ),
        ({"state": "s", "iss": SERVER.issuer}, "carries no code"),
    ],
)
def test_an_authorization_response_is_checked_before_its_code_is_redeemed(params, message):
    with pytest.raises(CliError, match=message):
        check_authorization_response(params, state="s", server=SERVER)


def test_a_valid_response_gives_its_code():
    params = {"code": "c0de", "state": "s", "iss": SERVER.issuer}
    assert check_authorization_response(params, state="s", server=SERVER) == "c0de"


def test_well_known_urls_and_issuer_comparison():
    assert well_known_url("http://h:3000", "oauth-authorization-server") == (
        "http://h:3000/.well-known/oauth-authorization-server"
    )
    assert well_known_url("http://h/api", "oauth-protected-resource") == (
        "http://h/.well-known/oauth-protected-resource/api"
    )
    assert same_issuer("http://h:3000", "http://h:3000/")
    assert not same_issuer("http://h/tenant", "http://h/tenant/")
    assert not same_issuer("http://h:3000", "http://h:3001")
