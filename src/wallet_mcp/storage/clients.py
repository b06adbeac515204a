"""OAuth clients (ClientsTable, key `client_id`; `owner-index` by `owner_user_id`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from wallet_mcp.storage import items
from wallet_mcp.storage.batch import Read, get_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

TokenEndpointAuthMethod = Literal["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
AUTH_METHODS: Final = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
ApplicationType = Literal["web", "native"]
LAST_USED_RESOLUTION: Final = 3600
"""`last_used_at` is precise to this many seconds (it is written at most this often)."""


@dataclass(frozen=True, slots=True)
class ClientRecord:
    client_id: str
    client_name: str
    token_endpoint_auth_method: TokenEndpointAuthMethod
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    scope: tuple[str, ...]
    """The scopes this client may be granted (with the user's consent)."""
    created_at: int
    client_secret_hash: str | None = None
    application_type: ApplicationType = "web"
    owner_user_id: str | None = None
    """The user whose wallet client-credentials tokens of this client act on."""
    response_types: tuple[str, ...] = ("code",)
    disabled: bool = False
    expires_at: int | None = None
    """Epoch seconds after which an unused dynamic registration is gone (the table's TTL)."""
    metadata_document: bool = False
    """A cached Client ID Metadata Document (client_id is its https URL; expires_at ends the cache)."""
    default_scope: tuple[str, ...] | None = None
    """What an authorization request without `scope` gets: the scope the client registered with."""
    metadata_fresh_until: int | None = None
    """For a metadata-document client: when the document must be fetched again."""
    client_uri: str | None = None
    logo_uri: str | None = None
    last_used_at: int | None = None
    grants_valid_after: int | None = None
    """Set when an administrator disables or deletes the client: refresh tokens, codes and
    remembered consent from before it stay dead even if the client is enabled again."""
    deleted_at: int | None = None
    """A tombstone: the client was deleted and nothing (a metadata document fetched again, a
    registration) brings it back."""
    verified: bool = False
    """An administrator vouches for this client's identity (shown on the consent page)."""
    self_registered: bool = False
    """Registered dynamically (RFC 7591) by whoever asked: its name proves nothing."""
    access_token_ttl: int | None = None
    """Seconds: an administrator's lifetime for this client's access tokens (None: the deployment's)."""
    refresh_token_ttl: int | None = None
    """Seconds: an administrator's idle lifetime for its refresh tokens (None: the deployment's)."""
    refresh_family_ttl: int | None = None
    """Seconds: an administrator's absolute lifetime for its refresh-token families, from the
    grant (None: the deployment's). All three within the deployment's bounds: `oauth.rules.lifetimes`."""
    debits_allowed: bool = False
    """An administrator allows this client's client-credentials tokens to ask for debits of its
    owner's wallet (each still confirmed by the owner); without it they may not move money."""
    jwks: str | None = None
    """`private_key_jwt`: the client's public keys, a JWK Set as compact JSON (RFC 7591 §2)."""
    jwks_uri: str | None = None
    """`private_key_jwt`: where its JWK Set is published instead (never both, RFC 7591 §2)."""
    require_pushed_authorization_requests: bool = False
    """RFC 9126 §6: its authorization requests must come through `/oauth/par`."""
    dpop_bound_access_tokens: bool = False
    """RFC 9449 §5.2: its access tokens are always DPoP-bound (a token request without a proof is
    refused)."""

    @property
    def is_confidential(self) -> bool:
        """It holds a credential: a secret, or (`private_key_jwt`) registered public keys."""
        if self.token_endpoint_auth_method == "private_key_jwt":
            return self.jwks is not None or self.jwks_uri is not None
        return self.token_endpoint_auth_method != "none" and self.client_secret_hash is not None

    @property
    def uses_secret(self) -> bool:
        return self.token_endpoint_auth_method in ("client_secret_basic", "client_secret_post")

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def to_item(self) -> items.Item:
        return items.compact(
            {
                "client_id": items.s(self.client_id),
                "client_name": items.s(self.client_name),
                "token_endpoint_auth_method": items.s(self.token_endpoint_auth_method),
                "grant_types": items.ss(self.grant_types),
                "response_types": items.ss(self.response_types),
                "redirect_uris": items.ss(self.redirect_uris),
                "scope": items.ss(self.scope),
                "created_at": items.n(self.created_at),
                "client_secret_hash": items.s(self.client_secret_hash) if self.client_secret_hash else None,
                "application_type": items.s(self.application_type),
                "owner_user_id": items.s(self.owner_user_id) if self.owner_user_id else None,
                "disabled": items.boolean(self.disabled),
                "expires_at": items.n(self.expires_at) if self.expires_at is not None else None,
                "default_scope": items.ss(self.default_scope) if self.default_scope is not None else None,
                "metadata_document": items.boolean(True) if self.metadata_document else None,
                "metadata_fresh_until": (
                    items.n(self.metadata_fresh_until) if self.metadata_fresh_until is not None else None
                ),
                "client_uri": items.s(self.client_uri) if self.client_uri else None,
                "logo_uri": items.s(self.logo_uri) if self.logo_uri else None,
                "last_used_at": items.n(self.last_used_at) if self.last_used_at is not None else None,
                "grants_valid_after": (
                    items.n(self.grants_valid_after) if self.grants_valid_after is not None else None
                ),
                "deleted_at": items.n(self.deleted_at) if self.deleted_at is not None else None,
                "verified": items.boolean(True) if self.verified else None,
                "debits_allowed": items.boolean(True) if self.debits_allowed else None,
                "self_registered": items.boolean(True) if self.self_registered else None,
                "access_token_ttl": _seconds(self.access_token_ttl),
                "refresh_token_ttl": _seconds(self.refresh_token_ttl),
                "refresh_family_ttl": _seconds(self.refresh_family_ttl),
                "jwks": items.s(self.jwks) if self.jwks else None,
                "jwks_uri": items.s(self.jwks_uri) if self.jwks_uri else None,
                "require_pushed_authorization_requests": (
                    items.boolean(True) if self.require_pushed_authorization_requests else None
                ),
                "dpop_bound_access_tokens": items.boolean(True) if self.dpop_bound_access_tokens else None,
            }
        )

    @classmethod
    def from_item(cls, item: items.Item) -> ClientRecord:
        method = items.req_s(item, "token_endpoint_auth_method")
        app_type = items.get_s(item, "application_type") or "web"
        if method not in AUTH_METHODS or app_type not in (
            "web",
            "native",
        ):
            raise ValueError("corrupt client record")
        return cls(
            client_id=items.req_s(item, "client_id"),
            client_name=items.req_s(item, "client_name"),
            token_endpoint_auth_method=method,  # type: ignore[arg-type]
            grant_types=items.get_list(item, "grant_types"),
            response_types=items.get_list(item, "response_types"),
            redirect_uris=items.get_list(item, "redirect_uris"),
            scope=items.get_list(item, "scope"),
            created_at=items.req_n(item, "created_at"),
            client_secret_hash=items.get_s(item, "client_secret_hash"),
            application_type=app_type,  # type: ignore[arg-type]
            owner_user_id=items.get_s(item, "owner_user_id"),
            disabled=items.get_bool(item, "disabled"),
            expires_at=items.get_n(item, "expires_at"),
            default_scope=items.get_list(item, "default_scope") if "default_scope" in item else None,
            metadata_document=items.get_bool(item, "metadata_document"),
            metadata_fresh_until=items.get_n(item, "metadata_fresh_until"),
            client_uri=items.get_s(item, "client_uri"),
            logo_uri=items.get_s(item, "logo_uri"),
            last_used_at=items.get_n(item, "last_used_at"),
            grants_valid_after=items.get_n(item, "grants_valid_after"),
            deleted_at=items.get_n(item, "deleted_at"),
            verified=items.get_bool(item, "verified"),
            debits_allowed=items.get_bool(item, "debits_allowed"),
            self_registered=items.get_bool(item, "self_registered"),
            access_token_ttl=items.get_n(item, "access_token_ttl"),
            refresh_token_ttl=items.get_n(item, "refresh_token_ttl"),
            refresh_family_ttl=items.get_n(item, "refresh_family_ttl"),
            jwks=items.get_s(item, "jwks"),
            jwks_uri=items.get_s(item, "jwks_uri"),
            require_pushed_authorization_requests=items.get_bool(
                item, "require_pushed_authorization_requests"
            ),
            dpop_bound_access_tokens=items.get_bool(item, "dpop_bound_access_tokens"),
        )


def _seconds(value: int | None) -> AttributeValueTypeDef | None:
    return items.n(value) if value is not None else None


def usable_client(item: items.Item | None, *, now: int) -> ClientRecord | None:
    """The client an item describes, or None if there is none, it expired (TTL deletes lazily), it
    is disabled or it was deleted (a tombstone)."""
    if item is None:
        return None
    record = ClientRecord.from_item(item)
    if record.disabled or record.is_deleted or (record.expires_at is not None and record.expires_at <= now):
        return None
    return record


MAX_KEY_BYTES: Final = 2048
"""DynamoDB's limit for a partition key value."""


def storable_id(value: str) -> bool:
    """Whether `value` can be a key of this table at all (DynamoDB refuses empty keys and keys over
    2048 UTF-8 bytes with a ValidationException: such an id names no client, it is not an error)."""
    return 0 < len(value.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES


class ClientAlreadyExists(Exception):
    pass


class ClientStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self.table = table

    @staticmethod
    def key(client_id: str) -> items.Item:
        return {"client_id": items.s(client_id)}

    def batch_read(self, client_id: str) -> Read:
        """This item, for one consistent read with others (`Database.get`)."""
        return (self.table, self.key(client_id))

    def get(self, client_id: str, *, now: int) -> ClientRecord | None:
        """The usable client (see `usable_client`), or None."""
        if not storable_id(client_id):
            return None
        response = self._db.get_item(TableName=self.table, Key=self.key(client_id), ConsistentRead=True)
        return usable_client(response.get("Item"), now=now)

    def touch(self, client: ClientRecord, now: int, *, idle_ttl: int) -> None:
        """Note that the client obtained a token: `last_used_at` moves at most once an hour (one
        write per client per hour, not per token). A self-registered client lives `idle_ttl` past
        its last use (hosts register again on every connect: the ones nobody uses go away); one
        registered before that rule, that obtained a token, no longer expires."""
        fresh = client.last_used_at is not None and now - client.last_used_at < LAST_USED_RESOLUTION
        if fresh:
            return
        values = {":now": items.n(now)}
        if client.self_registered:
            update = "SET last_used_at = :now, expires_at = :expires"
            values[":expires"] = items.n(now + idle_ttl)
        elif client.expires_at is not None and not client.metadata_document:
            update = "SET last_used_at = :now REMOVE expires_at"
        else:
            update = "SET last_used_at = :now"
        # deleted meanwhile: nothing to note (and no half item to create)
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self.table,
                Key=self.key(client.client_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(client_id) AND attribute_not_exists(deleted_at)",
                ExpressionAttributeValues=values,
            )

    def save_metadata_document(self, record: ClientRecord) -> ClientRecord | None:
        """Store a metadata-document client as its document describes it now, keeping everything an
        administrator decided (disabled, deleted, the scopes it may be granted, verified): the
        stored record, or None when the client is disabled or deleted (the fetch changes nothing).

        A record an administrator acted on has no `expires_at` (it must not disappear with the
        cache and come back as new): the refresh then leaves it without one."""
        if items.put_new(self._db, self.table, record.to_item(), "client_id"):
            return record
        document = {
            "client_name": items.s(record.client_name),
            "grant_types": items.ss(record.grant_types),
            "redirect_uris": items.ss(record.redirect_uris),
            "application_type": items.s(record.application_type),
            # a document may move between public and private_key_jwt, or publish its keys elsewhere
            "token_endpoint_auth_method": items.s(record.token_endpoint_auth_method),
            "jwks": items.s(record.jwks) if record.jwks else None,
            "jwks_uri": items.s(record.jwks_uri) if record.jwks_uri else None,
            "default_scope": items.ss(record.default_scope) if record.default_scope is not None else None,
            "client_uri": items.s(record.client_uri) if record.client_uri else None,
            "logo_uri": items.s(record.logo_uri) if record.logo_uri else None,
            "metadata_fresh_until": (
                items.n(record.metadata_fresh_until) if record.metadata_fresh_until is not None else None
            ),
        }
        usable = (
            "attribute_exists(metadata_document) AND attribute_not_exists(deleted_at)"
            " AND (attribute_not_exists(disabled) OR disabled = :false)"
        )
        extra = {":false": items.boolean(False)}
        if record.expires_at is not None:
            with_expiry = {**document, "expires_at": items.n(record.expires_at)}
            updated = self.update(
                record.client_id,
                with_expiry,
                condition=f"{usable} AND attribute_exists(expires_at)",
                values=extra,
            )
            if updated is not None:
                return updated
        return self.update(record.client_id, document, condition=usable, values=extra)

    # --- administration (the /admin pages) ------------------------------------------------------

    def get_any(self, client_id: str) -> ClientRecord | None:
        """The client as stored, disabled or not."""
        if not storable_id(client_id):
            return None
        response = self._db.get_item(TableName=self.table, Key=self.key(client_id), ConsistentRead=True)
        item = response.get("Item")
        return ClientRecord.from_item(item) if item else None

    def owned_by(self, user_id: str) -> list[ClientRecord]:
        """The clients whose client-credentials tokens act on this user's wallet (`owner-index`)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "owner-index",
            "KeyConditionExpression": "owner_user_id = :u",
            "ExpressionAttributeValues": {":u": items.s(user_id)},
        }
        found: list[ClientRecord] = []
        while True:
            response = self._db.query(**kwargs)
            found.extend(ClientRecord.from_item(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return [c for c in found if not c.is_deleted]
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get_many(self, client_ids: Iterable[str]) -> dict[str, ClientRecord]:
        """Clients by id (BatchGetItem, 100 keys a call), disabled or not; missing ids are absent."""
        ids = list(dict.fromkeys(client_ids))
        found: dict[str, ClientRecord] = {}
        for start in range(0, len(ids), 100):
            keys = [(self.table, self.key(i)) for i in ids[start : start + 100]]
            for item in get_items(self._db, keys):
                if item is not None:
                    record = ClientRecord.from_item(item)
                    found[record.client_id] = record
        return found

    def page(self, *, limit: int, after: str | None = None) -> tuple[list[ClientRecord], str | None]:
        """Up to `limit` clients in the table's order, starting after the client id `after`, and
        the id to continue after (None: no more). For the administration pages only: a Scan,
        one page per request, never the whole table at once."""
        kwargs: dict[str, Any] = {"TableName": self.table, "Limit": limit}
        if after is not None and storable_id(after):
            kwargs["ExclusiveStartKey"] = self.key(after)
        found: list[ClientRecord] = []
        while len(found) < limit:
            response = self._db.scan(**kwargs)
            found.extend(ClientRecord.from_item(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found, None
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
            kwargs["Limit"] = limit - len(found)
        return found, found[-1].client_id

    def update(
        self,
        client_id: str,
        changes: Mapping[str, AttributeValueTypeDef | None],
        *,
        condition: str = "attribute_not_exists(deleted_at)",
        values: Mapping[str, AttributeValueTypeDef] | None = None,
    ) -> ClientRecord | None:
        """Set (or, for None, remove) attributes of an existing client that is not deleted (or
        meets `condition`): the record as updated, or None if there is no such client."""
        names = {f"#a{i}": name for i, name in enumerate(changes)}
        sets = [f"#a{i} = :v{i}" for i, value in enumerate(changes.values()) if value is not None]
        removes = [f"#a{i}" for i, value in enumerate(changes.values()) if value is None]
        expression_values = {f":v{i}": value for i, value in enumerate(changes.values()) if value is not None}
        expression_values.update(values or {})
        expression = " ".join(
            part
            for part in (
                f"SET {', '.join(sets)}" if sets else "",
                f"REMOVE {', '.join(removes)}" if removes else "",
            )
            if part
        )
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": self.key(client_id),
            "UpdateExpression": expression,
            "ConditionExpression": f"attribute_exists(client_id) AND ({condition})",
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        if expression_values:
            kwargs["ExpressionAttributeValues"] = expression_values
        try:
            response = self._db.update_item(**kwargs)
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        return ClientRecord.from_item(response["Attributes"])

    def delete(self, client_id: str, *, now: int, keep_tombstone: int | None) -> ClientRecord | None:
        """Delete a client: what identifies it stays as a tombstone (disabled, `deleted_at`, no
        secret) so that nothing brings it back; the tombstone, or None if there was no client.
        `keep_tombstone`: seconds the tombstone is kept (None: for good — a metadata-document
        client, whose URL anyone may present again)."""
        if not storable_id(client_id):
            return None
        changes: dict[str, AttributeValueTypeDef | None] = {
            "deleted_at": items.n(now),
            "disabled": items.boolean(True),
            "grants_valid_after": items.n(now),
            "client_secret_hash": None,
            "expires_at": items.n(now + keep_tombstone) if keep_tombstone is not None else None,
        }
        return self.update(client_id, changes)

    def create(self, record: ClientRecord) -> None:
        if not items.put_new(self._db, self.table, record.to_item(), "client_id"):
            raise ClientAlreadyExists(record.client_id)

    def put(self, record: ClientRecord) -> None:
        """Create or replace (administrative seeding)."""
        self._db.put_item(TableName=self.table, Item=record.to_item())
