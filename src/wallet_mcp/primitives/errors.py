"""OAuth error responses: one exception type per wire error code.

RFC 6749 §5.2 (token endpoint), §4.1.2.1 (authorization endpoint), RFC 7591 §3.2.2
(registration), RFC 8707 §2 (`invalid_target`), RFC 6750 §3.1 (bearer tokens), RFC 7009 §2.2.1.
A single renderer in `wallet_mcp.web.errors` turns them into responses.
"""

from __future__ import annotations

from typing import ClassVar


class OAuthError(Exception):
    """An error the client is told about, by its RFC error code."""

    error: ClassVar[str] = "invalid_request"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (RFC 6749 §5.2): 401 with a WWW-Authenticate challenge."""

    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource is unknown or not allowed."""

    error = "invalid_target"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1."""

    error = "unsupported_token_type"


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2."""

    error = "invalid_client_metadata"


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2."""

    error = "invalid_redirect_uri"


class AccessDenied(OAuthError):
    error = "access_denied"
    status_code = 403


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class PayloadTooLarge(OAuthError):
    """The body is larger than any legitimate request to this endpoint."""

    error = "invalid_request"
    status_code = 413


class TooManyRequests(OAuthError):
    error = "slow_down"
    status_code = 429

    def __init__(self, description: str, retry_after: int, rule: str = "unknown") -> None:
        super().__init__(description)
        self.retry_after = retry_after
        self.rule = rule


class TemporarilyUnavailable(OAuthError):
    """A dependency (DynamoDB, KMS) failed; nothing was changed and the client may retry."""

    error = "temporarily_unavailable"
    status_code = 503

    def __init__(self, description: str, retry_after: int = 1) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class InvalidDpopProof(OAuthError):
    """RFC 9449 §5: the DPoP proof of a token request is missing or not acceptable. `dpop_nonce`:
    a fresh server nonce for the `DPoP-Nonce` header, when the server has one."""

    error = "invalid_dpop_proof"

    def __init__(self, description: str, dpop_nonce: str | None = None) -> None:
        super().__init__(description)
        self.dpop_nonce = dpop_nonce


class UseDpopNonce(InvalidDpopProof):
    """RFC 9449 §8: the proof lacks a current server nonce; the `DPoP-Nonce` header has one."""

    error = "use_dpop_nonce"
