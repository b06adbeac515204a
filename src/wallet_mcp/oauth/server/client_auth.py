"""Client authentication at the token, revocation and introspection endpoints.

RFC 6749 §2.3.1: `client_secret_basic` (HTTP Basic, with client id and secret form-encoded
first) and `client_secret_post`; public clients send only `client_id` (`none`). A client that
uses more than one method is refused (§2.3). Confidential clients may use either secret method
(OAuth 2.1 §2.4.1 requires Basic to be supported for every client issued a secret).

`private_key_jwt` (RFC 7523 §2.2, RFC 7521 §4.2): the client signs a JWT with its own key and sends
it as `client_assertion`; `ClientAuthenticator` verifies it against the client's registered keys
(`client_keys`) by the rules of `primitives.client_assertions` and spends its `jti`
(`storage.assertion_jtis`): with a PutItem of its own (`authenticate`), or, at the token endpoint,
as a conditional Put of the transaction that issues the token (`authenticate_pending`). A client
registered for it can authenticate no other way, and no other client can use it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus

from wallet_mcp.credentials import opaque
from wallet_mcp.oauth.server.client_keys import ClientKeys
from wallet_mcp.primitives.client_assertions import (
    CLIENT_ASSERTION_TYPE,
    asserted_client_id,
    asserted_jti,
    key_ids,
    verify_assertion,
)
from wallet_mcp.primitives.errors import InvalidClient, InvalidRequest
from wallet_mcp.storage import items
from wallet_mcp.storage.assertion_jtis import UsedAssertions
from wallet_mcp.storage.batch import Read
from wallet_mcp.storage.clients import ClientRecord, storable_id

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]

_UNKNOWN_CLIENT_DIGEST = opaque.digest(opaque.new_secret())
REPLAYED = "client_assertion was already used (jti replayed)"


@dataclass(frozen=True, slots=True)
class PresentedClient:
    client_id: str
    secret: str | None
    method: AuthMethod
    assertion: str | None = None


@dataclass(slots=True)
class PendingAssertion:
    """A verified assertion whose `jti` is not spent yet: the token endpoint spends it in the
    transaction that issues the token (`ClientAuthenticator.spend_action`), or on its own
    (`ClientAuthenticator.spend`) when no transaction commits it."""

    client_id: str
    jti: str
    expires_at: int
    now: int
    settled: bool = False
    """True once a write spent it, or found it spent (nothing more to do either way)."""


def presented_client(form: Mapping[str, str], authorization: str | None) -> PresentedClient:
    """What the request says about the client, before anything is looked up."""
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    basic = authorization is not None and authorization[:6].lower() == "basic "
    if "client_assertion" in form or "client_assertion_type" in form:
        if basic or form_secret is not None:
            raise InvalidRequest("more than one client authentication method used")
        return _presented_assertion(form, form_id)
    if authorization is not None and basic:
        client_id, secret = _parse_basic(authorization[6:].strip())
        if form_secret is not None:
            raise InvalidRequest("more than one client authentication method used")
        if form_id is not None and form_id != client_id:
            raise InvalidRequest("client_id does not match the authenticated client")
        return PresentedClient(client_id, secret, "client_secret_basic")
    if form_id is None:
        raise InvalidClient("client authentication required")
    if not storable_id(form_id):
        raise InvalidClient("client authentication failed")
    if form_secret is not None:
        return PresentedClient(form_id, form_secret, "client_secret_post")
    return PresentedClient(form_id, None, "none")


def authenticate_client(presented: PresentedClient, client: ClientRecord | None) -> ClientRecord:
    """The authenticated client, or InvalidClient without saying which part was wrong.

    `client` is the usable record for `presented.client_id` (None when there is none).
    """
    if client is None or client.client_id != presented.client_id:
        # same work as for a known client, so timing does not reveal which client ids exist
        opaque.matches(presented.secret or "", _UNKNOWN_CLIENT_DIGEST)
        raise InvalidClient("client authentication failed")
    if presented.method == "private_key_jwt" or client.token_endpoint_auth_method == "private_key_jwt":
        # an assertion needs `ClientAuthenticator`; a key-holding client never uses a secret
        raise InvalidClient("client authentication failed")
    if client.is_confidential:
        if presented.method == "none" or presented.secret is None or client.client_secret_hash is None:
            raise InvalidClient("client authentication failed")
        if not opaque.matches(presented.secret, client.client_secret_hash):
            raise InvalidClient("client authentication failed")
    elif presented.method != "none":
        # a public client has no secret; presenting one means a confused or forged client
        raise InvalidClient("client authentication failed")
    return client


def _presented_assertion(form: Mapping[str, str], form_id: str | None) -> PresentedClient:
    """RFC 7521 §4.2: both parameters, the one assertion type RFC 7523 §2.2 defines."""
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise InvalidClient(f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}")
    assertion = form.get("client_assertion")
    if not assertion:
        raise InvalidClient("client_assertion is required")
    client_id = asserted_client_id(assertion)
    if not storable_id(client_id):
        raise InvalidClient("client authentication failed")
    # RFC 7521 §4.2: client_id, when present, identifies the same client as the assertion
    if form_id is not None and form_id != client_id:
        raise InvalidClient("client_id does not match the client_assertion")
    return PresentedClient(client_id, None, "private_key_jwt", assertion)


class ClientAuthenticator:
    """Every method: the secret ones by `authenticate_client`, `private_key_jwt` here."""

    def __init__(
        self,
        keys: ClientKeys,
        used: UsedAssertions,
        issuer: str,
        clock: Callable[[], int],
        *,
        secrets_allowed: bool = True,
        public_allowed: bool = True,
        fapi2: bool = False,
    ) -> None:
        """Both False under the FAPI 2.0 profile (§5.3.2.1: confidential clients only, which
        authenticate with `private_key_jwt` or mTLS): a client secret, or no authentication, is
        refused. `fapi2`: assertions signed PS256 or ES256 only, RSA keys ≥ 2048 bits (§5.4)."""
        self._fapi2 = fapi2
        self._secrets_allowed = secrets_allowed
        self._public_allowed = public_allowed
        self._keys = keys
        self._used = used
        self._issuer = issuer
        self._clock = clock

    def authenticate(
        self, presented: PresentedClient, client: ClientRecord | None, *, endpoint: str
    ) -> ClientRecord:
        """`endpoint`: the path of the endpoint called (`/oauth/token`), whose URL an assertion's
        `aud` may name instead of the issuer (RFC 7523 §3 item 3). An assertion's `jti` is spent
        here, with a PutItem of its own (revocation, introspection, PAR)."""
        client, pending = self.authenticate_pending(presented, client, endpoint=endpoint)
        if pending is not None:
            self.spend(pending)
        return client

    def _authenticate_secret(self, presented: PresentedClient, client: ClientRecord | None) -> ClientRecord:
        """A client secret, or none (a public client), as the deployment allows."""
        if not self._secrets_allowed and presented.method in ("client_secret_basic", "client_secret_post"):
            raise InvalidClient("client secrets are not accepted here (FAPI 2.0): use private_key_jwt")
        if presented.method == "none" and not self._public_allowed:
            raise InvalidClient("public clients are not accepted here (FAPI 2.0): use private_key_jwt")
        return authenticate_client(presented, client)

    def marker_read(self, presented: PresentedClient) -> Read | None:
        """The spent-`jti` marker of the presented assertion, to read with the client in one
        BatchGetItem (None: no assertion, or one without a usable `jti`, refused later)."""
        if presented.method != "private_key_jwt" or presented.assertion is None:
            return None
        jti = asserted_jti(presented.assertion)
        return None if jti is None else self._used.batch_read(presented.client_id, jti)

    def authenticate_pending(
        self,
        presented: PresentedClient,
        client: ClientRecord | None,
        *,
        endpoint: str,
        marker: items.Item | None = None,
    ) -> tuple[ClientRecord, PendingAssertion | None]:
        """`authenticate`, but an assertion's `jti` is left for the caller to spend (`spend_action`
        in its transaction, else `spend`). `marker`: what `marker_read` found, so a replay is
        refused here, before any grant runs; a concurrent one loses the transaction's condition."""
        if presented.method != "private_key_jwt" or presented.assertion is None:
            return self._authenticate_secret(presented, client), None
        if (
            client is None
            or client.client_id != presented.client_id
            or client.token_endpoint_auth_method != "private_key_jwt"
        ):
            raise InvalidClient("client authentication failed")
        now = self._clock()
        _, kid = key_ids(presented.assertion, fapi2=self._fapi2)
        verified = verify_assertion(
            presented.assertion,
            self._keys.keys(client, kid),
            client_id=client.client_id,
            audiences=(self._issuer, f"{self._issuer}{endpoint}"),
            now=now,
            fapi2=self._fapi2,
        )
        # RFC 7523 §3 item 7, FAPI 2.0 §5.3.2.1: one use only, decided by a DynamoDB condition
        if self._used.in_use(marker, now=now):
            raise InvalidClient(REPLAYED)
        return client, PendingAssertion(client.client_id, verified.jti, verified.expires_at, now)

    def spend(self, pending: PendingAssertion) -> None:
        """Spend the `jti` with a conditional PutItem of its own; InvalidClient if it was spent."""
        pending.settled = True
        if not self._used.first_use(
            pending.client_id, pending.jti, expires_at=pending.expires_at, now=pending.now
        ):
            raise InvalidClient(REPLAYED)

    def spend_action(self, pending: PendingAssertion) -> dict[str, Any]:
        """The `jti` marker as a conditional Put for the caller's transaction; if that transaction
        loses on it, the assertion was replayed (raise `InvalidClient(REPLAYED)`)."""
        return self._used.put_action(
            pending.client_id, pending.jti, expires_at=pending.expires_at, now=pending.now
        )


def _parse_basic(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidClient("malformed Basic credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not storable_id(client_id):
        raise InvalidClient("malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)
