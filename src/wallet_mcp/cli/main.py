"""`wallet-mcp`: parse the command line, load the configuration once, dispatch, map failures to exits.

Exit status: 0 success, 1 a failure (the message says which), 2 a usage or configuration error,
130 interrupted. Every message goes to stderr; stdout carries only the answer (or MCP, for
`serve-stdio`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

from wallet_mcp.cli.errors import EXIT_FAILURE, CliError, ServiceError
from wallet_mcp.cli.settings import CliSettings, merged_environment

logger = logging.getLogger("wallet_mcp.cli")

EXIT_INTERRUPTED: Final = 130
_QUIET_LOGGERS: Final = ("mcp", "httpx2", "httpcore2", "httpx", "httpcore", "botocore", "boto3", "urllib3")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--env-file",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="read variables from PATH instead of ./.env (the environment still wins)",
    )
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logs")

    bound = argparse.ArgumentParser(add_help=False)
    bound.add_argument(
        "--dpop",
        action="store_true",
        default=argparse.SUPPRESS,
        help="bind the tokens to this command's DPoP key (RFC 9449; also WALLET_MCP_DPOP=1)",
    )

    parser = argparse.ArgumentParser(
        prog="wallet-mcp",
        description="The wallet's command line: a local MCP bridge, sign-in, remote tools, administration.",
    )
    parser.add_argument("--env-file", type=Path, default=None, metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", default=False, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser(
        "serve-stdio",
        parents=[common, bound],
        help="serve the seven wallet tools over stdio (Claude Desktop, Claude Code) via the wallet API",
    )

    login = commands.add_parser(
        "login", parents=[common, bound], help="sign in with the browser; save tokens"
    )
    login.add_argument("--server", metavar="URL", help="the issuer (default: AUTHORIZATION_SERVER_URL)")
    login.add_argument("--scope", help="scopes to ask for (default: MCP_SCOPE, else every wallet scope)")
    login.add_argument("--timeout", type=float, metavar="SECONDS", help="wait this long for the browser")
    login.add_argument("--no-browser", action="store_true", help="only print the sign-in address")

    logout = commands.add_parser("logout", parents=[common], help="revoke and delete the saved tokens")
    logout.add_argument("--server", metavar="URL", help="the issuer (default: AUTHORIZATION_SERVER_URL)")

    tools = commands.add_parser("tools", parents=[common, bound], help="list the remote MCP server's tools")
    tools.add_argument("--json", action="store_true", help="print the full definitions as JSON")

    call = commands.add_parser("call", parents=[common, bound], help="call a tool of the remote MCP server")
    call.add_argument("tool")
    call.add_argument(
        "--arg", action="append", default=[], metavar="KEY=VALUE", help="an argument (JSON if it parses)"
    )
    call.add_argument("--json", action="store_true", help="print structuredContent as JSON")
    call.add_argument("--timeout", type=float, metavar="SECONDS", help="wait this long for a browser sign-in")

    admin = commands.add_parser(
        "admin",
        parents=[common],
        help="manage users (create, disable, enable) and personal access tokens in the stack's tables",
    )
    where = admin.add_mutually_exclusive_group()
    where.add_argument(
        "--table-prefix", default=None, help="tables are <prefix><LogicalId> (default wallet-mcp-local-)"
    )
    where.add_argument("--stack-name", help="resolve the tables from this CloudFormation stack")
    admin.add_argument("--region", help="AWS region (default: AWS_REGION, else us-east-1)")
    admin.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (default: AWS_ENDPOINT_URL)")
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")

    create_user = actions.add_parser("create-user", help="create a user; the password is read from stdin")
    create_user.add_argument("--username", required=True)
    create_user.add_argument("--admin", action="store_true", help="give the user the admin role")

    create_token = actions.add_parser("create-token", help="create a personal access token (printed once)")
    create_token.add_argument("--username", required=True)
    create_token.add_argument("--scope", required=True, help='space-separated, e.g. "wallet:accounts:read"')
    create_token.add_argument("--name", required=True, help="what the token is for")
    lifetime = create_token.add_mutually_exclusive_group()
    lifetime.add_argument(
        "--expires-in-days", type=int, metavar="D", help="expire after D days (default: 90, at most 3650)"
    )
    lifetime.add_argument("--never-expires", action="store_true", help="a token that never expires")

    list_tokens = actions.add_parser("list-tokens", help="a user's personal access tokens")
    list_tokens.add_argument("--username", required=True)

    revoke_token = actions.add_parser("revoke-token", help="revoke one personal access token")
    revoke_token.add_argument("--username", required=True)
    revoke_token.add_argument("--id", required=True, dest="token_id")

    disable_user = actions.add_parser(
        "disable-user",
        help="disable a user: end their sessions, grants and personal access tokens; refuse sign-in",
    )
    disable_user.add_argument("--username", required=True)
    disable_user.add_argument("--reason", required=True, help="why (kept in the audit trail)")

    enable_user = actions.add_parser(
        "enable-user", help="let a disabled user sign in again (nothing that was ended comes back)"
    )
    enable_user.add_argument("--username", required=True)
    enable_user.add_argument("--reason", help="why (kept in the audit trail)")

    actions.add_parser(
        "bootstrap-token",
        help="print a one-time token for /admin/bootstrap and the digest to deploy (no AWS access needed)",
    )
    return parser


def _configure_logging(verbose: bool, env: dict[str, str]) -> None:
    level_name = "DEBUG" if verbose else env.get("WALLET_MCP_LOG_LEVEL", "INFO").upper()
    level = logging.getLevelNamesMapping().get(level_name, logging.INFO)
    # a no-op when the root logger is configured already (the command run in-process, by tests)
    logging.basicConfig(stream=sys.stderr, format="wallet-mcp: %(message)s", level=logging.WARNING)
    logging.getLogger("wallet_mcp").setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _dispatch(args: argparse.Namespace, settings: CliSettings) -> int:
    command: str = args.command
    if command == "serve-stdio":
        from wallet_mcp.cli.bridge import serve_stdio

        return serve_stdio(settings)
    if command == "login":
        from wallet_mcp.cli.login import login

        return login(
            settings,
            server=args.server,
            scope=args.scope,
            timeout=args.timeout,
            open_browser=not args.no_browser,
        )
    if command == "logout":
        from wallet_mcp.cli.login import logout

        return logout(settings, server=args.server)
    if command == "tools":
        from wallet_mcp.cli.remote import list_tools

        return list_tools(settings, as_json=args.json)
    if command == "call":
        from wallet_mcp.cli.remote import call_tool

        return call_tool(settings, args.tool, args.arg, as_json=args.json, timeout=args.timeout)
    return _admin(args, settings)


def _admin(args: argparse.Namespace, settings: CliSettings) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from wallet_mcp.cli import admin

    if args.action == "bootstrap-token":
        return admin.bootstrap_token()
    target = admin.AdminTarget(
        table_prefix=args.table_prefix or admin.DEFAULT_TABLE_PREFIX,
        stack_name=args.stack_name,
        region=args.region,
        endpoint_url=args.endpoint_url,
    )
    try:
        tables = admin.connect(target, settings)
        if args.action == "create-user":
            return admin.create_user(tables, args.username, admin=args.admin)
        if args.action == "create-token":
            return admin.create_token(
                tables,
                args.username,
                scope=args.scope,
                name=args.name,
                expires_in_days=args.expires_in_days,
                never_expires=args.never_expires,
            )
        if args.action == "list-tokens":
            return admin.list_tokens(tables, args.username)
        if args.action == "disable-user":
            return admin.disable_user(tables, args.username, reason=args.reason)
        if args.action == "enable-user":
            return admin.enable_user(tables, args.username, reason=args.reason)
        return admin.revoke_token(tables, args.username, args.token_id)
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"AWS: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        env = merged_environment(os.environ, args.env_file)
        _configure_logging(args.verbose, env)
        settings = CliSettings.from_env(env)
        if getattr(args, "dpop", False):
            settings = replace(settings, dpop=True)
        return _dispatch(args, settings)
    except CliError as exc:
        print(f"wallet-mcp: {exc.message}", file=sys.stderr)
        return exc.status
    except ServiceError as exc:
        print(f"wallet-mcp: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("wallet-mcp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
