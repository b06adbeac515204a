"""Signing a person in: password check with lockout, audit and metrics, and the login session.

Shared by the authorization endpoint and the account and admin pages. The session cookie is
HttpOnly, SameSite=Lax, Secure and `__Host-` prefixed outside localhost; the table keeps only its
digest. Forms of signed-in pages carry a CSRF token derived from the session cookie
(`signin.csrf`, purpose `session`), checked on every submission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from wallet_mcp.credentials import opaque
from wallet_mcp.credentials.passwords import burn_verification, verify_password
from wallet_mcp.limits import Rules, lockout_remaining
from wallet_mcp.observability import count
from wallet_mcp.signin import csrf
from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.rate_limits import RateLimits
from wallet_mcp.storage.sessions import LoginSession, SessionStore
from wallet_mcp.storage.users import UserRecord, UserStore, normalize_username
from wallet_mcp.web.cookies import Cookie, CookieJar

SESSION_TTL: Final = 8 * 3600
DISABLED: Final = "This account has been disabled by an administrator. Contact them to have it enabled again."


class SignInRefused(Exception):
    """What the sign-in page should say; `retry_after` when the user or address is locked out."""

    def __init__(self, message: str, *, retry_after: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self._status = status

    @property
    def status(self) -> int:
        if self._status is not None:
            return self._status
        return 429 if self.retry_after else 200


@dataclass(frozen=True, slots=True)
class OpenedSession:
    session: LoginSession
    cookie: Cookie


class SignIn:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        rates: RateLimits,
        audit: AuditLog,
        rules: Rules,
        secure: bool,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._rates = rates
        self._audit = audit
        self._rules = rules
        self.secure = secure
        self.cookie_name = "__Host-wallet_session" if secure else "wallet_session"

    def authenticate(
        self, username: str, password: str, *, source: str, client_id: str | None, now: int
    ) -> UserRecord:
        """The user, or SignInRefused (wrong credentials look the same whether the user exists or not)."""
        username = normalize_username(username[:256])
        password = password[:1024]
        locked = self._lockout(username, source, now)
        if locked:
            count("RateLimited", rule="login")
            self._audit.record(AuditEvent("login_locked_out", subject=username or "unknown", source=source))
            raise SignInRefused(
                f"Too many failed sign-ins. Try again in {locked} seconds.", retry_after=locked
            )
        user = self._users.get(username) if username else None
        if user is None or user.password_hash is None:
            burn_verification(password)
            verified = False
        else:
            verified = verify_password(password, user.password_hash)
        if user is not None and user.disabled and verified:
            # only someone who knows the password learns that the account is disabled
            self._audit.record(
                AuditEvent("login_failed", subject=user.user_id, client_id=client_id, source=source)
            )
            raise SignInRefused(DISABLED, status=403)
        if user is None or not verified:
            self._rates.record(self._rules.login_user_address_failures, _attempt(username, source), now)
            self._rates.record(self._rules.login_user_failures, username, now)
            self._rates.record(self._rules.login_address_failures, source, now)
            count("LoginFailures")
            subject = user.user_id if user else f"username:{username}"
            self._audit.record(
                AuditEvent("login_failed", subject=subject, client_id=client_id, source=source)
            )
            raise SignInRefused("Invalid username or password.")
        self._rates.clear(self._rules.login_user_address_failures, _attempt(username, source), now)
        self._audit.record(
            AuditEvent("login_succeeded", subject=user.user_id, client_id=client_id, source=source)
        )
        return user

    def open_session(self, user: UserRecord, now: int) -> OpenedSession:
        session_id = opaque.new_secret()
        session = LoginSession(
            session_hash=opaque.digest(session_id),
            user_id=user.user_id,
            username=user.username,
            auth_time=now,
            expires_at=now + SESSION_TTL,
        )
        self._sessions.put(session)
        return OpenedSession(session, Cookie(self.cookie_name, session_id, "/", SESSION_TTL))

    def current(self, cookies: CookieJar, now: int) -> LoginSession | None:
        session_id = cookies.get(self.cookie_name)
        if not session_id or len(session_id) > 256:
            return None
        return self._sessions.get(opaque.digest(session_id), now=now)

    def close(self, cookies: CookieJar) -> Cookie:
        """End the session (server side too); the cookie that clears the browser's."""
        session_id = cookies.get(self.cookie_name)
        if session_id and len(session_id) <= 256:
            self._sessions.delete(opaque.digest(session_id))
        return Cookie(self.cookie_name, "", "/", 0)

    def csrf_token(self, cookies: CookieJar) -> str:
        """The CSRF token for the forms of the current session ("" without one)."""
        session_id = cookies.get(self.cookie_name)
        return csrf.token(session_id, "session") if session_id else ""

    def csrf_ok(self, cookies: CookieJar, presented: str | None) -> bool:
        """The form came from a page shown to this session (`signin.csrf`)."""
        return csrf.verify(cookies.get(self.cookie_name), presented, "session")

    def _lockout(self, username: str, source: str, now: int) -> int:
        """Seconds before this user may try again from this address (0: now). Consecutive failures
        lock out only the address they came from (with back-off), so no one can lock a user out from
        everywhere; the hourly caps per user (from every address) and per address bound guessing
        spread over many addresses or many users."""
        pair_rule = self._rules.login_user_address_failures
        pair_item = self._rates.read(pair_rule, _attempt(username, source), now)
        failures, last = self._rates.count(pair_item), self._rates.last_at(pair_item)
        waits = [lockout_remaining(failures, last, pair_rule.limit, now)]
        for rule, subject in (
            (self._rules.login_user_failures, username),
            (self._rules.login_address_failures, source),
        ):
            if self._rates.count(self._rates.read(rule, subject, now)) >= rule.limit:
                waits.append(rule.retry_after(now))
        return max(waits)


def _attempt(username: str, source: str) -> str:
    """The subject counting one username's failures from one address. The address comes first: it
    holds no `#`, so the subject is unambiguous, and the 256-character cut of a bucket's subject can
    only shorten the username."""
    return f"{source}#{username}"
