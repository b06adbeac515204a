"""The RFC 7523 §2.1 `jwt-bearer` grant for Identity Assertion JWT Authorization Grants (ID-JAG,
draft-ietf-oauth-identity-assertion-authz-grant; MCP ext-auth enterprise-managed-authorization §5).

A company's IdP decided that this person may use this client with this server and signed an
ID-JAG saying so; the client presents it at /oauth/token with its own client authentication. This
module decides everything about the assertion and hands the token endpoint (`oauth.server.token`)
a verified `EnterpriseGrant` to issue on:

1. the header and the issuer: a configured trusted IdP (`config.enterprise`), `typ` and `alg`;
2. its keys: the IdP's JWKS from its configured `jwks_uri`, fetched through the one guarded
   fetcher (`primitives.fetch`: https, address guard, no redirects, bounded), cached per function
   instance for `CACHE_SECONDS`, fetched again at once for a `kid` the cached set lacks (the IdP
   rotated), at most once per `REFETCH_INTERVAL`;
3. the claims (`primitives.id_jag`); the client named is the one that authenticated, and one the
   IdP may grant to;
4. the subject: a wallet user by the IdP's mapping (`sub`: the login name; `email`: one user's
   verified address, asserted verified; `link`: an identity link for (`iss`, `sub`));
5. the scopes: requested ∩ asserted ∩ the client's allowance ∩ the IdP's;
6. the `jti`, spent last (one conditional write with a TTL, `storage.assertion_jtis`), so a
   refused assertion is not burnt — a replay of an accepted one is refused.

Every refusal is `invalid_grant` with a fixed description (RFC 7521 §5.2, RFC 7523 §3.1).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from wallet_mcp.config import Settings
from wallet_mcp.config.enterprise import TrustedIdp, TrustedWorkloadIssuer
from wallet_mcp.oauth.rules.grants import USER_DISABLED
from wallet_mcp.primitives import id_jag, workload_jwt
from wallet_mcp.primitives.client_assertions import InvalidJwks, has_key, validate_jwks
from wallet_mcp.primitives.errors import (
    InvalidGrant,
    InvalidScope,
    TemporarilyUnavailable,
    UnauthorizedClient,
)
from wallet_mcp.primitives.scopes import known_only
from wallet_mcp.storage.assertion_jtis import UsedAssertions
from wallet_mcp.storage.clients import ClientRecord
from wallet_mcp.storage.identity_links import IdentityLinkStore
from wallet_mcp.storage.users import UserRecord, UserStore

logger = logging.getLogger(__name__)

CACHE_SECONDS: Final = 300
REFETCH_INTERVAL: Final = 60
USER_AGENT: Final = "wallet-mcp/0.1 (enterprise IdP JWKS fetcher)"

JwksFetcher = Callable[[str], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class JwtBearerRequest:
    """RFC 7523 §2.1 with RFC 8707 §2.2 (`resource`) and RFC 6749 §3.3 (`scope`)."""

    grant_type: ClassVar[str] = id_jag.GRANT_TYPE
    assertion: str
    scope: tuple[str, ...]
    resource: str | None


@dataclass(frozen=True, slots=True)
class WorkloadGrant:
    """A verified workload token: the client it authenticates acts for its owner, like a
    client-credentials client (no person's consent, no refresh token)."""

    issuer: TrustedWorkloadIssuer
    scope: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EnterpriseGrant:
    """A verified ID-JAG, mapped to a wallet user, with the scopes it grants."""

    idp: TrustedIdp
    user_id: str
    scope: tuple[str, ...]
    resource: str


def fetch_idp_jwks(url: str, *, allow_loopback: bool) -> Mapping[str, Any]:
    """GET the IdP's JWK Set with the address guard on; TemporarilyUnavailable for any failure
    (the assertion may be fine: the client may retry)."""
    from wallet_mcp.primitives import fetch

    policy = fetch.FetchPolicy(allow_loopback=allow_loopback, public_only=True, max_bytes=64 * 1024)
    try:
        response = fetch.get_json(url, policy, {"User-Agent": USER_AGENT})
    except fetch.FetchFailed as exc:
        logger.warning(
            "enterprise IdP jwks_uri fetch refused", extra={"reason": exc.reason, "status": exc.status}
        )
        raise TemporarilyUnavailable("the identity provider's keys cannot be read") from exc
    if response.status != 200:
        logger.warning("enterprise IdP jwks_uri answered", extra={"status": response.status})
        raise TemporarilyUnavailable("the identity provider's keys cannot be read")
    return response.document


class IdpKeys:
    """The trusted IdPs' key sets, cached per function instance."""

    def __init__(self, fetcher: JwksFetcher, clock: Callable[[], int]) -> None:
        self._fetch = fetcher
        self._clock = clock
        self._cache: dict[str, tuple[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def keys(self, jwks_uri: str, kid: str | None) -> Mapping[str, Any]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(jwks_uri)
        if cached is not None:
            fetched_at, jwks = cached
            fresh = now - fetched_at < CACHE_SECONDS
            rotated = kid is not None and not has_key(jwks, kid)
            may_refetch = now - fetched_at >= REFETCH_INTERVAL
            if (fresh and not rotated) or not may_refetch:
                return jwks
        try:
            jwks = validate_jwks(self._fetch(jwks_uri))
        except InvalidJwks as exc:
            logger.warning("enterprise IdP jwks_uri holds no usable keys")
            raise TemporarilyUnavailable("the identity provider's keys cannot be read") from exc
        with self._lock:
            self._cache[jwks_uri] = (now, jwks)
        return jwks


class JwtBearerGrant:
    def __init__(
        self,
        settings: Settings,
        keys: IdpKeys,
        used: UsedAssertions,
        users: UserStore,
        links: IdentityLinkStore,
    ) -> None:
        self._settings = settings
        self._keys = keys
        self._used = used
        self._users = users
        self._links = links
        # the MCP resource, and locally its names on the other loopback hosts
        self._resources = {
            settings.mcp_resource: settings.mcp_resource,
            **{alias: to for alias, to in settings.resource_aliases.items() if to == settings.mcp_resource},
        }

    @property
    def enabled(self) -> bool:
        return bool(self._settings.trusted_idps or self._settings.trusted_workload_issuers)

    def verify(
        self, client: ClientRecord, request: JwtBearerRequest, now: int
    ) -> EnterpriseGrant | WorkloadGrant:
        """The grant the assertion makes, or InvalidGrant; its `jti` is spent once all is checked.
        A trusted workload issuer's token is workload identity; anything else must be an ID-JAG."""
        workload = workload_jwt.trusted_issuer(request.assertion, self._settings.trusted_workload_issuers)
        if workload is not None:
            return self._workload(workload, client, request, now)
        if not client.is_confidential:
            # the ID-JAG names a client: only one that proves it is that client may present it
            raise UnauthorizedClient("an ID-JAG is for confidential clients only")
        idp, kid = id_jag.issuer_of(request.assertion, self._settings.trusted_idps)
        grant = id_jag.verify_id_jag(
            request.assertion,
            idp,
            self._keys.keys(idp.jwks_uri, kid),
            issuer=self._settings.issuer,
            resources=self._resources,
            client_id=client.client_id,
            now=now,
        )
        # RFC 8707 §2.2: a `resource` in the request names the one the grant is for
        if request.resource is not None and self._resources.get(request.resource) != grant.resource:
            raise InvalidGrant(id_jag.WRONG_AUDIENCE)
        user = self._user(grant)
        if user is None:
            raise InvalidGrant(id_jag.UNMAPPED)
        if user.disabled:
            raise InvalidGrant(USER_DISABLED)
        scope = id_jag.granted_scope(
            known_only(request.scope),
            known_only(grant.scope) if grant.scope is not None else None,
            client.scope,
            idp.scopes,
        )
        if not scope:
            raise InvalidGrant(id_jag.NO_SCOPE)
        # single use, per issuer (RFC 7519 §4.1.7: a `jti` is unique among one issuer's JWTs)
        if not self._used.first_use(f"id-jag\n{idp.issuer}", grant.jti, expires_at=grant.expires_at, now=now):
            raise InvalidGrant(id_jag.REPLAYED)
        return EnterpriseGrant(idp=idp, user_id=user.user_id, scope=scope, resource=grant.resource)

    def _workload(
        self, issuer: TrustedWorkloadIssuer, client: ClientRecord, request: JwtBearerRequest, now: int
    ) -> WorkloadGrant:
        header, _ = id_jag.unverified(request.assertion)
        kid = header.get("kid")
        token = workload_jwt.verify_workload_token(
            request.assertion,
            issuer,
            self._keys.keys(issuer.jwks_uri, kid if isinstance(kid, str) else None),
            own_issuer=self._settings.issuer,
            client_id=client.client_id,
            now=now,
        )
        scope = id_jag.granted_scope(known_only(request.scope), None, client.scope, issuer.scopes)
        if not scope:
            raise InvalidScope("no requested scope is allowed for this workload")
        used = f"workload\n{issuer.issuer}"
        if token.jti is not None and not self._used.first_use(
            used, token.jti, expires_at=token.expires_at, now=now
        ):
            raise InvalidGrant(workload_jwt.REPLAYED)
        return WorkloadGrant(issuer=issuer, scope=scope)

    def _user(self, grant: id_jag.IdJag) -> UserRecord | None:
        match grant.idp.subject:
            case "sub":
                return self._users.get(grant.subject)
            case "email":
                if grant.email is None:
                    return None
                found = self._links.users_with_email(grant.email)
                # two users with the address: nothing is guessed
                return found[0] if len(found) == 1 else None
            case "link":
                link = self._links.get(grant.idp.issuer, grant.subject)
                return self._links.user(link) if link is not None else None
