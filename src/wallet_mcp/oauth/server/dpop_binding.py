"""DPoP at the token endpoint (RFC 9449 §5): which key a token request proves, if any.

A request with a `DPoP` header must carry one valid proof for `POST` to the token endpoint's URL,
with the server's current nonce (else `use_dpop_nonce` with a `DPoP-Nonce` header, §8) and a `jti`
not seen before; its key's thumbprint is what the issued tokens are bound to. A request without
one is refused (`invalid_dpop_proof`) where the deployment or the client requires DPoP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from wallet_mcp.primitives import dpop
from wallet_mcp.primitives.errors import InvalidDpopProof, UseDpopNonce
from wallet_mcp.storage.clients import ClientRecord

TOKEN_PATH = "/oauth/token"


@dataclass(frozen=True, slots=True)
class ProofRequest:
    """The token request's `DPoP` headers, and the `Host` it came in on."""

    proofs: tuple[str, ...]
    host: str | None


class TokenDpop:
    def __init__(
        self,
        checker: dpop.DpopChecker,
        *,
        required: bool,
        url_of: Callable[[str, str | None], str],
    ) -> None:
        """`required`: every token request needs a proof (DPOP_REQUIRED, the FAPI 2.0 profile);
        `url_of(path, host)`: the endpoint's URL as the client addressed it."""
        self._checker = checker
        self._required = required
        self._url_of = url_of

    def nonce(self, now: int) -> str | None:
        return self._checker.nonce(now)

    def key(self, request: ProofRequest | None, client: ClientRecord | None, now: int) -> str | None:
        """The thumbprint of the key the request proves; None when it carries no proof and none is
        required. InvalidDpopProof or UseDpopNonce otherwise."""
        proofs = request.proofs if request is not None else ()
        if not proofs:
            if self._required or (client is not None and client.dpop_bound_access_tokens):
                raise InvalidDpopProof("a DPoP proof is required (RFC 9449)", self._checker.nonce(now))
            return None
        return self.proved(request, TOKEN_PATH, now)

    def proved(self, request: ProofRequest | None, path: str, now: int) -> str | None:
        """The thumbprint of the key a request to `path` proves, None when it carries no proof:
        at PAR a proof is optional and binds the code as `dpop_jkt` would (§10.1)."""
        if request is None or not request.proofs:
            return None
        try:
            checked = self._checker.check(
                list(request.proofs), method="POST", url=self._url_of(path, request.host), now=now
            )
        except dpop.InvalidProof as exc:
            error = UseDpopNonce if exc.error == "use_dpop_nonce" else InvalidDpopProof
            raise error(exc.description, self._checker.nonce(now)) from exc
        return checked.jkt
