"""`wallet-mcp admin`: users and personal access tokens, straight in the stack's DynamoDB tables.

For an operator with AWS credentials (locally: `AWS_ENDPOINT_URL` pointing at the emulator). The
tables are `<prefix><LogicalId>` (default prefix `wallet-mcp-local-`, the local stack's) or the
physical names CloudFormation reports for `--stack-name`. `create-user` is how a deployed stack
gets its first (admin) user: the password is read from stdin or a prompt, never from the command
line (process listings, shell history), and stored as the project's scrypt hash.

Ending access goes through the same `oauth.revocation.Revoker` as the administration pages:
`disable-user` ends a person's sessions, consents, refresh tokens and personal access tokens and
refuses their access tokens while they stay disabled; `enable-user` lets them sign in again with
nothing of it back; `revoke-token` ends one personal access token. Each is audited with
`by: operator` and `source: cli` (and the reason given).

Personal access tokens expire after `DEFAULT_LIFETIME_DAYS` (90) days unless `--expires-in-days`
says otherwise; one that never expires only with an explicit `--never-expires`.
"""

from __future__ import annotations

import getpass
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
from wallet_mcp.compose import Stores
from wallet_mcp.compose import revoker as compose_revoker
from wallet_mcp.credentials import opaque
from wallet_mcp.credentials.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, hash_password
from wallet_mcp.oauth.rules.revocation import Actor, Revoker
from wallet_mcp.primitives.errors import InvalidScope
from wallet_mcp.primitives.redirect_uris import is_loopback_host
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES, format_scope, parse_scope, require_known
from wallet_mcp.storage.personal_tokens import DEFAULT_LIFETIME_DAYS, PersonalToken, PersonalTokenStore
from wallet_mcp.storage.users import (
    UserAlreadyExists,
    UserRecord,
    UserStore,
    is_valid_username,
    normalize_username,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DEFAULT_TABLE_PREFIX: Final = "wallet-mcp-local-"
DEFAULT_REGION: Final = "us-east-1"
EMULATOR_KEY: Final = "testing"
"""The local emulator accepts any key; used only for a loopback endpoint when none is configured."""
TABLES: Final = (
    "UsersTable",
    "PersonalTokensTable",
    "SessionsTable",
    "ConsentsTable",
    "RefreshTokensTable",
    "RevokedTokensTable",
    "AuditTable",
)
"""The template's logical ids of the tables the commands read or write (all in one stack)."""
ACCESS_TOKEN_TTL_PARAMETER: Final = "AccessTokenTtlSeconds"
MAX_ACCESS_TOKEN_TTL: Final = 86400
"""The template's MaxValue of `AccessTokenTtlSeconds`: the lifetime assumed when the stack does not
say. It only bounds how long a revocation entry is kept after a user is enabled again (an entry
must outlive every access token it refuses), so a longer guess costs nothing but a longer entry."""
OPERATOR: Final = "operator"
"""Who the audit trail says ended access (`details.by`) when it was this command; `source` is `cli`."""
SOURCE: Final = "cli"
MAX_TOKEN_DAYS: Final = 3650
MAX_REASON: Final = 500


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
    revoker: Revoker


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
        access_token_ttl = _stack_access_token_ttl(cloudformation, target.stack_name)
    else:
        physical = {name: f"{target.table_prefix}{name}" for name in TABLES}
        access_token_ttl = MAX_ACCESS_TOKEN_TTL
    stores = Stores(dynamodb, lambda name: physical[_logical(name)], lambda name: _logical(name) in physical)
    revoker = compose_revoker(stores, access_token_ttl=access_token_ttl, clock=lambda: int(time.time()))
    return Tables(users=stores.users, personal_tokens=stores.personal_tokens, revoker=revoker)


def _logical(table: str) -> str:
    """The template's logical id of a table (`revoked_tokens` → `RevokedTokensTable`)."""
    return "".join(part.capitalize() for part in table.split("_")) + "Table"


def _stack_access_token_ttl(cloudformation: Any, stack_name: str) -> int:
    """The stack's `AccessTokenTtlSeconds`, else the longest the template allows."""
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (BotoCoreError, ClientError, ValueError) as exc:
        raise CliError(f"cannot read the parameters of stack {stack_name}: {exc}") from exc
    for parameter in stack.get("Parameters", []):
        if parameter.get("ParameterKey") == ACCESS_TOKEN_TTL_PARAMETER:
            value = str(parameter.get("ResolvedValue") or parameter.get("ParameterValue") or "")
            if value.isdigit() and int(value) > 0:
                return int(value)
    return MAX_ACCESS_TOKEN_TTL


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
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise CliError(f"the password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    return password


def create_user(tables: Tables, username: str, *, admin: bool) -> int:
    name = normalize_username(username)
    if not is_valid_username(name):
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


def bootstrap_token() -> int:
    """A one-time token for /admin/bootstrap (`account/bootstrap.py`) and its SHA-256, the value of
    the `BootstrapAdminTokenSha256` parameter. Nothing is stored or sent: the token exists only in
    this output until it is used."""
    token = opaque.new_secret()
    print(f"Bootstrap token (keep it; it is shown once): {token}")
    print(f"Deploy with: --parameter-overrides BootstrapAdminTokenSha256={opaque.digest(token)}")
    print("Then open <issuer>/admin/bootstrap, paste the token and create the first administrator.")
    return 0


def create_token(
    tables: Tables,
    username: str,
    *,
    scope: str,
    name: str,
    expires_in_days: int | None = None,
    never_expires: bool = False,
) -> int:
    """A personal access token, printed once: it expires in `expires_in_days` days (default
    `DEFAULT_LIFETIME_DAYS`), never only with `never_expires`."""
    if never_expires and expires_in_days is not None:
        raise ConfigurationError("--expires-in-days and --never-expires exclude each other")
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
    days = None if never_expires else (DEFAULT_LIFETIME_DAYS if expires_in_days is None else expires_in_days)
    if days is not None and not 1 <= days <= MAX_TOKEN_DAYS:
        raise ConfigurationError(f"--expires-in-days must be 1-{MAX_TOKEN_DAYS}")
    now = int(time.time())
    token, record = tables.personal_tokens.create(
        user_id=user.user_id,
        name=label,
        scope=tuple(format_scope(scopes).split()),
        now=now,
        expires_at=None if days is None else now + days * 86400,
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
    rows = [("ID", "NAME", "STATUS", "CREATED", "EXPIRES", "LAST USED", "SCOPE")]
    rows += [
        (
            t.token_id,
            t.name,
            _status(t, now),
            _day(t.created_at),
            _day(t.expires_at),
            _day(t.last_used_at),
            " ".join(t.scope),
        )
        for t in tokens
    ]
    last = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(last)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:last])) + "  " + row[last])
    return 0


def revoke_token(tables: Tables, username: str, token_id: str) -> int:
    user = _user(tables, username)
    if not tables.revoker.end_personal_token(user.user_id, token_id, Actor(OPERATOR, SOURCE)):
        raise CliError(f"{user.username} has no personal access token {token_id!r}")
    print(f"Revoked personal access token {token_id} of {user.username}.", file=sys.stderr)
    return 0


def _reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    text = " ".join(reason.split())
    if not 1 <= len(text) <= MAX_REASON:
        raise ConfigurationError(f"--reason must be 1-{MAX_REASON} characters")
    return text


def _counted(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def disable_user(tables: Tables, username: str, *, reason: str) -> int:
    """Disable a person and end everything they have: sessions, consents (and the refresh and access
    tokens of those grants), personal access tokens; sign-in refused until `enable-user`."""
    why = _reason(reason)
    user = _user(tables, username)
    if user.disabled:
        raise CliError(f"user {user.username!r} is disabled already")
    ended = tables.revoker.end_user(user, Actor(OPERATOR, SOURCE, why))
    print(
        f"Disabled user {user.username} (id {user.user_id}). Ended "
        f"{_counted(ended.sessions, 'session')}, {_counted(ended.refresh_tokens, 'refresh token')}, "
        f"{_counted(ended.consents, 'consent')} and "
        f"{_counted(ended.personal_tokens, 'personal access token')}; "
        "their access tokens are refused (within a revocation poll) while they stay disabled.",
        file=sys.stderr,
    )
    return 0


def enable_user(tables: Tables, username: str, *, reason: str | None = None) -> int:
    """Let a disabled person sign in again; nothing that was ended comes back."""
    why = _reason(reason)
    user = _user(tables, username)
    if not user.disabled:
        raise CliError(f"user {user.username!r} is not disabled")
    tables.revoker.restore_user(user, Actor(OPERATOR, SOURCE, why))
    print(
        f"Enabled user {user.username} (id {user.user_id}). They may sign in again; their earlier "
        "sessions, grants and personal access tokens stay ended.",
        file=sys.stderr,
    )
    return 0
