"""A DPoP client for the tests (RFC 9449 §4): a key pair and the proofs it signs — the project's
own signer (`primitives.dpop.ProofSigner`, which the `wallet-mcp` command uses too) with a fresh
key and the last server nonce remembered.

The official Python SDK has no DPoP provider: the tests drive the protocol with this (the
TypeScript client 2.x signs its own proofs, tests/flows/test_typescript_client_dpop.py)."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from wallet_mcp.primitives.dpop import ProofSigner


class DpopKey(ProofSigner):
    def __init__(self, alg: str = "ES256") -> None:
        if alg == "ES256":
            key: Any = ec.generate_private_key(ec.SECP256R1())
        else:  # RS256, PS256
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        super().__init__(key, alg)
        self.private = key
        self.nonce: str | None = None

    def proof(  # type: ignore[override]
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
        return super().proof(
            method,
            url,
            nonce=self.nonce if nonce == "current" else nonce,
            access_token=access_token,
            jti=jti,
            iat=iat,
            claims=claims,
            header=header,
        )

    def remember(self, response_headers: list[tuple[str, str]]) -> None:
        """Keep the `DPoP-Nonce` the server sent, if any (§8.2)."""
        for name, value in response_headers:
            if name.lower() == "dpop-nonce":
                self.nonce = value
