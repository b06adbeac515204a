"""The demo data of the local stack (CONTRACT.md). Never used by a deployed stack.

Idempotent: the demo user keeps its id across runs, the demo client is rewritten.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from dataclasses import dataclass
from typing import Any

from wallet_mcp.credentials import opaque
from wallet_mcp.credentials.passwords import hash_password
from wallet_mcp.oauth.scopes import SUPPORTED_SCOPES
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.users import UserAlreadyExists, UserRecord, UserStore

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_CLIENT_ID = "mcp-demo-client"
DEMO_CLIENT_SECRET = "demo-secret-123"
DEMO_REDIRECT_URI = "http://localhost:8080/callback"
DEMO_USER_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "wallet-mcp:demo-user"))


@dataclass(frozen=True)
class SeedTables:
    users: str
    clients: str


@functools.cache
def _demo_password_hash() -> str:
    return hash_password(DEMO_PASSWORD)  # a slow KDF: computed once per process


def seed(dynamodb: Any, tables: SeedTables) -> None:
    now = int(time.time())
    users = UserStore(dynamodb, tables.users)
    with contextlib.suppress(UserAlreadyExists):  # keep the demo user (and its id) across runs
        users.create(
            UserRecord(
                username=DEMO_USERNAME,
                user_id=DEMO_USER_ID,
                password_hash=_demo_password_hash(),
                created_at=now,
                display_name="Demo User",
                email="demo@example.com",
                roles=("admin",),
            )
        )
    ClientStore(dynamodb, tables.clients).put(
        ClientRecord(
            client_id=DEMO_CLIENT_ID,
            client_name="MCP Demo Client",
            token_endpoint_auth_method="client_secret_post",
            client_secret_hash=opaque.digest(DEMO_CLIENT_SECRET),
            grant_types=("authorization_code", "refresh_token", "client_credentials"),
            redirect_uris=(DEMO_REDIRECT_URI,),
            scope=SUPPORTED_SCOPES,
            created_at=now,
            application_type="web",
            owner_user_id=DEMO_USER_ID,
        )
    )
