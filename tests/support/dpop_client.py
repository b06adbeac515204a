"""A DPoP client for the tests (RFC 9449 §4): a key pair and the proofs it signs, built on pyjwt.

The official TypeScript client 2.4.0 knows the DPoP error codes but signs no proofs, and the
Python SDK has no DPoP provider: the tests drive the protocol with this."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from wallet_mcp.primitives.dpop import access_token_hash, thumbprint


class DpopKey:
    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        if alg == "ES256":
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
            self.public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        else:  # RS256, PS256
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        self.nonce: str | None = None

    @property
    def jkt(self) -> str:
        return thumbprint(self.public_jwk)

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = "current",
        jti: str | None = None,
        iat: int | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A proof for `method url`; `nonce="current"`: the last nonce the server gave, if any."""
        body: dict[str, Any] = {
            "jti": jti or uuid.uuid4().hex,
            "htm": method,
            "htu": url,
            "iat": int(time.time()) if iat is None else iat,
        }
        chosen = self.nonce if nonce == "current" else nonce
        if chosen is not None:
            body["nonce"] = chosen
        if access_token is not None:
            body["ath"] = access_token_hash(access_token)
        body.update(claims or {})
        headers = {"typ": "dpop+jwt", "jwk": self.public_jwk, **(header or {})}
        return jwt.encode(body, self.private, algorithm=self.alg, headers=headers)

    def remember(self, response_headers: list[tuple[str, str]]) -> None:
        """Keep the `DPoP-Nonce` the server sent, if any (§8.2)."""
        for name, value in response_headers:
            if name.lower() == "dpop-nonce":
                self.nonce = value
