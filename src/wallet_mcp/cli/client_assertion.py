"""`private_key_jwt` on the client side: the command signs its own client assertions (RFC 7523
§2.2) with a private key file (`MCP_CLIENT_PRIVATE_KEY_FILE`) instead of sending a secret.

The key is a PEM private key (PKCS#8 or traditional, unencrypted): RSA signs RS256 (PS256 when
`MCP_CLIENT_KEY_ALG=PS256`), an EC P-256 key ES256, the algorithms the server allows. Each
assertion lives 60 seconds and has a fresh `jti` (the server spends it); its `aud` is the
authorization server's issuer (RFC 7523bis, FAPI 2.0).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from wallet_mcp.cli.errors import ConfigurationError

CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIFETIME: Final = 60


class AssertionSigner:
    def __init__(
        self,
        client_id: str,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        algorithm: str,
        *,
        key_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.algorithm = algorithm
        self._key = key
        self._key_id = key_id
        self._clock = clock

    @classmethod
    def from_file(
        cls, client_id: str, path: Path, *, algorithm: str | None = None, key_id: str | None = None
    ) -> AssertionSigner:
        try:
            data = path.expanduser().read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read MCP_CLIENT_PRIVATE_KEY_FILE {path}: {exc.strerror or exc}"
            ) from exc
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"{path} is not an unencrypted PEM private key (RSA, or EC P-256)"
            ) from exc
        if isinstance(key, rsa.RSAPrivateKey):
            chosen = algorithm or "RS256"
            if chosen not in ("RS256", "PS256"):
                raise ConfigurationError("an RSA key signs RS256 or PS256 (MCP_CLIENT_KEY_ALG)")
            return cls(client_id, key, chosen, key_id=key_id)
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            if algorithm not in (None, "ES256"):
                raise ConfigurationError("an EC P-256 key signs ES256 (MCP_CLIENT_KEY_ALG)")
            return cls(client_id, key, "ES256", key_id=key_id)
        raise ConfigurationError(f"{path}: the key must be RSA or EC P-256")

    def sign(self, audience: str) -> str:
        """A fresh assertion for the authorization server `audience` (its issuer)."""
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + LIFETIME,
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self._key_id} if self._key_id else None
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def form(self, audience: str) -> dict[str, str]:
        """The token request's client-authentication parameters (RFC 7521 §4.2)."""
        return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": self.sign(audience)}

    def provider(self) -> Callable[[str], Awaitable[str]]:
        """For the SDK's `PrivateKeyJWTOAuthProvider(assertion_provider=...)`."""

        async def assertion(audience: str) -> str:
            return self.sign(audience)

        return assertion
