"""Client administration for the /admin pages: create confidential clients, rotate secrets, edit
redirect URIs, grants and scopes, vouch for a client (verified), set its token lifetimes (within
the deployment's, `oauth.rules.lifetimes`), disable, enable and delete.
Every change is audited under the client's id (with the administrator in `details.by`), so a
client's history reads with one Query.

A new or rotated secret is returned once and stored only as its digest; a rotation takes effect
at once (the old secret stops working with the next token request). Clients that describe
themselves (Client ID Metadata Documents) are refreshed from their documents, so only what an
administrator decides — the scopes they may be granted, token lifetimes, verified, disabled,
deleted — is edited here, and no fetch of the document undoes it.

Disabling or deleting a client ends every grant it holds (`Revoker.end_client`): its secret and
refresh tokens stop at the token endpoint, its codes and remembered consents are void, and every
access token it holds stops at the resource servers within one revocation poll. Enabling it again
brings none of that back. Narrowing its scopes applies at its next refresh, and its outstanding
access tokens that carry a scope it may no longer have stop within one poll as well.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from wallet_mcp.credentials import opaque
from wallet_mcp.oauth.rules.lifetimes import KINDS, LABELS, Kind, Lifetimes, refusal
from wallet_mcp.oauth.rules.revocation import Actor, Revoker
from wallet_mcp.oauth.server.registration import (
    GRANT_TYPES,
    JWT_BEARER,
    MAX_CLIENT_NAME,
    MAX_REDIRECT_URIS,
    clean_name,
    client_keys,
)
from wallet_mcp.primitives.errors import InvalidClientMetadata, InvalidRedirectUri
from wallet_mcp.primitives.redirect_uris import infer_application_type, validate_redirect_uri
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES
from wallet_mcp.storage import items
from wallet_mcp.storage.audit import AuditEvent, AuditLog, Event
from wallet_mcp.storage.clients import ClientAlreadyExists, ClientRecord, ClientStore
from wallet_mcp.storage.connection_log import ConnectionLog, LoggedStep
from wallet_mcp.storage.revocations import RevocationList
from wallet_mcp.storage.users import UserStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

AUTH_METHODS: Final = ("client_secret_basic", "client_secret_post")
PAGE_SIZE: Final = 50


class InvalidClientForm(Exception):
    """What to tell the administrator about the submitted form."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientNotFound(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What an administrator sets on a client, validated."""

    client_name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: tuple[str, ...]
    owner_user_id: str | None
    token_endpoint_auth_method: str = "client_secret_basic"

    @classmethod
    def from_form(
        cls, form: Mapping[str, str], multi: Mapping[str, Sequence[str]], users: UserStore
    ) -> ClientSettings:
        """`form` holds single fields, `multi` the checkbox groups (`grant_types`, `scope`)."""
        name = clean_name(form.get("client_name", ""))
        if not name:
            raise InvalidClientForm("Give the client a name.")
        if len(name) > MAX_CLIENT_NAME:
            raise InvalidClientForm(f"The name may have at most {MAX_CLIENT_NAME} characters.")
        grants = tuple(g for g in GRANT_TYPES if g in multi.get("grant_types", ()))
        if not {"authorization_code", "client_credentials", JWT_BEARER} & set(grants):
            raise InvalidClientForm(
                "Choose the authorization code, the client credentials or the jwt-bearer (ID-JAG) grant."
            )
        if "refresh_token" in grants and "authorization_code" not in grants:
            raise InvalidClientForm("Refresh tokens come with the authorization code grant.")
        uris = tuple(dict.fromkeys(line.strip() for line in form.get("redirect_uris", "").splitlines()))
        uris = tuple(u for u in uris if u)
        if "authorization_code" in grants and not uris:
            raise InvalidClientForm("The authorization code grant needs at least one redirect URI.")
        if len(uris) > MAX_REDIRECT_URIS:
            raise InvalidClientForm(f"At most {MAX_REDIRECT_URIS} redirect URIs.")
        application_type = infer_application_type(uris)
        for uri in uris:
            try:
                validate_redirect_uri(uri, application_type)
            except InvalidRedirectUri as exc:
                raise InvalidClientForm(f"{uri[:200]}: {exc.description}") from exc
        unknown = [s for s in multi.get("scope", ()) if s not in SUPPORTED_SCOPES]
        if unknown:
            raise InvalidClientForm(f"Unknown scope: {unknown[0][:64]}")
        scope = tuple(s for s in SUPPORTED_SCOPES if s in multi.get("scope", ()))
        if not scope:
            raise InvalidClientForm("Choose at least one scope.")
        method = form.get("token_endpoint_auth_method") or "client_secret_basic"
        if method not in AUTH_METHODS:
            raise InvalidClientForm("Choose client_secret_basic or client_secret_post.")
        owner_user_id = None
        owner = form.get("owner", "").strip()
        if owner:
            user = users.get(owner[:256])
            if user is None:
                raise InvalidClientForm(f"No user named {owner[:64]!r}.")
            owner_user_id = user.user_id
        elif "client_credentials" in grants:
            raise InvalidClientForm("A client credentials client acts on one user's wallet: name its owner.")
        return cls(name, uris, grants, scope, owner_user_id, method)


@dataclass(frozen=True, slots=True)
class CreatedClient:
    record: ClientRecord
    client_secret: str


class ClientAdmin:
    def __init__(
        self,
        clients: ClientStore,
        users: UserStore,
        audit: AuditLog,
        revocations: RevocationList,
        revoker: Revoker,
        *,
        access_token_ttl: int,
        bounds: Lifetimes,
        clock: Callable[[], int] = lambda: int(time.time()),
        connections: ConnectionLog | None = None,
        fapi2: bool = False,
    ) -> None:
        """`fapi2`: keys set here must be usable under the FAPI 2.0 profile (PS256/ES256, RSA ≥ 2048 bits)."""
        self._fapi2 = fapi2
        self._connections = connections
        self._clients = clients
        self._users = users
        self._audit = audit
        self._revocations = revocations
        self._revoker = revoker
        self._access_ttl = access_token_ttl
        self.bounds = bounds
        """The deployment's token lifetimes: a client's defaults and upper bounds."""
        self._clock = clock

    def page(self, *, after: str | None, limit: int = PAGE_SIZE) -> tuple[list[ClientRecord], str | None]:
        """One page of clients, and where the next one starts (None: the last page)."""
        return self._clients.page(limit=max(1, min(limit, 100)), after=after)

    def get(self, client_id: str) -> ClientRecord:
        record = self._clients.get_any(client_id)
        if record is None:
            raise ClientNotFound(client_id)
        return record

    def owner_name(self, record: ClientRecord) -> str | None:
        if record.owner_user_id is None:
            return None
        user = self._users.get_by_id(record.owner_user_id)
        return user.username if user else record.owner_user_id

    def create(self, wanted: ClientSettings, *, actor: str, source: str, now: int) -> CreatedClient:
        secret = opaque.new_secret("secret_")
        record = ClientRecord(
            client_id="mcp_" + secrets.token_urlsafe(18),
            client_name=wanted.client_name,
            token_endpoint_auth_method=wanted.token_endpoint_auth_method,  # type: ignore[arg-type]
            client_secret_hash=opaque.digest(secret),
            grant_types=wanted.grant_types,
            response_types=("code",) if "authorization_code" in wanted.grant_types else (),
            redirect_uris=wanted.redirect_uris,
            scope=wanted.scope,
            created_at=now,
            application_type=infer_application_type(wanted.redirect_uris),
            owner_user_id=wanted.owner_user_id,
            verified=True,  # an administrator made it
        )
        try:
            self._clients.create(record)
        except ClientAlreadyExists as exc:  # a 144-bit random id: practically never
            raise InvalidClientForm("Could not allocate a client id; submit again.") from exc
        self._record("client_created", record.client_id, actor, source, _summary(record))
        return CreatedClient(record, secret)

    def update(self, client_id: str, wanted: ClientSettings, *, actor: str, source: str) -> ClientRecord:
        current = self._editable(client_id)
        if current.metadata_document:
            raise InvalidClientForm("This client is described by its metadata document; it cannot be edited.")
        if "client_credentials" in wanted.grant_types and not current.is_confidential:
            raise InvalidClientForm("Only a confidential client may use client credentials.")
        if JWT_BEARER in wanted.grant_types and not current.is_confidential:
            raise InvalidClientForm("Only a confidential client may use the jwt-bearer (ID-JAG) grant.")
        changes: dict[str, AttributeValueTypeDef | None] = {
            "client_name": items.s(wanted.client_name),
            "redirect_uris": items.ss(wanted.redirect_uris),
            "grant_types": items.ss(wanted.grant_types),
            "response_types": items.ss(("code",) if "authorization_code" in wanted.grant_types else ()),
            "scope": items.ss(wanted.scope),
            "application_type": items.s(infer_application_type(wanted.redirect_uris)),
            "owner_user_id": items.s(wanted.owner_user_id) if wanted.owner_user_id else None,
        }
        if current.default_scope is not None:
            # what a request without `scope` gets must stay within what the client may have
            narrowed = tuple(s for s in current.default_scope if s in wanted.scope)
            changes["default_scope"] = items.ss(narrowed) if narrowed else None
        if current.uses_secret:  # a key-holding client stays one (`set_keys`)
            changes["token_endpoint_auth_method"] = items.s(wanted.token_endpoint_auth_method)
        return self._apply(current, changes, wanted.scope, actor=actor, source=source)

    def narrow(self, client_id: str, scope: Sequence[str], *, actor: str, source: str) -> ClientRecord:
        """The scopes a metadata-document client may be granted (all its document may change)."""
        current = self._editable(client_id)
        allowed = tuple(s for s in SUPPORTED_SCOPES if s in scope)
        if not allowed:
            raise InvalidClientForm("Choose at least one scope.")
        changes: dict[str, AttributeValueTypeDef | None] = {"scope": items.ss(allowed)}
        return self._apply(current, changes, allowed, actor=actor, source=source)

    def _apply(
        self,
        current: ClientRecord,
        changes: dict[str, AttributeValueTypeDef | None],
        scope: Sequence[str],
        *,
        actor: str,
        source: str,
    ) -> ClientRecord:
        if current.metadata_document:
            changes["expires_at"] = None  # an administrator's decision outlives the document's cache
        updated = self._clients.update(current.client_id, changes)
        if updated is None:
            raise ClientNotFound(current.client_id)
        if not set(current.scope) <= set(scope):
            # narrowed: its tokens carrying a scope it may no longer have stop at the resources
            self._revocations.narrow_client(
                current.client_id, scope, now=self._clock(), access_token_ttl=self._access_ttl
            )
        self._record("client_updated", current.client_id, actor, source, _summary(updated))
        return updated

    def set_verified(self, client_id: str, verified: bool, *, actor: str, source: str) -> None:
        """An administrator vouches (or stops vouching) for the client's name and identity."""
        current = self._editable(client_id)
        changes: dict[str, AttributeValueTypeDef | None] = {"verified": items.boolean(verified)}
        if current.metadata_document:
            changes["expires_at"] = None
        if self._clients.update(client_id, changes) is None:
            raise ClientNotFound(client_id)
        self._record("client_verified" if verified else "client_unverified", client_id, actor, source, {})

    def set_debits_allowed(self, client_id: str, allowed: bool, *, actor: str, source: str) -> None:
        """Whether the client's client-credentials tokens may ask for debits of its owner's wallet
        (each still confirmed by the owner). Off by default: a machine acting without a person
        moves no money unless an administrator decided it may."""
        self._editable(client_id)
        changes: dict[str, AttributeValueTypeDef | None] = {"debits_allowed": items.boolean(allowed)}
        if self._clients.update(client_id, changes) is None:
            raise ClientNotFound(client_id)
        self._record(
            "client_debits_allowed" if allowed else "client_debits_refused", client_id, actor, source, {}
        )

    def set_requirement(
        self,
        client_id: str,
        name: Literal["require_pushed_authorization_requests", "dpop_bound_access_tokens"],
        required: bool,
        *,
        actor: str,
        source: str,
    ) -> None:
        """What the client must do from its next request on: push its authorization requests
        (RFC 9126 §6) or prove a DPoP key at the token endpoint (RFC 9449 §5.2)."""
        self._editable(client_id)
        changes: dict[str, AttributeValueTypeDef | None] = {name: items.boolean(True) if required else None}
        if self._clients.update(client_id, changes) is None:
            raise ClientNotFound(client_id)
        self._record("client_updated", client_id, actor, source, {name: required})

    def set_lifetimes(
        self, client_id: str, form: Mapping[str, str], *, actor: str, source: str
    ) -> ClientRecord:
        """The client's token lifetimes, each within the deployment's bounds (an empty field: the
        deployment's). All three are checked before anything is saved. They apply to every token
        issued from now on; a shorter refresh lifetime also to the client's refresh tokens already
        issued, at their next refresh (`oauth.rules.lifetimes`)."""
        current = self._editable(client_id)
        wanted = parse_lifetimes(form, self.bounds)
        changes: dict[str, AttributeValueTypeDef | None] = {
            kind: items.n(value) if value is not None else None for kind, value in wanted.items()
        }
        if current.metadata_document:
            changes["expires_at"] = None  # an administrator's decision outlives the document's cache
        updated = self._clients.update(client_id, changes)
        if updated is None:
            raise ClientNotFound(client_id)
        details: dict[str, object] = {kind: wanted[kind] for kind in KINDS}
        details["previous"] = {kind: getattr(current, kind) for kind in KINDS}
        self._record("client_lifetimes_updated", client_id, actor, source, details)
        return updated

    def _editable(self, client_id: str) -> ClientRecord:
        current = self.get(client_id)
        if current.is_deleted:
            raise InvalidClientForm("This client was deleted.")
        return current

    def rotate_secret(self, client_id: str, *, actor: str, source: str) -> str:
        current = self._editable(client_id)
        if not current.uses_secret:
            raise InvalidClientForm("This client has no secret (it is public, or authenticates with keys).")
        secret = opaque.new_secret("secret_")
        if not self._clients.update(client_id, {"client_secret_hash": items.s(opaque.digest(secret))}):
            raise ClientNotFound(client_id)
        self._record("client_secret_rotated", client_id, actor, source, {})
        return secret

    def set_keys(self, client_id: str, form: Mapping[str, str], *, actor: str, source: str) -> ClientRecord:
        """The client's public keys (`jwks` JSON, or a `jwks_uri`): it authenticates with
        `private_key_jwt` (RFC 7523 §2.2) from now on, and its secret, if it had one, stops working
        at once (one method per client)."""
        current = self._editable(client_id)
        if current.metadata_document:
            raise InvalidClientForm("This client's keys come from its metadata document.")
        if not current.is_confidential:
            raise InvalidClientForm("A public client has no credential: register a confidential one.")
        metadata: dict[str, object] = {}
        raw_jwks, raw_uri = form.get("jwks", "").strip(), form.get("jwks_uri", "").strip()
        if raw_jwks:
            try:
                metadata["jwks"] = json.loads(raw_jwks[:16384])
            except ValueError as exc:
                raise InvalidClientForm('The keys are not valid JSON (a JWK Set: {"keys": [...]}).') from exc
        if raw_uri:
            metadata["jwks_uri"] = raw_uri
        try:
            jwks, jwks_uri = client_keys(metadata, "private_key_jwt", fapi2=self._fapi2)
        except InvalidClientMetadata as exc:
            raise InvalidClientForm(f"Keys not saved: {exc.description}.") from exc
        changes: dict[str, AttributeValueTypeDef | None] = {
            "token_endpoint_auth_method": items.s("private_key_jwt"),
            "jwks": items.s(jwks) if jwks else None,
            "jwks_uri": items.s(jwks_uri) if jwks_uri else None,
            "client_secret_hash": None,
        }
        updated = self._clients.update(client_id, changes)
        if updated is None:
            raise ClientNotFound(client_id)
        details: dict[str, object] = (
            {"jwks_uri": jwks_uri} if jwks_uri else {"keys": len(json.loads(jwks or "{}").get("keys", []))}
        )
        self._record("client_keys_set", client_id, actor, source, details)
        return updated

    def set_disabled(self, client_id: str, disabled: bool, *, actor: str, source: str) -> None:
        current = self._editable(client_id)
        if disabled:
            if self._revoker.end_client(current, Actor(actor, source), delete=False) is None:
                raise ClientNotFound(client_id)
        elif self._clients.update(client_id, {"disabled": items.boolean(False)}) is None:
            raise ClientNotFound(client_id)
        self._record("client_disabled" if disabled else "client_enabled", client_id, actor, source, {})

    def delete(self, client_id: str, *, actor: str, source: str) -> ClientRecord:
        current = self._editable(client_id)
        if self._revoker.end_client(current, Actor(actor, source), delete=True) is None:
            raise ClientNotFound(client_id)
        self._record("client_deleted", client_id, actor, source, {"client_name": current.client_name})
        return current

    def history(self, client_id: str, limit: int = 20) -> list[dict[str, object]]:
        return self._audit.of(client_id, limit=limit)

    def tool_calls(self, client_id: str, limit: int = 50) -> list[dict[str, object]]:
        """The client's recent MCP tool calls, for every person (the audit's `client-index`)."""
        return self._audit.of_client(client_id, limit=limit, event="tool_called")

    def connection_attempts(self, client_id: str, limit: int = 50) -> list[LoggedStep] | None:
        """The steps of the client's recent connection attempts, newest first (None: unreadable)."""
        return self._connections.of_client(client_id, limit=limit) if self._connections else []

    def recent_failures(self, limit: int = 100) -> list[LoggedStep] | None:
        """The failed connection steps of every client, newest first (None: unreadable)."""
        return self._connections.recent_failures(limit=limit) if self._connections else []

    def _record(
        self, event: Event, client_id: str, actor: str, source: str, details: dict[str, object]
    ) -> None:
        self._audit.record(
            AuditEvent(
                event, subject=client_id, client_id=client_id, source=source, details={"by": actor, **details}
            )
        )


_DURATION: Final = re.compile(r"([0-9]{1,10})\s*(s|m|min|h|d)?", re.IGNORECASE)
_UNIT_SECONDS: Final = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_lifetimes(form: Mapping[str, str], bounds: Lifetimes) -> dict[Kind, int | None]:
    """The token-lifetimes form: per kind, seconds (a whole number, or one with a unit: `90s`,
    `15m`, `12h`, `30d`) within the bounds, or None (empty: the deployment's)."""
    wanted: dict[Kind, int | None] = {}
    for kind in KINDS:
        raw = form.get(kind, "").strip()
        if not raw:
            wanted[kind] = None
            continue
        match = _DURATION.fullmatch(raw)
        if match is None:
            raise InvalidClientForm(
                f"{LABELS[kind]}: give a number of seconds, or one with a unit (s, m, h, d), e.g. 15m."
            )
        value = int(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "").lower()]
        problem = refusal(kind, value, bounds)
        if problem is not None:
            raise InvalidClientForm(problem)
        wanted[kind] = value
    return wanted


def _summary(record: ClientRecord) -> dict[str, object]:
    return {
        "client_name": record.client_name,
        "grant_types": list(record.grant_types),
        "redirect_uris": list(record.redirect_uris),
        "scope": " ".join(record.scope),
    }
