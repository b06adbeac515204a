"""Which local user an upstream sign-in is (pure rules; docs/identity-providers.md § Linking).

1. An identity linked before, by its (`iss`, `sub`), is that user, whatever its email says now.
2. A first sign-in may be linked to the existing user with the same email address only if the
   provider asserts `email_verified: true` and the provider allows linking (`link_by_email`).
   An address without that assertion (Microsoft never makes it) proves nothing: anyone can put
   any address on a Microsoft account, so linking by it would hand over someone else's wallet.
   Two users with the address: nothing is guessed.
3. Otherwise, a new user is created (if `create_users`), linked by (`iss`, `sub`).

A disabled user stays out, whichever way it was found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wallet_mcp.config.upstream import IdentityProvider
from wallet_mcp.signin.upstream.id_tokens import UpstreamIdentity
from wallet_mcp.storage.users import UserRecord


@dataclass(frozen=True, slots=True)
class UseUser:
    user: UserRecord
    link_now: bool
    """Found by verified email: the identity is to be linked to it from now on."""


@dataclass(frozen=True, slots=True)
class CreateUser:
    store_email: bool
    """Keep the address on the new user (verified, and no other user has it)."""


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: str
    """For the audit trail."""
    message: str
    """For the user."""


Decision = UseUser | CreateUser | Refuse


def decide(
    provider: IdentityProvider,
    identity: UpstreamIdentity,
    *,
    link_exists: bool,
    linked_user: UserRecord | None,
    same_email: Sequence[UserRecord],
) -> Decision:
    """`same_email`: the users whose email is the identity's (looked up only for a verified one)."""
    if link_exists:
        if linked_user is None:
            return Refuse(
                "linked_user_missing",
                "The account linked to this sign-in no longer exists. Ask an administrator.",
            )
        return _usable(linked_user, link_now=False)
    verified = identity.email is not None and identity.email_verified
    if verified and provider.link_by_email and same_email:
        if len(same_email) > 1:
            return Refuse(
                "email_ambiguous",
                "Several accounts here use this email address. Sign in with your password instead.",
            )
        return _usable(same_email[0], link_now=True)
    if not provider.create_users:
        return Refuse(
            "no_local_user",
            f"No account here matches this {provider.name} sign-in. "
            "Sign in with your password, or ask an administrator for an account.",
        )
    return CreateUser(store_email=verified and not same_email)


def _usable(user: UserRecord, *, link_now: bool) -> Decision:
    if user.disabled:
        return Refuse("user_disabled", "This account is disabled.")
    return UseUser(user, link_now=link_now)
