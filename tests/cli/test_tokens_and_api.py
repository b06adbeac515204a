"""Token handling and the API client without a stack: the refresh rule, one retry after a 401
and never a loop, rotation across processes, and the files' permissions."""

from __future__ import annotations

import inspect
import json
import stat

import anyio
import httpx2
import pytest
from mcp.shared.auth import OAuthToken

from wallet_mcp.cli.backend import ApiRefused, BackendApi, HttpWallet
from wallet_mcp.cli.bridge import BRIDGED_TOOLS, bridged_registry, local_principal
from wallet_mcp.cli.errors import ServiceError
from wallet_mcp.cli.login import DEFAULT_SCOPE
from wallet_mcp.cli.refresh import refresh_due
from wallet_mcp.cli.storage import FileTokenStorage, LoginRecord, LoginStore
from wallet_mcp.cli.token_sources import ClientCredentialsSource, SavedLoginSource, StaticTokenSource
from wallet_mcp.wallet.service import WalletError, WalletService

ISSUER = "https://wallet.example"
AS_METADATA = {
    "issuer": ISSUER,
    "token_endpoint": f"{ISSUER}/oauth/token",
    "revocation_endpoint": f"{ISSUER}/oauth/revoke",
}
API_METADATA = {"resource": f"{ISSUER}/api", "authorization_servers": [ISSUER]}
BALANCE = {
    "totals": [{"currency": "USD", "amount": "1.00", "amount_minor": 100, "formatted": "$1.00"}],
    "accounts": 1,
}


@pytest.mark.parametrize(
    ("obtained", "expires", "now", "due"),
    [
        (0, 3600, 3569, False),
        (0, 3600, 3570, True),  # 30 s before a one-hour token expires
        (0, 4, 3.1, False),
        (0, 4, 3.2, True),  # 20 % of a 4-second token
        (0, 0, 0, True),  # marked expired after the API refused it
    ],
)
def test_a_token_is_renewed_ahead_of_its_expiry_but_not_on_every_call(obtained, expires, now, due):
    assert refresh_due(obtained, expires, now) is due


class FakeServer:
    """The authorization server and the API, as an httpx2 mock transport that counts requests."""

    def __init__(self, api_statuses: list[int]) -> None:
        self.api_statuses = api_statuses
        self.token_requests: list[dict[str, str]] = []
        self.api_tokens: list[str] = []
        self.clock = 1000.0

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path == "/.well-known/oauth-authorization-server":
            return httpx2.Response(200, json=AS_METADATA)
        if path == "/.well-known/oauth-protected-resource/api":
            return httpx2.Response(200, json=API_METADATA)
        if path == "/oauth/token":
            form = dict(httpx2.QueryParams(request.content.decode()))
            self.token_requests.append(form)
            number = len(self.token_requests)
            return httpx2.Response(
                200,
                json={
                    "access_token": f"access-{number}",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "refresh_token": f"rt_{number}",
                },
            )
        self.api_tokens.append(request.headers["authorization"].removeprefix("Bearer "))
        status = self.api_statuses.pop(0) if self.api_statuses else 200
        if status == 401:
            return httpx2.Response(401, json={"error": "invalid_token", "error_description": "token revoked"})
        if status == 404:
            return httpx2.Response(404, json={"error": "not_found", "error_description": "no such account"})
        return httpx2.Response(status, json=BALANCE)

    def http(self) -> httpx2.Client:
        return httpx2.Client(transport=httpx2.MockTransport(self.handle))


def credentials_source(server: FakeServer, http: httpx2.Client) -> ClientCredentialsSource:
    return ClientCredentialsSource(
        http,
        issuer=ISSUER,
        api_base_url=ISSUER,
        client_id="client",
        client_secret="s3cret",
        scope=None,
        clock=lambda: server.clock,
    )


def test_a_refused_token_is_replaced_once_and_the_call_succeeds():
    server = FakeServer([401, 200])
    with server.http() as http:
        api = BackendApi(ISSUER, credentials_source(server, http), http)
        assert HttpWallet(api).total_balance("ignored").totals == {"USD": 100}

    assert server.api_tokens == ["access-1", "access-2"]
    assert [r["grant_type"] for r in server.token_requests] == ["client_credentials"] * 2
    assert server.token_requests[0]["resource"] == f"{ISSUER}/api"


def test_a_second_refusal_is_a_clear_error_and_never_a_loop():
    server = FakeServer([401, 401, 401])
    with server.http() as http:
        api = BackendApi(ISSUER, credentials_source(server, http), http)
        with pytest.raises(
            WalletError, match="refused the access token \\(token revoked\\); a newly issued token"
        ):
            HttpWallet(api).total_balance("ignored")

    assert len(server.api_tokens) == 2


def test_a_fixed_token_is_not_retried_and_other_refusals_carry_the_apis_description():
    server = FakeServer([401, 404])
    with server.http() as http:
        api = BackendApi(ISSUER, StaticTokenSource("wpat_fixed"), http)
        with pytest.raises(WalletError, match="BACKEND_AUTH_TOKEN is unknown, expired or revoked"):
            HttpWallet(api).total_balance("ignored")
        with pytest.raises(ApiRefused, match="no such account") as refused:
            HttpWallet(api).account("ignored", "../balance")

    assert server.api_tokens == ["wpat_fixed", "wpat_fixed"]
    assert refused.value.status == 404


def test_tokens_are_reused_until_due():
    server = FakeServer([])
    with server.http() as http:
        source = credentials_source(server, http)
        first = source.token()
        server.clock += 3000
        assert source.token() == first
        server.clock += 571  # 29 s left
        assert source.token() != first
    assert len(server.token_requests) == 2


def login_record(**changes) -> LoginRecord:
    values = {
        "issuer": ISSUER,
        "client_id": "mcp_cli",
        "api_base_url": ISSUER,
        "resource": f"{ISSUER}/api",
        "scope": "wallet:accounts:read",
        "access_token": "access-0",
        "refresh_token": "rt_0",
        "obtained_at": 0.0,
        "expires_at": 3600.0,
    }
    return LoginRecord(**{**values, **changes})


def test_a_refresh_saves_the_rotated_refresh_token_in_a_private_file(tmp_path):
    server = FakeServer([])
    store = LoginStore(tmp_path / "config")
    store.save(login_record(expires_at=server.clock))  # due
    with server.http() as http:
        source = SavedLoginSource(http, store, store.load(ISSUER), clock=lambda: server.clock)
        assert source.token() == "access-1"

    (refresh,) = server.token_requests
    assert refresh == {
        "grant_type": "refresh_token",
        "refresh_token": "rt_0",
        "client_id": "mcp_cli",
        "resource": f"{ISSUER}/api",
    }
    saved = store.load(ISSUER)
    assert (saved.access_token, saved.refresh_token) == ("access-1", "rt_1")
    assert stat.S_IMODE(store.path_for(ISSUER).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "config").stat().st_mode) == 0o700


def test_a_pair_rotated_by_another_process_is_adopted_instead_of_replaying_the_old_token(tmp_path):
    server = FakeServer([])
    store = LoginStore(tmp_path)
    store.save(login_record(expires_at=server.clock))  # due
    with server.http() as http:
        held = store.load(ISSUER)
        # another bridge refreshed meanwhile: the file holds a newer, still fresh pair
        store.save(login_record(access_token="access-other", refresh_token="rt_other", expires_at=9999.0))
        source = SavedLoginSource(http, store, held, clock=lambda: server.clock)
        assert source.token() == "access-other"

    assert server.token_requests == []


def test_a_refresh_refused_as_invalid_grant_tells_the_user_to_sign_in_again(tmp_path):
    def refuse(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/oauth/token":
            return httpx2.Response(400, json={"error": "invalid_grant", "error_description": "revoked"})
        return FakeServer([]).handle(request)

    store = LoginStore(tmp_path)
    store.save(login_record(expires_at=0.0))
    with httpx2.Client(transport=httpx2.MockTransport(refuse)) as http:
        source = SavedLoginSource(http, store, store.load(ISSUER))
        with pytest.raises(ServiceError, match=r"no longer valid .*run `wallet-mcp login` again"):
            source.token()


def test_the_sdk_token_file_hands_back_an_expired_access_token_empty_so_the_sdk_refreshes(tmp_path):
    now = [1000.0]
    storage = FileTokenStorage(tmp_path, "https://wallet.example/mcp", clock=lambda: now[0])
    token = OAuthToken(access_token="a", expires_in=3600, refresh_token="rt_a")

    async def scenario():
        await storage.set_tokens(token)
        fresh = await storage.get_tokens()
        now[0] += 3580
        stale = await storage.get_tokens()
        return fresh, stale

    fresh, stale = anyio.run(scenario)
    assert fresh.access_token == "a" and fresh.expires_in == 3600
    assert stale.access_token == "" and stale.refresh_token == "rt_a"
    assert stat.S_IMODE(storage.path.stat().st_mode) == 0o600
    assert json.loads(storage.path.read_text())["tokens"]["refresh_token"] == "rt_a"


def test_every_wallet_service_use_case_is_answered_over_http():
    """None may fall through to the DynamoDB store HttpWallet does not have."""
    public = {n for n, f in inspect.getmembers(WalletService, inspect.isfunction) if not n.startswith("_")}
    assert public <= set(vars(HttpWallet))


def test_the_bridge_registry_is_the_contract_and_login_asks_for_what_it_needs():
    server = FakeServer([])
    with server.http() as http:
        tools = bridged_registry(BackendApi(ISSUER, StaticTokenSource("x"), http))
    assert tuple(spec.name for spec in tools) == BRIDGED_TOOLS
    wallet_scopes = {scope for spec in tools for scope in spec.scopes}
    assert wallet_scopes == set(DEFAULT_SCOPE.split())
    assert local_principal(tools).has_scopes({"mcp:tools:list", "mcp:tools:call", *wallet_scopes})
