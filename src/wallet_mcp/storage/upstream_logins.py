"""Upstream sign-ins in progress (AuthRequestsTable, key `request_id` = `upstream:<state digest>`; TTL
`expires_at`).

When the user picks "Sign in with <provider>", the `state`, `nonce` and PKCE verifier sent upstream
are remembered here until the provider sends the browser back (OpenID Connect Core §3.1.2.1,
RFC 7636 §4.1): keyed by the SHA-256 of `state`, bound to the browser (the digest of its
`wallet_authz` cookie) and to the pending authorization it continues. `state` and `nonce` are
kept only as digests; the verifier is sealed under a key derived from `state`
(credentials/sealing.py), so the table alone opens nothing. One callback consumes the item with a
conditional delete: a `state` works once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

KEY_PREFIX: Final = "upstream:"
"""Never produced by `secrets.token_urlsafe` (the pending requests' ids): the two kinds cannot collide."""


@dataclass(frozen=True, slots=True)
class UpstreamLogin:
    state_hash: str
    provider_id: str
    request_id: str
    """The pending authorization (storage/auth_requests.py) the sign-in continues."""
    browser_hash: str
    nonce_hash: str
    sealed_verifier: str
    redirect_uri: str
    """Our callback URL as sent upstream; the token request repeats it (RFC 6749 §4.1.3)."""
    created_at: int
    expires_at: int
    return_to: str | None = None
    """For a sign-in to the account pages (no pending authorization, `request_id` is ""): where to
    go once signed in."""

    def to_item(self) -> items.Item:
        return items.compact(
            {
                "request_id": items.s(KEY_PREFIX + self.state_hash),
                "kind": items.s("upstream_login"),
                "provider_id": items.s(self.provider_id),
                "pending_request_id": items.s(self.request_id),
                "browser_hash": items.s(self.browser_hash),
                "nonce_hash": items.s(self.nonce_hash),
                "sealed_verifier": items.s(self.sealed_verifier),
                "redirect_uri": items.s(self.redirect_uri),
                "created_at": items.n(self.created_at),
                "expires_at": items.n(self.expires_at),
                "return_to": items.s(self.return_to) if self.return_to is not None else None,
            }
        )

    @classmethod
    def from_item(cls, item: items.Item) -> UpstreamLogin:
        return cls(
            state_hash=items.req_s(item, "request_id").removeprefix(KEY_PREFIX),
            provider_id=items.req_s(item, "provider_id"),
            request_id=items.req_s(item, "pending_request_id"),
            browser_hash=items.req_s(item, "browser_hash"),
            nonce_hash=items.req_s(item, "nonce_hash"),
            sealed_verifier=items.req_s(item, "sealed_verifier"),
            redirect_uri=items.req_s(item, "redirect_uri"),
            created_at=items.req_n(item, "created_at"),
            expires_at=items.req_n(item, "expires_at"),
            return_to=items.get_s(item, "return_to"),
        )


class UpstreamLoginStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def put(self, login: UpstreamLogin) -> None:
        if not items.put_new(self._db, self._table, login.to_item(), "request_id"):
            raise RuntimeError("upstream state collision")

    def take(self, state_hash: str, *, now: int) -> UpstreamLogin | None:
        """Consume the sign-in started with this state; None if unknown, used already or expired."""
        try:
            response = self._db.delete_item(
                TableName=self._table,
                Key={"request_id": items.s(KEY_PREFIX + state_hash)},
                ConditionExpression="attribute_exists(request_id) AND kind = :kind",
                ExpressionAttributeValues={":kind": items.s("upstream_login")},
                ReturnValues="ALL_OLD",
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return None
        login = UpstreamLogin.from_item(response["Attributes"])
        return login if login.expires_at > now else None
