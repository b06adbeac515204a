"""Discovery of the authorization server (RFC 8414) and of the wallet API's resource (RFC 9728)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from wallet_mcp.cli.errors import ServiceError
from wallet_mcp.cli.http_client import network_reason

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuthorizationServer:
    issuer: str
    token_endpoint: str
    authorization_endpoint: str | None
    registration_endpoint: str | None
    revocation_endpoint: str | None
    iss_parameter_supported: bool
    """RFC 9207 §3: when advertised, every authorization response must carry `iss`."""


def well_known_url(identifier: str, name: str) -> str:
    """RFC 8414 §3.1, RFC 9728 §3.1: `/.well-known/<name>` goes between the host and the path."""
    parts = urlsplit(identifier)
    return f"{parts.scheme}://{parts.netloc}/.well-known/{name}{parts.path.rstrip('/')}"


def same_issuer(a: str, b: str) -> bool:
    """Simple string comparison (RFC 8414 §3.3), a root issuer's trailing slash aside."""
    return a.rstrip("/") == b.rstrip("/") if urlsplit(a).path in ("", "/") else a == b


def _get_json(http: httpx2.Client, url: str) -> tuple[int, Any]:
    try:
        response = http.get(url, headers={"Accept": "application/json"})
    except httpx2.HTTPError as exc:
        raise ServiceError(f"cannot reach {url}: {network_reason(exc)}") from exc
    try:
        return response.status_code, response.json() if response.status_code == 200 else None
    except ValueError:
        return response.status_code, None


def discover_authorization_server(http: httpx2.Client, issuer: str) -> AuthorizationServer:
    url = well_known_url(issuer, "oauth-authorization-server")
    status, document = _get_json(http, url)
    if status != 200 or not isinstance(document, dict):
        raise ServiceError(f"{url} answered HTTP {status}, not authorization server metadata")
    found = document.get("issuer")
    if not isinstance(found, str) or not same_issuer(found, issuer):
        # RFC 8414 §3.3: a document naming another issuer must not be used (mix-up, impersonation)
        raise ServiceError(f"{url} names the issuer {found!r}, not {issuer!r}; refusing to use it")

    def endpoint(name: str) -> str | None:
        value = document.get(name)
        return value if isinstance(value, str) and value.startswith(("http://", "https://")) else None

    token_endpoint = endpoint("token_endpoint")
    if token_endpoint is None:
        raise ServiceError(f"{url} has no token_endpoint")
    return AuthorizationServer(
        issuer=found,
        token_endpoint=token_endpoint,
        authorization_endpoint=endpoint("authorization_endpoint"),
        registration_endpoint=endpoint("registration_endpoint"),
        revocation_endpoint=endpoint("revocation_endpoint"),
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported") is True,
    )


def discover_api_resource(http: httpx2.Client, api_base_url: str, issuer: str) -> str:
    """The wallet API's resource identifier (`resource` of RFC 8707 token requests).

    Read from `<base>/.well-known/oauth-protected-resource/api`; a server without that document
    gets the conventional `<base>/api`. A document that names another resource (RFC 9728 §3.3) or
    does not list our authorization server is refused: tokens would be minted for the wrong place.
    """
    expected = f"{api_base_url}/api"
    url = well_known_url(expected, "oauth-protected-resource")
    status, document = _get_json(http, url)
    if status != 200 or not isinstance(document, dict):
        logger.debug("no protected resource metadata at %s (HTTP %s); using %s", url, status, expected)
        return expected
    resource = document.get("resource")
    if resource != expected:
        raise ServiceError(f"{url} describes the resource {resource!r}, not {expected!r}")
    servers = document.get("authorization_servers")
    if isinstance(servers, list) and not any(isinstance(s, str) and same_issuer(s, issuer) for s in servers):
        raise ServiceError(
            f"the API at {expected} trusts {', '.join(map(str, servers))}, not {issuer}: "
            "set AUTHORIZATION_SERVER_URL to one of those"
        )
    return expected
