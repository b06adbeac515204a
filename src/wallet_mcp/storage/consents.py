"""Remembered consent (ConsentsTable: partition `user_id`, sort key `client_id`).

One item per user and client: `scope`, every scope the user ever approved for that client (what
/account shows), and `resources`, a map from each resource (RFC 8707) to the scopes the user saw
and approved for it. Whether a remembered approval may stand in for the consent page is a policy
(`oauth.rules.consent`); an item written before `resources` existed remembers nothing per
resource, so it never does.

An enterprise grant (an ID-JAG accepted at the token endpoint) is recorded on the same item:
`granted_by`, the string set of the enterprise IdPs (their configured ids) that granted the client
access for the user, and `enterprise_scope`, the scopes of the latest such grant. It adds nothing
to `resources`: a grant the company's IdP made never stands in for the person's own consent in a
browser. /account lists it ("granted by <IdP>") and withdrawing it ends it like any other grant.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wallet_mcp.storage import items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True, slots=True)
class Consent:
    user_id: str
    client_id: str
    scope: tuple[str, ...]
    granted_at: int
    updated_at: int
    resources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Resource → the scopes approved for it."""
    granted_by: tuple[str, ...] = ()
    """The enterprise IdPs (ids) that granted this access (ID-JAG); empty: the person did."""
    enterprise_scope: tuple[str, ...] = ()
    """The scopes of the latest enterprise grant."""

    def approved(self, resource: str) -> frozenset[str]:
        return frozenset(self.resources.get(resource, ()))


def _consent(item: items.Item) -> Consent:
    resources = item.get("resources", {}).get("M", {})
    return Consent(
        user_id=items.req_s(item, "user_id"),
        client_id=items.req_s(item, "client_id"),
        scope=items.get_list(item, "scope"),
        granted_at=items.req_n(item, "granted_at"),
        updated_at=items.req_n(item, "updated_at"),
        resources={name: items.get_list(resources, name) for name in resources},
        granted_by=tuple(sorted(items.get_list(item, "granted_by"))),
        enterprise_scope=items.get_list(item, "enterprise_scope"),
    )


class ConsentStore:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self._table = table

    @staticmethod
    def _key(user_id: str, client_id: str) -> items.Item:
        return {"user_id": items.s(user_id), "client_id": items.s(client_id)}

    def get(self, user_id: str, client_id: str) -> Consent | None:
        response = self._db.get_item(TableName=self._table, Key=self._key(user_id, client_id))
        item = response.get("Item")
        return _consent(item) if item is not None else None

    def of_user(self, user_id: str) -> list[Consent]:
        """Every client the user has approved (one Query, by client id)."""
        found: list[Consent] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": {":u": items.s(user_id)},
            "ConsistentRead": True,
        }
        while True:
            response = self._db.query(**kwargs)
            found.extend(_consent(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def withdraw(self, user_id: str, client_id: str) -> Consent | None:
        """Forget the user's approval of the client; what it was, or None if there was none."""
        response = self._db.delete_item(
            TableName=self._table, Key=self._key(user_id, client_id), ReturnValues="ALL_OLD"
        )
        item = response.get("Attributes")
        return _consent(item) if item else None

    def still_granted_action(self, user_id: str, client_id: str) -> dict[str, Any]:
        """A transaction condition: the user has not withdrawn the client's access. Issuing tokens
        on a grant checks it in the same transaction, so a grant withdrawn while a code or refresh
        token is in flight issues nothing afterwards."""
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": self._key(user_id, client_id),
                "ConditionExpression": "attribute_exists(client_id)",
            }
        }

    def enterprise_action(
        self, user_id: str, client_id: str, scope: tuple[str, ...], idp_id: str, *, now: int
    ) -> dict[str, Any]:
        """A transaction Update: record that enterprise IdP `idp_id` granted the client `scope`
        for the user (beside whatever the person approved; `resources` untouched)."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": self._key(user_id, client_id),
                "UpdateExpression": (
                    "SET granted_at = if_not_exists(granted_at, :now), updated_at = :now,"
                    " enterprise_scope = :scope ADD granted_by :idp"
                ),
                "ExpressionAttributeValues": {
                    ":idp": {"SS": [idp_id]},
                    ":now": items.n(now),
                    ":scope": items.ss(scope),
                },
            }
        }

    def granted_by_idp(self, idp_id: str) -> list[Consent]:
        """Every grant an enterprise IdP made (a Scan with a filter: for the admin page and a
        cut-off only, never on a request path)."""
        found: list[Consent] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "contains(granted_by, :idp)",
            "ExpressionAttributeValues": {":idp": items.s(idp_id)},
            "ConsistentRead": True,
        }
        while True:
            response = self._db.scan(**kwargs)
            found.extend(_consent(i) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def forget_enterprise(self, consent: Consent, idp_id: str) -> bool:
        """The IdP no longer counts as having granted this access: the item goes if the IdP was
        all that granted it (the person never approved the client themselves), else only its
        mark. True if the item went."""
        if not consent.resources and set(consent.granted_by) <= {idp_id}:
            return self.withdraw(consent.user_id, consent.client_id) is not None
        with contextlib.suppress(self._db.exceptions.ConditionalCheckFailedException):
            self._db.update_item(
                TableName=self._table,
                Key=self._key(consent.user_id, consent.client_id),
                UpdateExpression="DELETE granted_by :idp",
                ConditionExpression="attribute_exists(client_id)",
                ExpressionAttributeValues={":idp": {"SS": [idp_id]}},
            )
        return False

    def grant(
        self,
        user_id: str,
        client_id: str,
        scope: tuple[str, ...],
        resource: str,
        *,
        order: Sequence[str],
        now: int,
    ) -> Consent:
        """Add `scope`, for `resource`, to what the user has approved for the client (`order`:
        the order scopes are listed in)."""
        previous = self.get(user_id, client_id)
        merged = set(scope) | set(previous.scope if previous else ())
        resources = dict(previous.resources if previous else {})
        for_resource = set(scope) | set(resources.get(resource, ()))
        resources[resource] = tuple(s for s in order if s in for_resource)
        consent = Consent(
            user_id=user_id,
            client_id=client_id,
            scope=tuple(s for s in order if s in merged),
            granted_at=previous.granted_at if previous else now,
            updated_at=now,
            resources=resources,
        )
        self._db.put_item(
            TableName=self._table,
            Item={
                **self._key(user_id, client_id),
                "scope": items.ss(consent.scope),
                "granted_at": items.n(consent.granted_at),
                "updated_at": items.n(consent.updated_at),
                "resources": {"M": {name: items.ss(scopes) for name, scopes in resources.items()}},
                # an enterprise grant on the same item stays recorded
                **(
                    {
                        "granted_by": {"SS": list(previous.granted_by)},
                        "enterprise_scope": items.ss(previous.enterprise_scope),
                    }
                    if previous and previous.granted_by
                    else {}
                ),
            },
        )
        return consent
