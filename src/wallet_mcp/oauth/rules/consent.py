"""When may remembered consent stand in for the consent page? (RFC 6749 §10.2, RFC 8252 §8.6,
RFC 9700 §2.6.)

Only for a client whose identity the server can tell apart from an impostor's: a confidential
client (it proves it holds its secret at the token endpoint) returning to a redirect URI
registered exactly — never a public client, whose `client_id` anyone can present, and never a
loopback redirect matched on any port (RFC 8252 §7.3). Even then, only for what the person saw
and approved for the same resource (RFC 8707), never for a scope that moves money
(`MONEY_MOVING_SCOPES`: asked every time), and never for an approval given before an
administrator cut the client off (`grants_valid_after`), nor once the duration the person chose
for the grant is over.
"""

from __future__ import annotations

from collections.abc import Iterable

from wallet_mcp.oauth.rules.grants import ended_by_client
from wallet_mcp.primitives.scopes import MONEY_MOVING_SCOPES
from wallet_mcp.storage.clients import ClientRecord
from wallet_mcp.storage.consents import Consent


def may_skip_consent(
    client: ClientRecord,
    redirect_uri: str,
    consent: Consent | None,
    scope: Iterable[str],
    resource: str,
    *,
    now: int | None = None,
) -> bool:
    wanted = set(scope)
    if consent is None or not client.is_confidential or redirect_uri not in client.redirect_uris:
        return False
    if now is not None and consent.lapsed(now):
        return False
    if wanted & MONEY_MOVING_SCOPES:
        return False
    if ended_by_client(client, consent.updated_at):
        return False
    return wanted <= consent.approved(resource)


def approved_before(consent: Consent | None, scope: Iterable[str], resource: str) -> bool:
    """The person approved all of this before (the consent page says so, pre-filled)."""
    return consent is not None and set(scope) <= consent.approved(resource)
