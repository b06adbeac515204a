"""OAuth clients (ClientsTable, key `client_id`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

TokenEndpointAuthMethod = Literal["none", "client_secret_basic", "client_secret_post"]
ApplicationType = Literal["web", "native"]


@dataclass(frozen=True, slots=True)
class ClientRecord:
    client_id: str
    client_name: str
    token_endpoint_auth_method: TokenEndpointAuthMethod
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    scope: tuple[str, ...]
    """The scopes this client may be granted."""
    created_at: int
    client_secret_hash: str | None = None
    application_type: ApplicationType = "web"
    owner_user_id: str | None = None
    """The user whose wallet client-credentials tokens of this client act on."""
    response_types: tuple[str, ...] = ("code",)
    disabled: bool = False
    expires_at: int | None = None
    """Epoch seconds after which an unused dynamic registration is gone (the table's TTL)."""
    extra: dict[str, str] = field(default_factory=dict)

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
        )


class ClientAlreadyExists(Exception):
    pass


class ClientStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def get(self, client_id: str, *, now: int) -> ClientRecord | None:
        """The client, or None if unknown, expired (TTL deletes lazily) or disabled."""
        response = self._db.get_item(
            TableName=self._table, Key={"client_id": items.s(client_id)}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        record = ClientRecord.from_item(item)
        if record.disabled or (record.expires_at is not None and record.expires_at <= now):
            return None
        return record

    def create(self, record: ClientRecord) -> None:
        if not items.put_new(self._db, self._table, record.to_item(), "client_id"):
            raise ClientAlreadyExists(record.client_id)

    def put(self, record: ClientRecord) -> None:
        """Create or replace (administrative seeding)."""
        self._db.put_item(TableName=self._table, Item=record.to_item())
