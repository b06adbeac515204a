"""`wallet-mcp admin`: users and personal access tokens, straight in the stack's DynamoDB tables.

For an operator with AWS credentials (locally: `AWS_ENDPOINT_URL` pointing at the emulator). The
tables are `<prefix><LogicalId>` (default prefix `wallet-mcp-local-`, the local stack's) or the
physical names CloudFormation reports for `--stack-name`. `create-user` is how a deployed stack
gets its first (admin) user: the password is read from stdin or a prompt, never from the command
line (process listings, shell history), and stored as the project's scrypt hash.
"""

from __future__ import annotations

import getpass
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from wallet_mcp.cli.errors import CliError, ConfigurationError
from wallet_mcp.cli.settings import CliSettings
from wallet_mcp.credentials.passwords import hash_password
from wallet_mcp.oauth.errors import InvalidScope
from wallet_mcp.oauth.redirect_uris import is_loopback_host
from wallet_mcp.oauth.scopes import SUPPORTED_SCOPES, format_scope, parse_scope, require_known
from wallet_mcp.storage.personal_tokens import PersonalToken, PersonalTokenStore
from wallet_mcp.storage.users import UserAlreadyExists, UserRecord, UserStore, normalize_username

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DEFAULT_TABLE_PREFIX: Final = "wallet-mcp-local-"
DEFAULT_REGION: Final = "us-east-1"
EMULATOR_KEY: Final = "testing"
"""The local emulator accepts any key; used only for a loopback endpoint when none is configured."""
TABLES: Final = ("UsersTable", "PersonalTokensTable")
MIN_PASSWORD: Final = 8
MAX_PASSWORD: Final = 1024
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,63}$")


@dataclass(frozen=True, slots=True)
class AdminTarget:
    table_prefix: str = DEFAULT_TABLE_PREFIX
    stack_name: str | None = None
    region: str | None = None
    endpoint_url: str | None = None


@dataclass(frozen=True, slots=True)
class Tables:
    users: UserStore
    personal_tokens: PersonalTokenStore


def connect(target: AdminTarget, settings: CliSettings) -> Tables:
    endpoint = target.endpoint_url or settings.aws_endpoint_url
    session = boto3.session.Session(region_name=target.region or settings.aws_region or DEFAULT_REGION)
    if session.get_credentials() is None and endpoint and is_loopback_host(urlsplit(endpoint).hostname):
        session = boto3.session.Session(
            aws_access_key_id=EMULATOR_KEY,
            aws_secret_access_key=EMULATOR_KEY,
            region_name=session.region_name,
        )
    dynamodb: DynamoDBClient = session.client("dynamodb", endpoint_url=endpoint)
    if target.stack_name:
        cloudformation: Any = session.client("cloudformation", endpoint_url=endpoint)
        try:
            resources = cloudformation.describe_stack_resources(StackName=target.stack_name)["StackResources"]
        except (BotoCoreError, ClientError) as exc:
            raise CliError(f"cannot read the resources of stack {target.stack_name}: {exc}") from exc
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        missing = [name for name in TABLES if name not in physical]
        if missing:
            raise CliError(f"stack {target.stack_name} has no {', '.join(missing)}")
    else:
        physical = {name: f"{target.table_prefix}{name}" for name in TABLES}
    return Tables(
        users=UserStore(dynamodb, physical["UsersTable"]),
        personal_tokens=PersonalTokenStore(dynamodb, physical["PersonalTokensTable"]),
    )


def _user(tables: Tables, username: str) -> UserRecord:
    user = tables.users.get(username)
    if user is None:
        raise CliError(f"no user {normalize_username(username)!r}")
    return user


def _day(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else "never"


def read_password(username: str) -> str:
    """From a prompt (twice) on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {username}: ")
        if getpass.getpass("Repeat it: ") != password:
            raise CliError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise CliError(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def create_user(tables: Tables, username: str, *, admin: bool) -> int:
    name = normalize_username(username)
    if not _USERNAME.match(name):
        raise ConfigurationError(
            "a username is 1-64 of a-z, 0-9 and . _ @ + - (starting with a letter or digit)"
        )
    if tables.users.get(name) is not None:
        raise CliError(f"user {name!r} exists already")
    record = UserRecord(
        username=name,
        user_id=str(uuid.uuid4()),
        password_hash=hash_password(read_password(name)),
        created_at=int(time.time()),
        roles=("admin",) if admin else (),
    )
    try:
        tables.users.create(record)
    except UserAlreadyExists as exc:
        raise CliError(f"user {name!r} exists already") from exc
    print(f"Created user {name} (id {record.user_id}{', admin' if admin else ''}).")
    return 0


def create_token(tables: Tables, username: str, *, scope: str, name: str, expires_in_days: int | None) -> int:
    user = _user(tables, username)
    if user.disabled:
        raise CliError(f"user {user.username!r} is disabled")
    try:
        scopes = parse_scope(scope)
        require_known(scopes)
    except InvalidScope as exc:
        raise ConfigurationError(f"--scope: {exc}; known scopes: {' '.join(SUPPORTED_SCOPES)}") from exc
    if not scopes:
        raise ConfigurationError(f"--scope needs at least one of: {' '.join(SUPPORTED_SCOPES)}")
    label = " ".join(name.split())
    if not 1 <= len(label) <= 64:
        raise ConfigurationError("--name must be 1-64 characters")
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise ConfigurationError("--expires-in-days must be 1-3650")
    now = int(time.time())
    token, record = tables.personal_tokens.create(
        user_id=user.user_id,
        name=label,
        scope=tuple(format_scope(scopes).split()),
        now=now,
        expires_at=now + expires_in_days * 86400 if expires_in_days else None,
    )
    print(token)
    print(
        f"Personal access token {record.token_id} “{label}” for {user.username}: scope "
        f"{' '.join(record.scope)}, expires {_day(record.expires_at)}. It is shown only this once.",
        file=sys.stderr,
    )
    return 0


def _status(token: PersonalToken, now: int) -> str:
    if token.revoked:
        return "revoked"
    return "active" if token.usable(now) else "expired"


def list_tokens(tables: Tables, username: str) -> int:
    user = _user(tables, username)
    tokens = tables.personal_tokens.of_user(user.user_id)
    if not tokens:
        print(f"{user.username} has no personal access tokens.", file=sys.stderr)
        return 0
    now = int(time.time())
    rows = [("ID", "NAME", "STATUS", "CREATED", "EXPIRES", "SCOPE")]
    rows += [
        (t.token_id, t.name, _status(t, now), _day(t.created_at), _day(t.expires_at), " ".join(t.scope))
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
    return 0


def revoke_token(tables: Tables, username: str, token_id: str) -> int:
    user = _user(tables, username)
    if not tables.personal_tokens.revoke(user.user_id, token_id):
        raise CliError(f"{user.username} has no personal access token {token_id!r}")
    print(f"Revoked personal access token {token_id} of {user.username}.", file=sys.stderr)
    return 0
