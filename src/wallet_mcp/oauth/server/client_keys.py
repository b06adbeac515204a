"""A `private_key_jwt` client's public keys: its registered `jwks`, or the JWK Set at its
`jwks_uri` (RFC 7591 §2), fetched through the one guarded fetcher (`primitives.fetch`) and cached.

Whoever registers a client (or publishes a Client ID Metadata Document) chooses the `jwks_uri`, so
the fetch is the SSRF case of the CIMD draft §6.5: the address guard is on, no redirect is
followed, the body is capped and the exchange bounded by one deadline. A fetched set is cached in
the function instance for `CACHE_SECONDS`; an assertion naming a `kid` the cached set lacks
(the client rotated its keys, RFC 7517 §4.5) refetches it at once, but at most once per
`REFETCH_INTERVAL` per URL, so a stream of assertions with made-up `kid`s cannot turn this server
into a fetcher of someone's URL. A failed fetch is not cached and answers `invalid_client`.

Only the token function (token, revocation, introspection) calls this; the MCP endpoint never does.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from wallet_mcp.primitives.client_assertions import InvalidJwks, has_key, validate_jwks
from wallet_mcp.primitives.errors import InvalidClient
from wallet_mcp.storage.clients import ClientRecord

logger = logging.getLogger(__name__)

CACHE_SECONDS: Final = 300
REFETCH_INTERVAL: Final = 60
USER_AGENT: Final = "wallet-mcp/0.1 (client JWKS fetcher)"

JwksFetcher = Callable[[str], Mapping[str, Any]]


def fetch_jwks(url: str, *, allow_loopback: bool) -> Mapping[str, Any]:
    """GET the JWK Set at `url` with the address guard on; InvalidClient for any failure."""
    # imported on the first fetch: most token requests never need it (about 6 ms of cold start)
    from wallet_mcp.config.upstream import is_allowed_url
    from wallet_mcp.primitives import fetch

    if not is_allowed_url(url, allow_loopback=allow_loopback, allow_query=True):
        raise InvalidClient("the client's jwks_uri is not usable")
    policy = fetch.FetchPolicy(allow_loopback=allow_loopback, public_only=True, max_bytes=64 * 1024)
    try:
        response = fetch.get_json(url, policy, {"User-Agent": USER_AGENT})
    except fetch.FetchFailed as exc:
        logger.info("client jwks_uri fetch refused", extra={"reason": exc.reason, "status": exc.status})
        raise InvalidClient("the client's jwks_uri could not be fetched") from exc
    if response.status != 200:
        logger.info("client jwks_uri answered", extra={"status": response.status})
        raise InvalidClient("the client's jwks_uri could not be fetched")
    return response.document


@dataclass(slots=True)
class _Cached:
    jwks: dict[str, Any]
    fetched_at: int


class ClientKeys:
    def __init__(self, fetcher: JwksFetcher, clock: Callable[[], int]) -> None:
        self._fetch = fetcher
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def keys(self, client: ClientRecord, kid: str | None) -> Mapping[str, Any]:
        """The client's keys to verify an assertion with (`kid`: the one its header names)."""
        if client.jwks is not None:
            return dict(json.loads(client.jwks))
        if client.jwks_uri is None:
            raise InvalidClient("the client has no registered keys")
        now = self._clock()
        url = client.jwks_uri
        with self._lock:
            cached = self._cache.get(url)
        fresh = cached is not None and now - cached.fetched_at < CACHE_SECONDS
        rotated = cached is not None and kid is not None and not has_key(cached.jwks, kid)
        may_refetch = cached is None or now - cached.fetched_at >= REFETCH_INTERVAL
        if cached is not None and (fresh and not (rotated and may_refetch)):
            return cached.jwks
        if cached is not None and not may_refetch:
            return cached.jwks
        try:
            jwks = validate_jwks(self._fetch(url))
        except InvalidJwks as exc:
            raise InvalidClient("the client's jwks_uri does not hold usable public keys") from exc
        with self._lock:
            self._cache[url] = _Cached(jwks, now)
            if len(self._cache) > 1000:  # bounded: the oldest entries go first
                for stale in sorted(self._cache, key=lambda u: self._cache[u].fetched_at)[:100]:
                    del self._cache[stale]
        return jwks
