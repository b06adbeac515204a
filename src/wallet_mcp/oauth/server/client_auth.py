"""Client authentication at the token, revocation and introspection endpoints.

RFC 6749 §2.3.1: `client_secret_basic` (HTTP Basic, with client id and secret form-encoded
first) and `client_secret_post`; public clients send only `client_id` (`none`). A client that
uses more than one method is refused (§2.3). Confidential clients may use either secret method
(OAuth 2.1 §2.4.1 requires Basic to be supported for every client issued a secret).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from wallet_mcp.credentials import opaque
from wallet_mcp.primitives.errors import InvalidClient, InvalidRequest
from wallet_mcp.storage.clients import ClientRecord, storable_id

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]

_UNKNOWN_CLIENT_DIGEST = opaque.digest(opaque.new_secret())


@dataclass(frozen=True, slots=True)
class PresentedClient:
    client_id: str
    secret: str | None
    method: AuthMethod


def presented_client(form: Mapping[str, str], authorization: str | None) -> PresentedClient:
    """What the request says about the client, before anything is looked up."""
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if authorization is not None and authorization[:6].lower() == "basic ":
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
    if client.is_confidential:
        if presented.method == "none" or presented.secret is None or client.client_secret_hash is None:
            raise InvalidClient("client authentication failed")
        if not opaque.matches(presented.secret, client.client_secret_hash):
            raise InvalidClient("client authentication failed")
    elif presented.method != "none":
        # a public client has no secret; presenting one means a confused or forged client
        raise InvalidClient("client authentication failed")
    return client


def _parse_basic(encoded: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidClient("malformed Basic credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id or not storable_id(client_id):
        raise InvalidClient("malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)
