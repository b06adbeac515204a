"""The demo data of the local stack (CONTRACT.md). Never used by a deployed stack.

Idempotent: the demo user keeps its id across runs, the demo client is rewritten.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from wallet_mcp.credentials import opaque
from wallet_mcp.credentials.passwords import hash_password
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.storage.clients import ClientRecord, ClientStore
from wallet_mcp.storage.users import UserAlreadyExists, UserRecord, UserStore
from wallet_mcp.wallet.service import WalletService
from wallet_mcp.wallet.store import WalletStore

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
    wallet: str


# The demo wallet: three USD accounts whose balances total $5,432.10 once these transactions are applied.
DEMO_ACCOUNTS = (
    ("checking", "Everyday Checking", "checking", "3245.67"),
    ("savings", "Emergency Savings", "savings", "2000.00"),
    ("cash", "Cash Wallet", "cash", "186.43"),
)
# (account, days ago, amount, category, description)
DEMO_TRANSACTIONS = (
    ("checking", 44, "4200.00", "income", "Salary — Acme Corp"),
    ("checking", 43, "-1650.00", "housing", "Rent — November"),
    ("checking", 42, "-84.12", "utilities", "Electricity bill"),
    ("checking", 41, "-500.00", "transfer", "Transfer to Emergency Savings"),
    ("savings", 41, "500.00", "transfer", "Transfer from Everyday Checking"),
    ("checking", 40, "-126.45", "groceries", "Whole Foods Market"),
    ("checking", 38, "-15.99", "subscriptions", "Netflix"),
    ("checking", 37, "-42.80", "dining", "Trattoria Roma"),
    ("checking", 35, "-200.00", "transfer", "ATM withdrawal"),
    ("cash", 35, "200.00", "transfer", "ATM withdrawal"),
    ("cash", 34, "-12.50", "dining", "Corner café"),
    ("checking", 33, "-64.30", "transport", "Shell — fuel"),
    ("checking", 31, "-89.99", "shopping", "Running shoes"),
    ("checking", 30, "-58.00", "utilities", "Internet — Fiber 500"),
    ("cash", 29, "-8.75", "transport", "Metro card top-up"),
    ("checking", 28, "-103.27", "groceries", "Trader Joe's"),
    ("checking", 26, "-35.00", "health", "Pharmacy"),
    ("checking", 24, "-27.40", "entertainment", "Cinema tickets"),
    ("checking", 21, "-9.99", "subscriptions", "Spotify"),
    ("checking", 14, "4200.00", "income", "Salary — Acme Corp"),
    ("checking", 13, "-1650.00", "housing", "Rent — December"),
    ("checking", 12, "-500.00", "transfer", "Transfer to Emergency Savings"),
    ("savings", 12, "500.00", "transfer", "Transfer from Everyday Checking"),
    ("checking", 11, "-142.18", "groceries", "Costco"),
    ("checking", 9, "-56.20", "dining", "Sushi Zen"),
    ("cash", 8, "-14.20", "groceries", "Farmers market"),
    ("checking", 7, "-320.00", "travel", "Train tickets — holidays"),
    ("checking", 5, "-45.60", "transport", "Uber"),
    ("savings", 4, "3.12", "income", "Interest"),
    ("checking", 3, "-74.90", "shopping", "Bookstore"),
    ("cash", 2, "-6.40", "dining", "Bakery"),
    ("checking", 1, "-38.45", "groceries", "Local grocer"),
)


@functools.cache
def _demo_password_hash() -> str:
    return hash_password(DEMO_PASSWORD)  # a slow KDF: computed once per process


def seed(dynamodb: Any, tables: SeedTables, *, wallet: bool = True) -> None:
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
    if wallet:
        seed_wallet(dynamodb, tables.wallet)
    ClientStore(dynamodb, tables.clients).put(
        ClientRecord(
            client_id=DEMO_CLIENT_ID,
            client_name="MCP Demo Client",
            token_endpoint_auth_method="client_secret_post",
            client_secret_hash=opaque.digest(DEMO_CLIENT_SECRET),
            # the jwt-bearer grant too: ID-JAGs of a trusted enterprise IdP (docs/enterprise.md)
            grant_types=(
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
            ),
            redirect_uris=(DEMO_REDIRECT_URI,),
            scope=SUPPORTED_SCOPES,
            created_at=now,
            application_type="web",
            owner_user_id=DEMO_USER_ID,
            verified=True,
        )
    )


def seed_wallet(dynamodb: Any, table: str) -> None:
    """Accounts opened with the balance that, after the demo transactions, gives the final figure;
    the transactions go through the same code path as the API's (balances, monthly spending)."""
    service = WalletService(WalletStore(dynamodb, table))
    if service.accounts(DEMO_USER_ID):
        return  # seeded already: keep whatever the demo user has done since
    now = time.time()
    ids: dict[str, str] = {}
    for key, name, account_type, final in DEMO_ACCOUNTS:
        net = sum(Decimal(amount) for owner_key, _, amount, _, _ in DEMO_TRANSACTIONS if owner_key == key)
        created = service.create_account(
            DEMO_USER_ID,
            name=name,
            account_type=account_type,
            currency="USD",
            opening_balance=str(Decimal(final) - net),
        )
        ids[key] = created.account_id
    for key, days_ago, amount, category, description in DEMO_TRANSACTIONS:
        moment = datetime.fromtimestamp(now - days_ago * 86400 - 3600, UTC).replace(microsecond=0)
        service.create_transaction(
            DEMO_USER_ID,
            account_id=ids[key],
            amount=amount,
            category=category,
            description=description,
            occurred_at=moment.isoformat(),
        )
