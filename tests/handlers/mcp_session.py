"""The MCP function's handler as a client would talk to it: client-credentials tokens from the
token function, and JSON-RPC over POST /mcp (shared by the wallet tool and prompt tests)."""

from __future__ import annotations

import json
from typing import Any

from devstack.seed import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.conftest import response_json
from tests.handlers.confirm_helpers import allow_debits, approve_pending
from wallet_mcp import aws
from wallet_mcp.credentials import opaque
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.storage.clients import ClientRecord, ClientStore

ALL = " ".join(SUPPORTED_SCOPES)
OTHER_SECRET = "other-secret"


def wallet_functions(load_function: Any, aws_stack: Any) -> tuple[Any, Any]:
    """The token and MCP functions, with two more client-credentials clients: one acting for
    another user (`other-users-client`) and one with no wallet owner (`ownerless-client`); the demo
    client may ask for payments (an administrator's "Allow payments"), each still confirmed."""
    clients = ClientStore(aws.dynamodb(), aws_stack.physical_ids["ClientsTable"])
    for client_id, owner in (("other-users-client", "user-two"), ("ownerless-client", None)):
        clients.put(
            ClientRecord(
                client_id=client_id,
                client_name=client_id,
                token_endpoint_auth_method="client_secret_post",
                client_secret_hash=opaque.digest(OTHER_SECRET),
                grant_types=("client_credentials",),
                redirect_uris=(),
                scope=SUPPORTED_SCOPES,
                created_at=0,
                owner_user_id=owner,
            )
        )
    allow_debits(aws_stack.physical_ids["ClientsTable"])
    return load_function("TokenFunction"), load_function("McpFunction")


def token(
    token_fn: Any, scope: str = ALL, client: tuple[str, str] = (DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
) -> str:
    response = token_fn.request(
        "POST",
        "/oauth/token",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=f"grant_type=client_credentials&client_id={client[0]}&client_secret={client[1]}&scope={scope}",
    )
    assert response.status == 200, response.body
    return str(response_json(response)["access_token"])


class Session:
    """One client's calls with one access token, numbered like a real client's."""

    def __init__(self, mcp_fn: Any, access_token: str) -> None:
        self.mcp = mcp_fn
        self.token = access_token
        self.ids = 0
        self.wallet_table = mcp_fn.stack.physical_ids["WalletTable"]

    def rpc(self, method: str, params: dict[str, Any] | None = None, version: str = "2025-11-25") -> Any:
        self.ids += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.ids, "method": method}
        if params is not None:
            message["params"] = params
        return self.mcp.request(
            "POST",
            "/mcp",
            headers={
                "authorization": f"Bearer {self.token}",
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": version,
            },
            body=json.dumps(message),
        )

    def result(self, method: str, params: dict[str, Any] | None = None) -> Any:
        response = self.rpc(method, params)
        assert response.status == 200, (response.status, response.body)
        body = response_json(response)
        assert "result" in body, body
        return body["result"]

    def error(self, method: str, params: dict[str, Any] | None = None) -> Any:
        response = self.rpc(method, params)
        assert response.status == 200, (response.status, response.body)  # a JSON-RPC error, never a 5xx
        return response_json(response)["error"]

    def call(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        return self.result("tools/call", {"name": name, "arguments": arguments or {}})

    def confirmed(self, name: str, arguments: dict[str, Any]) -> Any:
        """A call that needs the person's confirmation (-32042): they approve, the client retries."""
        first = response_json(self.rpc("tools/call", {"name": name, "arguments": arguments}))
        assert first["error"]["code"] == -32042, first
        assert approve_pending(self.wallet_table) == 1
        return self.call(name, arguments)

    def transactions(self) -> list[dict[str, Any]]:
        """Every transaction of the wallet, newest first, page by page."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            result = self.call(
                "getRecentTransactions", {"limit": 100, **({"cursor": cursor} if cursor else {})}
            )
            found += result["structuredContent"]["transactions"]
            cursor = result["structuredContent"]["next_cursor"]
            if not cursor:
                return found
