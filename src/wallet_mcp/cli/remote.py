"""`wallet-mcp tools` and `wallet-mcp call`: the remote MCP server through the official SDK client.

Streamable HTTP (`mcp.Client` over `streamable_http_client`) with the SDK's own OAuth: client
credentials (`ClientCredentialsOAuthProvider`, bound to the configured issuer) when
`MCP_CLIENT_ID`/`MCP_CLIENT_SECRET` are set, else the authorization-code flow of
`OAuthClientProvider` (discovery from the 401, dynamic registration, PKCE, step-up) with the same
browser and loopback receiver as `login`, and its tokens in a 0600 file of the config directory.
With DPoP (`--dpop`, `WALLET_MCP_DPOP=1`) the provider is wrapped in `cli.dpop.DpopAuth`: its
token requests and MCP requests carry proofs of the command's key, and the code is bound to it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import anyio
import anyio.to_thread
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.auth import OAuthClientProvider, OAuthFlowError, OAuthRegistrationError, OAuthTokenError
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
)
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    build_protected_resource_metadata_discovery_urls,
    handle_auth_metadata_response,
    handle_protected_resource_response,
    validate_metadata_issuer,
)
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from mcp.shared.exceptions import MCPError

from wallet_mcp.cli import dpop as dpop_client
from wallet_mcp.cli.errors import CliError, ServiceError
from wallet_mcp.cli.http_client import USER_AGENT
from wallet_mcp.cli.login import CLIENT_NAME
from wallet_mcp.cli.loopback import LoopbackReceiver, launch_browser
from wallet_mcp.cli.settings import CliSettings
from wallet_mcp.cli.storage import FileTokenStorage

HTTP_TIMEOUT: Final = httpx2.Timeout(30.0, connect=5.0)
READ_TIMEOUT_SECONDS: Final = 60.0


class MemoryTokenStorage:
    """Client-credentials tokens live as long as the command: a new one costs one request."""

    def __init__(self) -> None:
        self._tokens: OAuthToken | None = None
        self._client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self._tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self._tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self._client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self._client_info = client_info


def parse_arguments(pairs: Sequence[str]) -> dict[str, Any]:
    """`key=value` pairs; a value is JSON when it parses as JSON (`3`, `true`, `"-12.50"`), else text."""
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--arg {pair!r}: expected key=value", 2)
        if key in arguments:
            raise CliError(f"--arg {key} is given twice", 2)
        try:
            arguments[key] = json.loads(raw)
        except ValueError:
            arguments[key] = raw
    return arguments


async def preload_discovery(provider: OAuthClientProvider, server_url: str) -> None:
    """Discover the authorization server before the first request, as the SDK does after a 401.

    The SDK keeps discovery in memory only: in a new process, a stored refresh token would go to
    a guessed `<origin>/token` and fail, and the user would be sent to the browser again. With the
    metadata found here (RFC 9728, then RFC 8414 with its issuer checked), the SDK refreshes.
    """
    async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT, headers={"User-Agent": USER_AGENT}) as http:
        for url in build_protected_resource_metadata_discovery_urls(None, server_url):
            resource = await handle_protected_resource_response(await http.get(url))
            if resource is not None and resource.authorization_servers:
                break
        else:
            return
        issuer = str(resource.authorization_servers[0])
        for url in build_oauth_authorization_server_metadata_discovery_urls(issuer, server_url):
            usable, metadata = await handle_auth_metadata_response(await http.get(url))
            if metadata is not None:
                validate_metadata_issuer(metadata, issuer)
                provider.context.protected_resource_metadata = resource
                provider.context.auth_server_url = issuer
                provider.context.oauth_metadata = metadata
                return
            if not usable:
                return


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@asynccontextmanager
async def connected(settings: CliSettings, *, sign_in_timeout: float | None = None) -> AsyncIterator[Client]:
    url = settings.remote_mcp_url()
    async with AsyncExitStack() as stack:
        auth: httpx2.Auth
        signer = settings.assertion_signer()
        dpop = dpop_client.DpopSession(dpop_client.load_key(settings.config_dir)) if settings.dpop else None
        if settings.client_id and signer is not None:
            # RFC 7523 §2.2 through the SDK's own provider; aud is the discovered issuer
            auth = PrivateKeyJWTOAuthProvider(
                server_url=url,
                storage=MemoryTokenStorage(),
                client_id=settings.client_id,
                assertion_provider=signer.provider(),
                scope=settings.scope,
                issuer=settings.authorization_server_url or _origin(url),
            )
        elif settings.client_id and settings.client_secret:
            auth = ClientCredentialsOAuthProvider(
                server_url=url,
                storage=MemoryTokenStorage(),
                client_id=settings.client_id,
                client_secret=settings.client_secret,
                token_endpoint_auth_method="client_secret_basic",
                scope=settings.scope,
                issuer=settings.authorization_server_url or _origin(url),
            )
        else:
            receiver = stack.enter_context(LoopbackReceiver())
            wait = sign_in_timeout if sign_in_timeout is not None else settings.login_timeout

            async def redirect(authorization_url: str) -> None:
                if dpop is not None:
                    # RFC 9449 §10: only the holder of this key may redeem the code
                    authorization_url += f"&{urlencode({'dpop_jkt': dpop.jkt})}"
                launch_browser(authorization_url)

            async def callback() -> AuthorizationCodeResult:
                params = await anyio.to_thread.run_sync(receiver.wait, wait)
                if "error" in params:
                    raise CliError(
                        f"sign-in was not completed: {params.get('error_description') or params['error']}"
                    )
                # the SDK checks state and iss (RFC 9207) before it redeems the code
                return AuthorizationCodeResult(
                    code=params["code"], state=params.get("state"), iss=params.get("iss")
                )

            # bound and bearer tokens are kept apart: switching DPoP on or off never sends one as the other
            storage = FileTokenStorage(settings.config_dir, url, bound=dpop is not None)
            auth = OAuthClientProvider(
                server_url=url,
                client_metadata=OAuthClientMetadata(
                    client_name=CLIENT_NAME,
                    redirect_uris=[receiver.redirect_uri],  # type: ignore[list-item]  # AnyUrl accepts str
                    grant_types=["authorization_code", "refresh_token"],
                    response_types=["code"],
                    token_endpoint_auth_method="none",
                    scope=settings.scope,
                ),
                storage=storage,
                redirect_handler=redirect,
                callback_handler=callback,
            )
            if await storage.get_tokens() is not None:
                await preload_discovery(auth, url)
        if dpop is not None:
            auth = dpop_client.DpopAuth(auth, dpop)
        http = await stack.enter_async_context(
            httpx2.AsyncClient(auth=auth, timeout=HTTP_TIMEOUT, headers={"User-Agent": USER_AGENT})
        )
        client = await stack.enter_async_context(
            Client(streamable_http_client(url, http_client=http), read_timeout_seconds=READ_TIMEOUT_SECONDS)
        )
        yield client


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _run(settings: CliSettings, work: Any) -> int:
    try:
        result: int = anyio.run(work)
    except BaseException as exc:  # task groups wrap failures in exception groups
        leaf = _leaf(exc)
        if leaf is exc and not isinstance(exc, Exception):
            raise
        if isinstance(leaf, CliError):
            raise leaf from None
        if isinstance(leaf, ServiceError):
            raise CliError(leaf.message) from None
        if isinstance(leaf, OAuthFlowError | OAuthTokenError | OAuthRegistrationError):
            hint = f"; {dpop_client.ENABLE_HINT}" if "invalid_dpop_proof" in str(leaf) else ""
            raise CliError(f"authorization failed: {leaf}{hint}") from None
        if isinstance(leaf, MCPError):
            raise CliError(f"the MCP server answered an error: {leaf}") from None
        if isinstance(leaf, httpx2.HTTPError):
            raise CliError(
                f"cannot reach {settings.remote_mcp_url()}: {leaf or type(leaf).__name__}"
            ) from None
        raise
    return result


def list_tools(settings: CliSettings, *, as_json: bool) -> int:
    async def work() -> int:
        async with connected(settings) as client:
            listed = await client.list_tools()
        if as_json:
            document = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed.tools]
            print(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            width = max((len(t.name) for t in listed.tools), default=0)
            for tool in listed.tools:
                print(f"{tool.name:<{width}}  {tool.description or tool.title or ''}")
        return 0

    return _run(settings, work)


def call_tool(
    settings: CliSettings, name: str, pairs: Sequence[str], *, as_json: bool, timeout: float | None
) -> int:
    arguments = parse_arguments(pairs)

    async def work() -> int:
        async with connected(settings, sign_in_timeout=timeout) as client:
            result = await client.call_tool(name, arguments)
        text = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
        if result.is_error:
            print(text or "the tool failed", file=sys.stderr)
            return 1
        if as_json:
            document = result.structured_content
            if document is None:
                document = [
                    c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in result.content
                ]
            print(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            print(text)
        return 0

    return _run(settings, work)
