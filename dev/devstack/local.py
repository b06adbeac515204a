"""Bringing the local stack up: the template with local parameters, its resources, the seed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from devstack.provision import provision
from devstack.seed import SeedTables, seed
from devstack.template import REGION, ROOT, Stack, load_template

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
"""Credentials for the emulator (it accepts any)."""

SAM_ENV_FILE = ROOT / ".local" / "sam-env.json"


LOCAL_PARAMETERS = {
    "AllowLoopbackClientMetadata": "true",
    # an OpenID provider on this machine (plain http) may be configured as an upstream sign-in
    "AllowLoopbackIdentityProviders": "true",
    # MCP Inspector's web UI, so it can connect to the local stack from the browser
    "AllowedOrigins": "http://localhost:6274,http://127.0.0.1:6274",
}
"""Template parameters of the local stack besides its URL (development-only switches)."""


def local_stack(public_base_url: str, overrides: Mapping[str, str] | None = None) -> Stack:
    """The template with the local parameters, plus `overrides` (e.g. a short token lifetime for a test)."""
    return Stack(
        load_template(),
        parameters={"PublicBaseUrl": public_base_url, **LOCAL_PARAMETERS, **(overrides or {})},
    )


def parameter_overrides(raw: str | None) -> dict[str, str]:
    """`STACK_PARAMETERS="AccessTokenTtlSeconds=5,RefreshTokenReuseGraceSeconds=0"` as a dict.

    A JSON object works too, for values with commas: `{"UpstreamIdentityProviders": [...]}` (a
    value that is not a string is passed as its JSON text)."""
    if (raw or "").strip().startswith("{"):
        try:
            document = json.loads(raw or "")
        except ValueError as exc:
            raise ValueError("STACK_PARAMETERS: not a valid JSON object") from exc
        if not isinstance(document, dict):
            raise ValueError("STACK_PARAMETERS: not a valid JSON object")
        return {
            str(name): value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            for name, value in document.items()
        }
    overrides: dict[str, str] = {}
    for pair in (raw or "").split(","):
        if pair.strip():
            name, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"STACK_PARAMETERS: {pair!r} is not Name=Value")
            overrides[name.strip()] = value.strip()
    return overrides


def bring_up(stack: Stack, endpoint_url: str | None, *, wallet: bool = True) -> None:
    """Create the template's tables and key at `endpoint_url` (None: the default in the
    environment, e.g. moto's in-process mock) and seed the demo data (the wallet unless told not)."""
    session = boto3.session.Session(**_session_args())
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    kms = session.client("kms", endpoint_url=endpoint_url)
    provision(stack, dynamodb, kms)
    seed(
        dynamodb,
        SeedTables(
            users=stack.physical_ids["UsersTable"],
            clients=stack.physical_ids["ClientsTable"],
            wallet=stack.physical_ids["WalletTable"],
        ),
        wallet=wallet,
    )


def _session_args() -> dict[str, Any]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": REGION,
    }


def write_sam_env_file(stack: Stack, endpoint_url: str, path: Path = SAM_ENV_FILE) -> Path:
    """The `--env-vars` file for `sam local start-api`: every function pointed at the emulator."""
    document = {
        name: {**spec.environment, **AWS_ENV, "AWS_ENDPOINT_URL": endpoint_url}
        for name, spec in stack.functions().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
