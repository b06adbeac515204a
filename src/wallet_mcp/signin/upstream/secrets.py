"""Upstream client secrets, read from SSM Parameter Store (SecureString) or Secrets Manager.

Never from code or a plain environment value: the configuration names where the secret lives
(`providers.SecretRef`), the function's IAM policy allows reading only names under one prefix,
and the value is kept in memory for `TTL` seconds per warm container (a rotated secret is picked
up within that time) and never logged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Final

from botocore.exceptions import ClientError

from wallet_mcp import aws
from wallet_mcp.config.upstream import SecretRef

TTL: Final = 300


class SecretUnavailable(Exception):
    """The secret cannot be read (missing, not allowed, malformed): a deployment mistake."""


class SecretSource:
    def __init__(
        self,
        *,
        clock: Callable[[], float],
        ssm: Callable[[], Any] = aws.ssm,
        secretsmanager: Callable[[], Any] = aws.secretsmanager,
    ) -> None:
        self._clock = clock
        self._ssm = ssm
        self._secretsmanager = secretsmanager
        self._lock = threading.Lock()
        self._cache: dict[SecretRef, tuple[float, str]] = {}

    def get(self, ref: SecretRef) -> str:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(ref)
        if cached is not None and now - cached[0] < TTL:
            return cached[1]
        value = self._read(ref)
        with self._lock:
            self._cache[ref] = (now, value)
        return value

    def _read(self, ref: SecretRef) -> str:
        try:
            if ref.store == "ssm":
                response = self._ssm().get_parameter(Name=ref.name, WithDecryption=True)
                value = response["Parameter"]["Value"]
            else:
                value = _secret_string(self._secretsmanager().get_secret_value(SecretId=ref.name))
        except ClientError as exc:
            if aws.is_transient(exc):
                raise  # a failing dependency: the caller answers 503, as for DynamoDB
            code = exc.response.get("Error", {}).get("Code", "error")
            raise SecretUnavailable(f"{ref.store} {ref.name}: {code}") from exc
        if not isinstance(value, str) or not value:
            raise SecretUnavailable(f"{ref.store} {ref.name}: empty")
        return value


def _secret_string(response: dict[str, Any]) -> str:
    """A plain string, or a JSON object with a `client_secret` member (a common way to store one)."""
    value = response.get("SecretString")
    if not isinstance(value, str):
        return ""
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            return value
        secret = document.get("client_secret") if isinstance(document, dict) else None
        return secret if isinstance(secret, str) else ""
    return value
