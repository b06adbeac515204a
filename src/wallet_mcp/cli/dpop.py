"""DPoP on the command's side (RFC 9449): its key, proofs on its token requests and on its calls to
`/mcp` and `/api`, and the servers' nonces.

Switched on by `--dpop` or `WALLET_MCP_DPOP=1` (`CliSettings.dpop`); a saved login that was bound
uses it by itself. The key is an EC P-256 private key, `dpop-key.pem` in the config directory
(0600 like every credential there, created on first use under the directory's lock, never
logged); proofs are ES256 (the one algorithm every profile of the server accepts). Every token
request carries a proof, so the tokens are bound to the key (`cnf.jkt`; a public client's refresh
token too); every request with such a token sends `Authorization: DPoP <token>` and a proof with
`ath`. A server that asks for a nonce (`use_dpop_nonce`: a 400 at the token endpoint, a 401
challenge at a resource) gets the request once more with the nonce of its `DPoP-Nonce` header,
which is kept per origin and renewed from every answer (§8, §9).

The official SDK's OAuth providers have no DPoP and refuse a `DPoP` token type: for `call` and
`tools`, `DpopAuth` wraps their flow, signing what they send and showing them the token type they
expect.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wallet_mcp.cli.errors import ConfigurationError, ServiceError
from wallet_mcp.cli.storage import FILE_MODE, exclusive_lock, private_directory
from wallet_mcp.primitives.dpop import ProofSigner

KEY_FILE: Final = "dpop-key.pem"
ENABLE_HINT: Final = "the server requires DPoP-bound tokens: pass --dpop or set WALLET_MCP_DPOP=1"


def key_path(directory: Path) -> Path:
    return directory / KEY_FILE


def load_key(directory: Path, *, create: bool = True) -> ProofSigner:
    """The command's DPoP key, created if `create` and there is none yet."""
    path = key_path(directory)
    with exclusive_lock(directory):
        if not path.exists():
            if not create:
                raise ConfigurationError(
                    f"the DPoP key {path} is gone, and the saved login is bound to it: "
                    "run `wallet-mcp login` again"
                )
            _write_new_key(path)
    if sys.platform != "win32" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise ConfigurationError(f"{path} is readable by other users: chmod 600 it (or delete it)")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"{path} is not an unencrypted PEM private key: delete it") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigurationError(f"{path} must hold an EC P-256 key: delete it, a new one is made")
    return ProofSigner(key, "ES256")


def _write_new_key(path: Path) -> None:
    private_directory(path.parent)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class DpopSession:
    """One process's proofs: the key, and the nonce each server (origin) last gave."""

    def __init__(self, signer: ProofSigner) -> None:
        self.signer = signer
        self._nonces: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def jkt(self) -> str:
        return self.signer.jkt

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        with self._lock:
            nonce = self._nonces.get(_origin(url))
        return self.signer.proof(method, url, nonce=nonce, access_token=access_token)

    def remember(self, url: str, headers: Mapping[str, str]) -> None:
        nonce = headers.get("dpop-nonce")
        if nonce and len(nonce) <= 256:
            with self._lock:
                self._nonces[_origin(url)] = nonce

    @staticmethod
    def asks_for_nonce(response: httpx2.Response) -> bool:
        """§8: a 400 `use_dpop_nonce` from the token endpoint; §9: a 401 challenge from a resource."""
        if "dpop-nonce" not in response.headers:
            return False
        if response.status_code == 401:
            return "use_dpop_nonce" in response.headers.get("www-authenticate", "")
        if response.status_code == 400:
            try:
                body: Any = json.loads(response.content)
            except ValueError:
                return False
            return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
        return False


def send(
    http: httpx2.Client,
    dpop: DpopSession,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> httpx2.Response:
    """`method url` with a proof (and `Authorization: DPoP` for `access_token`), sent once more
    with the server's nonce if it asks for one. httpx errors are the caller's to word."""
    base = dict(headers or {})
    if access_token is not None:
        base["Authorization"] = f"DPoP {access_token}"
    response = http.request(
        method, url, headers={**base, "DPoP": dpop.proof(method, url, access_token)}, **kwargs
    )
    dpop.remember(url, response.headers)
    if dpop.asks_for_nonce(response):
        response = http.request(
            method, url, headers={**base, "DPoP": dpop.proof(method, url, access_token)}, **kwargs
        )
        dpop.remember(url, response.headers)
    return response


def _is_token_request(request: httpx2.Request) -> bool:
    if request.method != "POST" or not request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return False
    try:
        content = request.content
    except httpx2.RequestNotRead:
        return False
    return content.startswith(b"grant_type=") or b"&grant_type=" in content


class DpopAuth(httpx2.Auth):
    """The SDK's OAuth provider (`inner`) with DPoP: a proof on each of its token requests, the
    token answered as `DPoP` shown to it as the `Bearer` it accepts, and `Authorization: Bearer`
    on its requests turned into `DPoP` with a proof (`ath`). Nonce requests are answered here,
    so the provider never sees them."""

    requires_response_body = False  # the MCP stream must not be read here; token answers are

    def __init__(self, inner: httpx2.Auth, dpop: DpopSession) -> None:
        self._inner = inner
        self._dpop = dpop

    def _sign(self, request: httpx2.Request) -> bool:
        """Add the proof; True for a token request."""
        url = str(request.url)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "dpop") and token:
            request.headers["Authorization"] = f"DPoP {token}"
            request.headers["DPoP"] = self._dpop.proof(request.method, url, token)
            return False
        if _is_token_request(request):
            request.headers["DPoP"] = self._dpop.proof(request.method, url)
            return True
        return False

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow = self._inner.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                token_request = self._sign(outgoing)
                response = yield outgoing
                if token_request or response.status_code in (400, 401):
                    await response.aread()
                self._dpop.remember(str(outgoing.url), response.headers)
                if self._dpop.asks_for_nonce(response):
                    self._sign(outgoing)
                    response = yield outgoing
                    if token_request or response.status_code in (400, 401):
                        await response.aread()
                    self._dpop.remember(str(outgoing.url), response.headers)
                if token_request:
                    response = _as_bearer(outgoing, response)
                outgoing = await flow.asend(response)
        except StopAsyncIteration:
            return
        finally:
            await flow.aclose()


def _as_bearer(request: httpx2.Request, response: httpx2.Response) -> httpx2.Response:
    """A token answer of type `DPoP` as the SDK's `OAuthToken` accepts it (`Bearer`); the
    requests that carry the token are turned back into `DPoP` by `DpopAuth._sign`."""
    if response.status_code != 200:
        return response
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        return response
    if not isinstance(body, dict) or "access_token" not in body:
        return response
    if str(body.get("token_type", "")).lower() != "dpop":
        raise token_type_error(str(request.url), body.get("token_type"))
    body["token_type"] = "Bearer"
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
    ]
    return httpx2.Response(response.status_code, headers=headers, json=body, request=request)


def token_type_error(token_endpoint: str, token_type: object) -> ServiceError:
    return ServiceError(
        f"{token_endpoint} answered a {token_type!r} token although a DPoP proof was sent: the server "
        "does not bind tokens to DPoP keys (run without --dpop / WALLET_MCP_DPOP)"
    )
