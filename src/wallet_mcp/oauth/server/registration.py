"""Dynamic client registration (RFC 7591), with the rules MCP clients need.

Validated: redirect URIs by `application_type` (see `redirect_uris`), the three token-endpoint
authentication methods, grant and response types that agree with each other (§2.1), scopes this
server knows, and bounded names. Unknown metadata is ignored (§2). The client id is `mcp_…`; a
confidential client gets a `secret_…` secret, shown once in the response and stored as a digest.
A registration that never obtains a token expires. Each registration, and each one refused with
its RFC 7591 §3.2.2 error, is a step of the connection log (`storage.connection_log`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

from wallet_mcp.credentials import opaque
from wallet_mcp.limits import Rules
from wallet_mcp.primitives.client_assertions import InvalidJwks, validate_jwks
from wallet_mcp.primitives.errors import (
    InvalidClientMetadata,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    PayloadTooLarge,
)
from wallet_mcp.primitives.redirect_uris import ApplicationType, infer_application_type, validate_redirect_uri
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES, format_scope, parse_scope
from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.clients import ClientRecord, ClientStore, TokenEndpointAuthMethod
from wallet_mcp.storage.connection_log import UNREGISTERED, ConnectionLog, failed, succeeded
from wallet_mcp.storage.rate_limits import RateLimits

MAX_BODY_BYTES: Final = 16 * 1024
MAX_REDIRECT_URIS: Final = 10
MAX_CLIENT_NAME: Final = 100
MAX_URL: Final = 2000
GRANT_TYPES: Final = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",  # RFC 7523 §2.1: ID-JAGs (docs/enterprise.md)
)
JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True, slots=True)
class Registration:
    record: ClientRecord
    client_secret: str | None

    def response(self) -> dict[str, Any]:
        """RFC 7591 §3.2.1: the client information, with every registered metadata value."""
        record = self.record
        body: dict[str, Any] = {
            "client_id": record.client_id,
            "client_id_issued_at": record.created_at,
            "client_name": record.client_name,
            "redirect_uris": list(record.redirect_uris),
            "grant_types": list(record.grant_types),
            "response_types": list(record.response_types),
            "token_endpoint_auth_method": record.token_endpoint_auth_method,
            "scope": format_scope(record.default_scope or record.scope),
            "application_type": record.application_type,
        }
        if self.client_secret is not None:
            body["client_secret"] = self.client_secret
            body["client_secret_expires_at"] = 0
        if record.jwks is not None:
            body["jwks"] = json.loads(record.jwks)
        if record.require_pushed_authorization_requests:
            body["require_pushed_authorization_requests"] = True
        if record.dpop_bound_access_tokens:
            body["dpop_bound_access_tokens"] = True  # RFC 9449 §5.2
        for name in ("client_uri", "logo_uri", "jwks_uri"):
            value = getattr(record, name)
            if value:
                body[name] = value
        return body


def _strings(metadata: Mapping[str, Any], name: str) -> list[str] | None:
    value = metadata.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings")
    return value


def _string(metadata: Mapping[str, Any], name: str) -> str | None:
    value = metadata.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidClientMetadata(f"{name} must be a string")
    return value


def _flag(metadata: Mapping[str, Any], name: str) -> bool:
    value = metadata.get(name, False)
    if not isinstance(value, bool):
        raise InvalidClientMetadata(f"{name} must be true or false")
    return value


def _url(metadata: Mapping[str, Any], name: str) -> str | None:
    value = _string(metadata, name)
    if value is None:
        return None
    if len(value) > MAX_URL or not value.startswith("https://") or any(c.isspace() for c in value):
        raise InvalidClientMetadata(f"{name} must be an https URL")
    return value


def clean_name(raw: str) -> str:
    """Control characters removed, white space collapsed; the page escapes it when shown."""
    return " ".join("".join(c for c in raw if c.isprintable()).split())


def parse_metadata(body: bytes, content_type: str | None) -> Mapping[str, Any]:
    if (content_type or "").split(";", 1)[0].strip().lower() != "application/json":
        raise InvalidRequest("the body must be application/json")
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge("registration request too large")
    try:
        metadata = json.loads(body)
        # a JSON escape may decode to a lone surrogate, which no UTF-8 store or response can hold
        json.dumps(metadata, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as exc:  # UnicodeError is a ValueError; deep nesting fits 16 KB
        raise InvalidClientMetadata("the body is not valid JSON") from exc
    if not isinstance(metadata, dict):
        raise InvalidClientMetadata("the body must be a JSON object")
    return metadata


def client_keys(
    metadata: Mapping[str, Any], auth_method: str, *, fapi2: bool = False
) -> tuple[str | None, str | None]:
    """RFC 7591 §2 `jwks` (compact JSON, as stored) or `jwks_uri`: exactly one, and only for
    `private_key_jwt` (RFC 7523 §2.2: the keys its assertions are verified with). `fapi2`: each
    key usable under the FAPI 2.0 profile (PS256/ES256, RSA ≥ 2048 bits; a `jwks_uri`'s keys are
    checked when an assertion is verified)."""
    jwks, jwks_uri = metadata.get("jwks"), _url(metadata, "jwks_uri")
    if auth_method != "private_key_jwt":
        if jwks is not None or jwks_uri is not None:
            raise InvalidClientMetadata("jwks and jwks_uri are only for private_key_jwt clients")
        return None, None
    # RFC 7591 §2: "The jwks_uri and jwks parameters MUST NOT both be present"
    if (jwks is None) == (jwks_uri is None):
        raise InvalidClientMetadata("private_key_jwt needs exactly one of jwks or jwks_uri")
    if jwks is None:
        return None, jwks_uri
    try:
        return json.dumps(validate_jwks(jwks, fapi2=fapi2), separators=(",", ":")), None
    except InvalidJwks as exc:
        raise InvalidClientMetadata(str(exc)) from exc


def register(metadata: Mapping[str, Any], *, now: int, unused_ttl: int, fapi2: bool = False) -> Registration:
    auth_method = _string(metadata, "token_endpoint_auth_method") or "client_secret_basic"
    if auth_method not in get_args(TokenEndpointAuthMethod):
        raise InvalidClientMetadata(
            "token_endpoint_auth_method must be none, client_secret_basic, client_secret_post"
            " or private_key_jwt"
        )
    jwks, jwks_uri = client_keys(metadata, auth_method, fapi2=fapi2)
    grant_types = _strings(metadata, "grant_types") or ["authorization_code"]
    unknown_grants = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown_grants:
        raise InvalidClientMetadata(f"unsupported grant type: {unknown_grants[0][:64]}")
    if not {"authorization_code", "client_credentials", JWT_BEARER} & set(grant_types):
        raise InvalidClientMetadata(
            f"grant_types must include authorization_code, client_credentials or {JWT_BEARER}"
        )
    if "client_credentials" in grant_types and auth_method == "none":
        raise InvalidClientMetadata("client_credentials needs a confidential client (a secret or keys)")
    # a public client may hold the jwt-bearer grant: a workload token is its proof (docs/enterprise.md
    # § Workload identity); an ID-JAG, which names its client, is refused to it at the token endpoint

    requested_response_types = _strings(metadata, "response_types")
    response_types: list[str] = []
    if "authorization_code" in grant_types:
        if requested_response_types is not None and requested_response_types != ["code"]:
            raise InvalidClientMetadata('response_types must be ["code"] with the authorization_code grant')
        response_types = ["code"]
    elif requested_response_types:
        raise InvalidClientMetadata("response_types needs the authorization_code grant (RFC 7591 §2.1)")

    redirect_uris = _strings(metadata, "redirect_uris") or []
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidClientMetadata("redirect_uris is required for the authorization_code grant")
    if len(redirect_uris) > MAX_REDIRECT_URIS:
        raise InvalidClientMetadata(f"at most {MAX_REDIRECT_URIS} redirect_uris")
    app_type_raw = _string(metadata, "application_type")
    if app_type_raw is not None and app_type_raw not in ("web", "native"):
        raise InvalidClientMetadata("application_type must be web or native")
    application_type: ApplicationType = app_type_raw or infer_application_type(redirect_uris)  # type: ignore[assignment]
    for uri in redirect_uris:
        validate_redirect_uri(uri, application_type)

    try:
        requested_scope = parse_scope(_string(metadata, "scope"))
    except InvalidScope as exc:
        raise InvalidClientMetadata(exc.description) from exc
    # scopes this server does not know are ignored; none known: the defaults (RFC 7591 §2)
    default_scope = tuple(s for s in SUPPORTED_SCOPES if s in requested_scope) or None

    name = clean_name(_string(metadata, "client_name") or "")
    if len(name) > MAX_CLIENT_NAME:
        raise InvalidClientMetadata(f"client_name must be at most {MAX_CLIENT_NAME} characters")

    client_id = "mcp_" + secrets.token_urlsafe(18)
    client_secret = None if auth_method in ("none", "private_key_jwt") else opaque.new_secret("secret_")
    record = ClientRecord(
        client_id=client_id,
        client_name=name or "Unnamed application",
        token_endpoint_auth_method=auth_method,  # type: ignore[arg-type]
        client_secret_hash=opaque.digest(client_secret) if client_secret else None,
        grant_types=tuple(dict.fromkeys(grant_types)),
        response_types=tuple(response_types),
        redirect_uris=tuple(dict.fromkeys(redirect_uris)),
        # A dynamically registered client may ask for any scope this server supports: the user's
        # consent gates each one, and MCP clients register with the scope they need first, then
        # step up (MCP 2025-11-25 §Scope Challenge Handling). The registered scope becomes the
        # default for authorization requests that name none.
        scope=SUPPORTED_SCOPES,
        default_scope=default_scope,
        created_at=now,
        application_type=application_type,
        client_uri=_url(metadata, "client_uri"),
        logo_uri=_url(metadata, "logo_uri"),
        expires_at=now + unused_ttl,
        self_registered=True,
        jwks=jwks,
        jwks_uri=jwks_uri,
        require_pushed_authorization_requests=_flag(metadata, "require_pushed_authorization_requests"),
        dpop_bound_access_tokens=_flag(metadata, "dpop_bound_access_tokens"),
    )
    return Registration(record=record, client_secret=client_secret)


class RegistrationEndpoint:
    """`POST /oauth/register` (RFC 7591 §3): validate, count, store, audit, log the step."""

    def __init__(
        self,
        clients: ClientStore,
        rates: RateLimits,
        rules: Rules,
        audit: AuditLog,
        *,
        unused_ttl: int,
        clock: Callable[[], int],
        connections: ConnectionLog,
        secrets_allowed: bool = True,
        fapi2: bool = False,
    ) -> None:
        """`secrets_allowed`: False under the FAPI 2.0 profile, where only `private_key_jwt`
        clients register (no secrets, no public clients); `fapi2`: their keys PS256/ES256, RSA
        ≥ 2048 bits (§5.4)."""
        self._secrets_allowed = secrets_allowed
        self._fapi2 = fapi2
        self._clients = clients
        self._rates = rates
        self._rules = rules
        self._audit = audit
        self._unused_ttl = unused_ttl
        self._clock = clock
        self._connections = connections

    def handle(self, body: bytes, content_type: str | None, source: str) -> Registration:
        metadata: Mapping[str, Any] = {}
        try:
            metadata = parse_metadata(body, content_type)
            registration = self._register(metadata, source)
        except OAuthError as exc:
            # no client id was issued: kept under UNREGISTERED, with the name the client gave
            name = metadata.get("client_name")
            self._connections.record(
                failed(
                    UNREGISTERED,
                    "registration",
                    exc.error,
                    exc.description,
                    exc.status_code,
                    client_name=clean_name(name) if isinstance(name, str) else None,
                )
            )
            raise
        record = registration.record
        kind = "confidential" if record.is_confidential else "public"
        uris = len(record.redirect_uris)
        self._connections.record(
            succeeded(
                record.client_id,
                "registration",
                f"registered ({kind} client, {uris} redirect URI{'' if uris == 1 else 's'}, "
                f"{record.application_type})",
                201,
                client_name=record.client_name,
            )
        )
        return registration

    def _register(self, metadata: Mapping[str, Any], source: str) -> Registration:
        now = self._clock()
        registration = register(metadata, now=now, unused_ttl=self._unused_ttl, fapi2=self._fapi2)
        if not self._secrets_allowed and registration.record.token_endpoint_auth_method != "private_key_jwt":
            # FAPI 2.0 §5.3.2.1: confidential clients only, authenticating with private_key_jwt
            raise InvalidClientMetadata(
                "only private_key_jwt clients are registered here (FAPI 2.0): register "
                "token_endpoint_auth_method private_key_jwt with jwks or jwks_uri"
            )
        # only registrations that would be stored count: per address, and overall (storage stays bounded)
        self._rates.hit(self._rules.register_address, source, now)
        self._rates.hit(self._rules.register_all, "all", now)
        record = registration.record
        self._clients.create(record)
        self._audit.record(
            AuditEvent(
                "client_registered",
                subject=record.client_id,
                client_id=record.client_id,
                source=source,
                details={"auth_method": record.token_endpoint_auth_method},
            )
        )
        return registration
