"""Files in the user's config directory: saved logins, client registrations, the SDK's token storage.

The directory is 0700 and every file 0600, written atomically (a temporary file created 0600 in
the same directory, then renamed over the old one), so no other local user can read a token and a
crash never leaves half a file. Several processes may share a login (Claude Desktop and Claude
Code each run a bridge): a refresh happens under an exclusive lock and re-reads the file first,
because the server rotates refresh tokens and a rotated one presented again after the grace window
revokes the whole family (RFC 9700 §4.14.2).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio.to_thread
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from wallet_mcp.cli.errors import CliError
from wallet_mcp.cli.refresh import refresh_due

if sys.platform != "win32":
    import fcntl

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def private_directory(path: Path) -> Path:
    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    if sys.platform != "win32":
        os.chmod(path, DIRECTORY_MODE)
    return path


def write_private_json(path: Path, document: dict[str, Any]) -> None:
    private_directory(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.chmod(temporary, FILE_MODE)  # mkstemp creates 0600 already; say so explicitly
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON; delete it and sign in again") from exc
    if not isinstance(document, dict):
        raise CliError(f"{path} is not a wallet-mcp file; delete it and sign in again")
    return document


@contextmanager
def exclusive_lock(directory: Path) -> Iterator[None]:
    """An advisory lock across processes (flock on `<directory>/.lock`; none on Windows)."""
    private_directory(directory)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        if sys.platform != "win32":
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def file_key(url: str) -> str:
    """A readable, collision-free file name part for a URL: `http_localhost_3000-1a2b3c4d`."""
    readable = re.sub(r"[^A-Za-z0-9]+", "_", url.split("://", 1)[-1]).strip("_")[:60]
    return f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:8]}"


@dataclass(frozen=True, slots=True)
class LoginRecord:
    """A person's tokens for the wallet API, from `wallet-mcp login`."""

    issuer: str
    client_id: str
    api_base_url: str
    resource: str
    scope: str
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    obtained_at: float
    expires_at: float
    dpop_jkt: str | None = None
    """The thumbprint of the DPoP key the tokens are bound to (`cli.dpop`); None: bearer tokens."""

    def to_json(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "api_base_url": self.api_base_url,
            "resource": self.resource,
            "scope": self.scope,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "obtained_at": self.obtained_at,
            "expires_at": self.expires_at,
            **({"dpop_jkt": self.dpop_jkt} if self.dpop_jkt else {}),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any], origin: Path) -> LoginRecord:
        try:
            record = cls(
                issuer=str(document["issuer"]),
                client_id=str(document["client_id"]),
                api_base_url=str(document["api_base_url"]),
                resource=str(document["resource"]),
                scope=str(document.get("scope") or ""),
                access_token=str(document["access_token"]),
                refresh_token=(str(document["refresh_token"]) if document.get("refresh_token") else None),
                obtained_at=float(document["obtained_at"]),
                expires_at=float(document["expires_at"]),
                dpop_jkt=str(document["dpop_jkt"]) if document.get("dpop_jkt") else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CliError(f"{origin} is incomplete; run `wallet-mcp login` again") from exc
        return record

    def expired(self) -> LoginRecord:
        """This record with its access token marked unusable (after the API refused it)."""
        return replace(self, expires_at=0.0)


class LoginStore:
    """One file per issuer: `<config>/login-<issuer key>.json`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, issuer: str) -> Path:
        return self.directory / f"login-{file_key(issuer)}.json"

    def load(self, issuer: str) -> LoginRecord | None:
        path = self.path_for(issuer)
        document = read_json(path)
        return LoginRecord.from_json(document, path) if document is not None else None

    def all(self) -> list[LoginRecord]:
        found = []
        for path in sorted(self.directory.glob("login-*.json")):
            document = read_json(path)
            if document is not None:
                found.append(LoginRecord.from_json(document, path))
        return found

    def save(self, record: LoginRecord) -> Path:
        path = self.path_for(record.issuer)
        write_private_json(path, record.to_json())
        return path

    def delete(self, issuer: str) -> bool:
        try:
            self.path_for(issuer).unlink()
        except FileNotFoundError:
            return False
        return True

    @contextmanager
    def lock(self) -> Iterator[None]:
        with exclusive_lock(self.directory):
            yield


class ClientRegistrations:
    """The public client `login` registered at each issuer (RFC 7591): `<config>/clients.json`."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "clients.json"

    def get(self, issuer: str) -> str | None:
        entry = (read_json(self.path) or {}).get(issuer)
        client_id = entry.get("client_id") if isinstance(entry, dict) else None
        return client_id if isinstance(client_id, str) else None

    def put(self, issuer: str, client_id: str) -> None:
        with exclusive_lock(self.path.parent):
            document = read_json(self.path) or {}
            document[issuer] = {"client_id": client_id, "registered_at": int(time.time())}
            write_private_json(self.path, document)


class FileTokenStorage:
    """The SDK's `TokenStorage` (mcp.client.auth) in one 0600 file per MCP server URL.

    The SDK keeps no expiry across processes, and with a stored access token it would answer an
    expiry's 401 with a whole new browser authorization; so the absolute expiry is stored here and
    an access token due for renewal (`refresh.refresh_due`) is handed back empty, which makes the
    SDK refresh it instead (with the metadata `remote.preload_discovery` gives it).
    """

    def __init__(
        self,
        directory: Path,
        server_url: str,
        clock: Callable[[], float] = time.time,
        *,
        bound: bool = False,
    ) -> None:
        """`bound`: the DPoP-bound tokens of `server_url` (`cli.dpop`), kept in a file of their own."""
        self.directory = directory
        self.path = directory / f"mcp-{file_key(server_url)}{'-dpop' if bound else ''}.json"
        self._clock = clock

    def _read(self) -> dict[str, Any]:
        return read_json(self.path) or {}

    def _update(self, **changes: Any) -> None:
        with exclusive_lock(self.directory):
            document = self._read()
            document.update(changes)
            write_private_json(self.path, document)

    async def get_tokens(self) -> OAuthToken | None:
        document = await anyio.to_thread.run_sync(self._read)
        if not isinstance(document.get("tokens"), dict):
            return None
        tokens = OAuthToken.model_validate(document["tokens"])
        expires_at = document.get("expires_at")
        if not isinstance(expires_at, int | float):
            return tokens
        now = self._clock()
        if refresh_due(float(document.get("obtained_at") or 0), expires_at, now):
            return tokens.model_copy(update={"access_token": "", "expires_in": None})
        return tokens.model_copy(update={"expires_in": int(expires_at - now)})

    async def set_tokens(self, tokens: OAuthToken) -> None:
        now = self._clock()
        expires_at = now + tokens.expires_in if tokens.expires_in is not None else None
        document = {"tokens": tokens.model_dump(mode="json"), "obtained_at": now, "expires_at": expires_at}
        await anyio.to_thread.run_sync(lambda: self._update(**document))

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        document = await anyio.to_thread.run_sync(self._read)
        info = document.get("client_info")
        return OAuthClientInformationFull.model_validate(info) if isinstance(info, dict) else None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        await anyio.to_thread.run_sync(
            lambda: self._update(client_info=client_info.model_dump(mode="json", exclude_none=True))
        )

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True
