"""OAuth clients (ClientsTable, key `client_id`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from wallet_mcp.storage import items
from wallet_mcp.storage.batch import get_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

TokenEndpointAuthMethod = Literal["none", "client_secret_basic", "client_secret_post"]
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

    @property
    def is_confidential(self) -> bool:
        return self.token_endpoint_auth_method != "none" and self.client_secret_hash is not None

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
            }
        )

    @classmethod
    def from_item(cls, item: items.Item) -> ClientRecord:
        method = items.req_s(item, "token_endpoint_auth_method")
        app_type = items.get_s(item, "application_type") or "web"
        if method not in ("none", "client_secret_basic", "client_secret_post") or app_type not in (
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
        )


def usable_client(item: items.Item | None, *, now: int) -> ClientRecord | None:
    """The client an item describes, or None if there is none, it expired (TTL deletes lazily) or it
    is disabled."""
    if item is None:
        return None
    record = ClientRecord.from_item(item)
    if record.disabled or (record.expires_at is not None and record.expires_at <= now):
        return None
    return record


_UNUSED_REGISTRATION = "attribute_exists(expires_at) AND attribute_not_exists(metadata_document)"


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

    def get(self, client_id: str, *, now: int) -> ClientRecord | None:
        """The usable client (see `usable_client`), or None."""
        if not storable_id(client_id):
            return None
        response = self._db.get_item(TableName=self.table, Key=self.key(client_id), ConsistentRead=True)
        return usable_client(response.get("Item"), now=now)

    def touch(self, client: ClientRecord, now: int) -> None:
        """Note that the client obtained a token: `last_used_at` moves at most once an hour (one
        write per client per hour, not per token), and a dynamic registration that obtained a
        token no longer expires for being unused."""
        unused = client.expires_at is not None and not client.metadata_document
        fresh = client.last_used_at is not None and now - client.last_used_at < LAST_USED_RESOLUTION
        if fresh and not unused:
            return
        update = "SET last_used_at = :now" + (" REMOVE expires_at" if unused else "")
        # deleted meanwhile: nothing to note (and no half item to create)
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self.table,
                Key=self.key(client.client_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(client_id)",
                ExpressionAttributeValues={":now": items.n(now)},
            )

    # --- administration (the /admin pages) ------------------------------------------------------

    def get_any(self, client_id: str) -> ClientRecord | None:
        """The client as stored, disabled or not."""
        if not storable_id(client_id):
            return None
        response = self._db.get_item(TableName=self.table, Key=self.key(client_id), ConsistentRead=True)
        item = response.get("Item")
        return ClientRecord.from_item(item) if item else None

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

    def all(self) -> list[ClientRecord]:
        """Every client (a Scan: for the administration pages only, never a request path)."""
        found: list[ClientRecord] = []
        kwargs: dict[str, Any] = {"TableName": self.table}
        while True:
            response = self._db.scan(**kwargs)
            found.extend(ClientRecord.from_item(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def update(self, client_id: str, changes: Mapping[str, AttributeValueTypeDef | None]) -> bool:
        """Set (or, for None, remove) attributes of an existing client; False if it does not exist."""
        names = {f"#a{i}": name for i, name in enumerate(changes)}
        sets = [f"#a{i} = :v{i}" for i, value in enumerate(changes.values()) if value is not None]
        removes = [f"#a{i}" for i, value in enumerate(changes.values()) if value is None]
        values = {f":v{i}": value for i, value in enumerate(changes.values()) if value is not None}
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
            "ConditionExpression": "attribute_exists(client_id)",
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._db.update_item(**kwargs)
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def delete(self, client_id: str) -> ClientRecord | None:
        """Delete a client; the record as it was, or None if there was none."""
        if not storable_id(client_id):
            return None
        response = self._db.delete_item(TableName=self.table, Key=self.key(client_id), ReturnValues="ALL_OLD")
        item = response.get("Attributes")
        return ClientRecord.from_item(item) if item else None

    def create(self, record: ClientRecord) -> None:
        if not items.put_new(self._db, self.table, record.to_item(), "client_id"):
            raise ClientAlreadyExists(record.client_id)

    def put(self, record: ClientRecord) -> None:
        """Create or replace (administrative seeding)."""
        self._db.put_item(TableName=self.table, Item=record.to_item())
