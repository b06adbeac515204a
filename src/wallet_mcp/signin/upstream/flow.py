"""Signing in with an upstream OpenID provider: this server as an OpenID Connect relying party.

`begin` sends the browser to the provider with an authorization-code request (OpenID Connect Core
§3.1.2.1) carrying a fresh `state` (CSRF, RFC 6749 §10.12), `nonce` (ID-token replay, Core
§3.1.2.1) and PKCE challenge (`S256`, RFC 7636; RFC 9700 §2.1.1 asks it of confidential clients
too), all remembered server-side, bound to the browser and to the pending authorization
(storage/upstream_logins.py). `complete` handles the provider's answer: the `state` is consumed
once, the code exchanged at the token endpoint with the client secret and the PKCE verifier, the
ID token validated (id_tokens.py) and the identity mapped to a local user (linking.py). The
upstream tokens are never stored or used beyond that one ID token.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

from wallet_mcp.config.upstream import IdentityProvider
from wallet_mcp.credentials import opaque
from wallet_mcp.credentials.sealing import SealBroken, open_sealed, seal
from wallet_mcp.observability import count
from wallet_mcp.primitives import pkce
from wallet_mcp.primitives.fetch import (
    FetchPolicy,
    JsonResponse,
    UpstreamUnavailable,
    get_json,
    post_form,
)
from wallet_mcp.signin.upstream import linking
from wallet_mcp.signin.upstream.discovery import TENANT_PLACEHOLDER, ProviderDirectory, ProviderMetadata
from wallet_mcp.signin.upstream.id_tokens import (
    InvalidIdToken,
    UpstreamIdentity,
    validate_id_token,
    with_userinfo,
)
from wallet_mcp.signin.upstream.secrets import SecretSource, SecretUnavailable
from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.auth_requests import PendingAuthorization
from wallet_mcp.storage.identity_links import IdentityLink, IdentityLinkStore
from wallet_mcp.storage.upstream_logins import UpstreamLogin, UpstreamLoginStore
from wallet_mcp.storage.users import UserRecord, is_valid_username

if TYPE_CHECKING:
    from wallet_mcp.config import Settings

logger = logging.getLogger(__name__)

LOGIN_TTL: Final = 10 * 60
_VERIFIER_PURPOSE: Final = b"wallet-mcp/upstream-pkce-verifier"
_MAX_ERROR_CODE: Final = 64
"""What `wallet-mcp admin create-user` accepts as a login name."""

Post = Callable[[str, Mapping[str, str], FetchPolicy, Mapping[str, str] | None], JsonResponse]
Get = Callable[[str, FetchPolicy, Mapping[str, str] | None], JsonResponse]


class UpstreamRefused(Exception):
    """The sign-in did not succeed; `message` is for the user, `reason` for the audit trail."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: UserRecord
    identity: UpstreamIdentity


class UpstreamSignIn:
    def __init__(
        self,
        *,
        issuer: str,
        logins: UpstreamLoginStore,
        links: IdentityLinkStore,
        audit: AuditLog,
        directory: ProviderDirectory,
        secrets: SecretSource,
        policy: FetchPolicy,
        post: Post = post_form,
        get: Get = get_json,
    ) -> None:
        self._issuer = issuer
        self._logins = logins
        self._links = links
        self._audit = audit
        self._directory = directory
        self._secrets = secrets
        self._policy = policy
        self._post = post
        self._get = get

    def callback_url(self, provider: IdentityProvider) -> str:
        """The redirect URI to register at the provider."""
        return f"{self._issuer}/oauth/authorize/upstream/{provider.id}/callback"

    # --- to the provider ---------------------------------------------------------------------

    def begin(self, provider: IdentityProvider, pending: PendingAuthorization, now: int) -> str:
        """Where to send the browser; UpstreamUnavailable if the provider's metadata cannot be read."""
        return self._begin(
            provider,
            request_id=pending.request_id,
            browser_hash=pending.browser_hash,
            expires_at=min(pending.expires_at, now + LOGIN_TTL),
            return_to=None,
            now=now,
        )

    def begin_account(self, provider: IdentityProvider, browser_hash: str, return_to: str, now: int) -> str:
        """The same for a sign-in to the account pages: no pending authorization, and once signed
        in the browser goes to `return_to` (one of our own pages)."""
        return self._begin(
            provider,
            request_id="",
            browser_hash=browser_hash,
            expires_at=now + LOGIN_TTL,
            return_to=return_to,
            now=now,
        )

    def _begin(
        self,
        provider: IdentityProvider,
        *,
        request_id: str,
        browser_hash: str,
        expires_at: int,
        return_to: str | None,
        now: int,
    ) -> str:
        metadata = self._directory.metadata(provider)
        state, nonce, verifier = opaque.new_secret(), opaque.new_secret(), opaque.new_secret()
        redirect_uri = self.callback_url(provider)
        self._logins.put(
            UpstreamLogin(
                state_hash=opaque.digest(state),
                provider_id=provider.id,
                request_id=request_id,
                browser_hash=browser_hash,
                nonce_hash=opaque.digest(nonce),
                sealed_verifier=seal(state, _VERIFIER_PURPOSE, verifier.encode("ascii")),
                redirect_uri=redirect_uri,
                created_at=now,
                expires_at=expires_at,
                return_to=return_to,
            )
        )
        return _with_query(
            metadata.authorization_endpoint,
            {
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(provider.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce.s256(verifier),
                "code_challenge_method": "S256",
            },
        )

    # --- back from the provider --------------------------------------------------------------

    def take(self, state: str, now: int) -> UpstreamLogin | None:
        """The sign-in this `state` started, consumed (a state works once)."""
        if not state or len(state) > 512:
            return None
        return self._logins.take(opaque.digest(state), now=now)

    def complete(
        self,
        provider: IdentityProvider,
        login: UpstreamLogin,
        state: str,
        params: Mapping[str, str],
        *,
        now: int,
        source: str,
        client_id: str | None,
    ) -> SignedIn:
        """The local user the provider's answer signs in; UpstreamRefused or UpstreamUnavailable."""
        try:
            identity = self._identity(provider, login, state, params)
            user = self._local_user(provider, identity, now=now, source=source, client_id=client_id)
        except UpstreamRefused as refused:
            self._failed(provider, refused.reason, source=source, client_id=client_id)
            raise
        except UpstreamUnavailable as exc:
            self._failed(provider, f"unavailable: {exc}", source=source, client_id=client_id)
            raise
        self._audit.record(
            AuditEvent(
                "upstream_login_succeeded",
                subject=user.user_id,
                client_id=client_id,
                source=source,
                details={"provider": provider.id, "issuer": identity.issuer},
            )
        )
        count("UpstreamLogins", provider=provider.id)
        return SignedIn(user, identity)

    def _identity(
        self, provider: IdentityProvider, login: UpstreamLogin, state: str, params: Mapping[str, str]
    ) -> UpstreamIdentity:
        if "error" in params:
            # RFC 6749 §4.1.2.1: the user said no, or the provider refused; only its code is shown
            error = _error_code(params.get("error"))
            raise UpstreamRefused(
                f"{provider.name} did not sign you in ({error}).", f"upstream_error: {error}"
            )
        code = params.get("code")
        if not code or len(code) > 4096:
            raise UpstreamRefused(f"{provider.name} sent an incomplete answer.", "no_code")
        metadata = self._directory.metadata(provider)
        returned_iss = params.get("iss")
        if (
            returned_iss is not None
            and TENANT_PLACEHOLDER not in metadata.issuer
            and returned_iss != metadata.issuer
        ):
            # RFC 9207 §2.4: an answer from another issuer (a mix-up attack) is refused
            raise UpstreamRefused(f"{provider.name} sent an answer from another issuer.", "iss_mismatch")
        try:
            verifier = open_sealed(state, _VERIFIER_PURPOSE, login.sealed_verifier).decode("ascii")
        except SealBroken as exc:
            raise UpstreamRefused(
                "This sign-in cannot be completed. Start again.", "verifier_unsealable"
            ) from exc
        tokens = self._exchange(provider, metadata, code, verifier, login.redirect_uri)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise UpstreamRefused(f"{provider.name} did not send an ID token.", "no_id_token")
        try:
            identity = validate_id_token(
                id_token,
                provider=provider,
                metadata=metadata,
                keys=lambda refresh: self._directory.keys(provider, metadata, refresh=refresh),
                nonce_hash=login.nonce_hash,
            )
            access_token = tokens.get("access_token")
            if identity.email is None and metadata.userinfo_endpoint and isinstance(access_token, str):
                identity = with_userinfo(identity, self._userinfo(metadata.userinfo_endpoint, access_token))
            return identity
        except InvalidIdToken as exc:
            logger.warning("upstream ID token refused", extra={"provider": provider.id, "reason": str(exc)})
            raise UpstreamRefused(
                f"The sign-in from {provider.name} could not be verified.", f"invalid_id_token: {exc}"
            ) from exc

    def _userinfo(self, endpoint: str, access_token: str) -> Mapping[str, object]:
        """Core §5.3: the claims the provider keeps out of the ID token (Core §5.4)."""
        response = self._get(endpoint, self._policy, {"Authorization": f"Bearer {access_token}"})
        if response.status != 200:
            raise UpstreamUnavailable(
                f"the identity provider's userinfo endpoint answered HTTP {response.status}"
            )
        return response.document

    def _exchange(
        self,
        provider: IdentityProvider,
        metadata: ProviderMetadata,
        code: str,
        verifier: str,
        redirect_uri: str,
    ) -> Mapping[str, object]:
        """RFC 6749 §4.1.3 with RFC 7636 §4.5; the client authenticates as the provider prefers."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers: dict[str, str] = {}
        try:
            secret = self._secrets.get(provider.client_secret) if provider.client_secret else None
        except SecretUnavailable as exc:
            logger.error(
                "upstream client secret unavailable", extra={"provider": provider.id, "error": str(exc)}
            )
            raise UpstreamUnavailable(f"sign-in with {provider.name} is not set up correctly") from exc
        match metadata.auth_method(secret is not None, provider.token_endpoint_auth_method):
            case "client_secret_basic":
                # RFC 6749 §2.3.1: both parts form-encoded before the Basic encoding
                pair = f"{quote_plus(provider.client_id)}:{quote_plus(secret or '')}"
                headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
            case "client_secret_post":
                form |= {"client_id": provider.client_id, "client_secret": secret or ""}
            case "none":
                form["client_id"] = provider.client_id
        response = self._post(metadata.token_endpoint, form, self._policy, headers)
        if response.status >= 500:
            raise UpstreamUnavailable(
                f"the identity provider's token endpoint answered HTTP {response.status}"
            )
        if response.status != 200:
            code = _error_code(response.document.get("error"))
            raise UpstreamRefused(f"{provider.name} refused the sign-in ({code}).", f"token_error: {code}")
        return response.document

    # --- the local user ----------------------------------------------------------------------

    def _local_user(
        self,
        provider: IdentityProvider,
        identity: UpstreamIdentity,
        *,
        now: int,
        source: str,
        client_id: str | None,
    ) -> UserRecord:
        for _ in range(3):  # a concurrent first sign-in of the same identity can win a race: read again
            link = self._links.get(identity.issuer, identity.subject)
            linked_user = self._links.user(link) if link else None
            same_email = (
                self._links.users_with_email(identity.email)
                if link is None and identity.email and identity.email_verified
                else []
            )
            decision = linking.decide(
                provider,
                identity,
                link_exists=link is not None,
                linked_user=linked_user,
                same_email=same_email,
            )
            match decision:
                case linking.Refuse(reason=reason, message=message):
                    raise UpstreamRefused(message, reason)
                case linking.UseUser(user=user, link_now=False):
                    return user
                case linking.UseUser(user=user, link_now=True):
                    if self._links.link(self._link(provider, identity, user, now)):
                        self._linked(provider, identity, user, source, client_id, how="verified_email")
                        return user
                case linking.CreateUser(store_email=store_email):
                    user = self._new_user(provider, identity, now, store_email=store_email)
                    if self._links.create_user_and_link(user, self._link(provider, identity, user, now)):
                        self._audit.record(
                            AuditEvent(
                                "user_created",
                                subject=user.user_id,
                                client_id=client_id,
                                source=source,
                                details={"provider": provider.id, "username": user.username},
                            )
                        )
                        self._linked(provider, identity, user, source, client_id, how="new_user")
                        return user
        raise UpstreamRefused("This sign-in could not be completed. Try again.", "link_race")

    def _new_user(
        self, provider: IdentityProvider, identity: UpstreamIdentity, now: int, *, store_email: bool
    ) -> UserRecord:
        # a verified address is the friendliest login name; else one derived from the identity
        pair = f"{identity.issuer}\n{identity.subject}".encode()
        username = f"{provider.id}-{hashlib.sha256(pair).hexdigest()[:20]}"
        email = identity.email
        if store_email and email and is_valid_username(email) and not self._links.username_taken(email):
            username = email
        return UserRecord(
            username=username,
            user_id=str(uuid.uuid4()),
            password_hash=None,  # signs in only through the provider until an administrator sets one
            created_at=now,
            display_name=identity.name,
            email=identity.email if store_email else None,
        )

    @staticmethod
    def _link(
        provider: IdentityProvider, identity: UpstreamIdentity, user: UserRecord, now: int
    ) -> IdentityLink:
        return IdentityLink(
            issuer=identity.issuer,
            subject=identity.subject,
            provider_id=provider.id,
            user_id=user.user_id,
            username=user.username,
            created_at=now,
        )

    def _linked(
        self,
        provider: IdentityProvider,
        identity: UpstreamIdentity,
        user: UserRecord,
        source: str,
        client_id: str | None,
        *,
        how: str,
    ) -> None:
        self._audit.record(
            AuditEvent(
                "upstream_identity_linked",
                subject=user.user_id,
                client_id=client_id,
                source=source,
                details={"provider": provider.id, "issuer": identity.issuer, "how": how},
            )
        )

    def _failed(self, provider: IdentityProvider, reason: str, *, source: str, client_id: str | None) -> None:
        count("UpstreamLoginFailures", provider=provider.id)
        self._audit.record(
            AuditEvent(
                "upstream_login_failed",
                subject=f"upstream:{provider.id}",
                client_id=client_id,
                source=source,
                details={"provider": provider.id, "reason": reason[:200]},
            )
        )


def _error_code(raw: object) -> str:
    """An OAuth error code as safe text (RFC 6749 §4.1.2.1: printable ASCII, no quote or backslash)."""
    if not isinstance(raw, str) or not raw:
        return "error"
    cleaned = "".join(c for c in raw[:_MAX_ERROR_CODE] if c.isalnum() or c in "_-.")
    return cleaned or "error"


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def build_upstream_sign_in(
    settings: Settings, *, logins: UpstreamLoginStore, links: IdentityLinkStore, audit: AuditLog
) -> UpstreamSignIn:
    """The relying party as the authorization function runs it: caches live as long as the container."""
    policy = FetchPolicy(allow_loopback=settings.allow_loopback_identity_providers)
    return UpstreamSignIn(
        issuer=settings.issuer,
        logins=logins,
        links=links,
        audit=audit,
        directory=ProviderDirectory(policy, clock=time.monotonic),
        secrets=SecretSource(clock=time.monotonic),
        policy=policy,
    )
