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

The limits the person chose on the consent page (issue 18) live on the same item, so the token
carries only the grant (user and client), never the limits, and an edit applies at once:
`accounts` (absent: every account, including later ones), `cap_per_transaction` and
`cap_per_day` (decimal strings, in each account's own currency), `over_cap` ("refuse" or
"confirm": ask the person instead) and `expires_at` (absent: until revoked).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from wallet_mcp.storage import items

OverCap = Literal["refuse", "confirm"]
OVER_CAP: Final = ("refuse", "confirm")


@dataclass(frozen=True, slots=True)
class Limits:
    """What the person allowed one application, chosen at consent and editable in /account."""

    accounts: tuple[str, ...] | None = None
    """The account ids it may see and use; None: all of them (also those created later)."""
    cap_per_transaction: str | None = None
    """The largest debit it may make, as a decimal in the account's currency; None: no cap."""
    cap_per_day: str | None = None
    """The most it may debit per UTC day and currency; None: no cap."""
    over_cap: OverCap = "refuse"
    """Over a cap: refuse, or ask the person to confirm the debit instead."""
    expires_at: int | None = None
    """When the grant ends (epoch seconds); None: until revoked."""

    @property
    def unlimited(self) -> bool:
        return (
            self.accounts is None
            and self.cap_per_transaction is None
            and self.cap_per_day is None
            and self.expires_at is None
        )


NO_LIMITS: Final = Limits()

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
    limits: Limits = NO_LIMITS

    def lapsed(self, now: int) -> bool:
        """The grant's chosen duration is over."""
        return self.limits.expires_at is not None and now >= self.limits.expires_at

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
        limits=_limits(item),
    )


def _limits(item: items.Item) -> Limits:
    over = item.get("over_cap", {}).get("S", "refuse")
    return Limits(
        accounts=items.get_list(item, "accounts") if item.get("accounts_chosen", {}).get("BOOL") else None,
        cap_per_transaction=item.get("cap_per_transaction", {}).get("S"),
        cap_per_day=item.get("cap_per_day", {}).get("S"),
        over_cap="confirm" if over == "confirm" else "refuse",
        expires_at=int(item["grant_expires_at"]["N"]) if "grant_expires_at" in item else None,
    )


def _limits_item(limits: Limits) -> items.Item:
    """The limits as item attributes (an empty string set cannot be stored: `accounts_chosen`
    tells "no account" from "every account")."""
    out: items.Item = {
        "accounts_chosen": {"BOOL": limits.accounts is not None},
        "over_cap": items.s(limits.over_cap),
    }
    if limits.accounts:
        out["accounts"] = items.ss(limits.accounts)
    if limits.cap_per_transaction is not None:
        out["cap_per_transaction"] = items.s(limits.cap_per_transaction)
    if limits.cap_per_day is not None:
        out["cap_per_day"] = items.s(limits.cap_per_day)
    if limits.expires_at is not None:
        out["grant_expires_at"] = items.n(limits.expires_at)
    return out


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

    def still_granted_action(self, user_id: str, client_id: str, *, now: int | None = None) -> dict[str, Any]:
        """A transaction condition: the user has not withdrawn the client's access, and the
        duration they chose for it is not over (`now`: by default the clock). Issuing tokens on a
        grant checks it in the same transaction, so a grant withdrawn (or lapsed) while a code or
        refresh token is in flight issues nothing afterwards."""
        return {
            "ConditionCheck": {
                "TableName": self._table,
                "Key": self._key(user_id, client_id),
                "ConditionExpression": (
                    "attribute_exists(client_id) AND "
                    "(attribute_not_exists(grant_expires_at) OR grant_expires_at > :now)"
                ),
                "ExpressionAttributeValues": {":now": items.n(int(time.time()) if now is None else now)},
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

    def set_limits(self, user_id: str, client_id: str, limits: Limits, *, now: int) -> bool:
        """Replace the limits of an existing approval (False: there is none)."""
        attributes = _limits_item(limits)
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":v{i}": value for i, value in enumerate(attributes.values())}
        removed = [
            name
            for name in ("accounts", "cap_per_transaction", "cap_per_day", "grant_expires_at")
            if name not in attributes
        ]
        update = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(attributes))) + ", updated_at = :now"
        if removed:
            update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
            names.update({f"#r{i}": name for i, name in enumerate(removed)})
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(user_id, client_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(client_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":now": items.n(now)},
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def grant(
        self,
        user_id: str,
        client_id: str,
        scope: tuple[str, ...],
        resource: str,
        *,
        order: Sequence[str],
        now: int,
        limits: Limits | None = None,
    ) -> Consent:
        """Add `scope`, for `resource`, to what the user has approved for the client (`order`:
        the order scopes are listed in); `limits`, when the person chose them on the page,
        replace the previous ones (None: keep them)."""
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
            limits=limits if limits is not None else previous.limits if previous else NO_LIMITS,
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
                **_limits_item(consent.limits),
            },
        )
        return consent
