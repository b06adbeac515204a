"""The pushed authorization request endpoint (RFC 9126): `POST /oauth/par`.

The client authenticates as at the token endpoint (`client_auth`: a secret, `private_key_jwt`, or
only its `client_id` for a public client, §2), sends the authorization request's parameters in
the body, and gets a `request_uri` valid for `REQUEST_URI_TTL` seconds (§2.2) that it then sends
to `/oauth/authorize` with its `client_id` (§4), where it is taken once
(`storage.pushed_requests`). The request is checked here as far as it can be without a person
(§2.1: the client, its redirect URI, PKCE, the response type); scopes and the resource are
checked when it is used, by the same code as any authorization request.

RFC 9449 §10.1: the code may be bound to a DPoP key here, by `dpop_jkt` or by a `DPoP` header on
the push (checked as at the token endpoint, nonce included); either way the token request that
redeems the code must prove that key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from wallet_mcp.limits import Rules
from wallet_mcp.oauth.server.client_auth import ClientAuthenticator, presented_client
from wallet_mcp.oauth.server.dpop_binding import ProofRequest, TokenDpop
from wallet_mcp.primitives import dpop, pkce
from wallet_mcp.primitives.errors import InvalidRequest, OAuthError, TooManyRequests, UnauthorizedClient
from wallet_mcp.primitives.redirect_uris import redirect_uri_matches
from wallet_mcp.storage.clients import ClientStore
from wallet_mcp.storage.pushed_requests import PushedRequests
from wallet_mcp.storage.rate_limits import RateLimits

PAR_PATH: Final = "/oauth/par"
REQUEST_URI_TTL: Final = 60
_AUTHENTICATION: Final = frozenset({"client_secret", "client_assertion", "client_assertion_type"})


class PushedAuthorizationEndpoint:
    def __init__(
        self,
        clients: ClientStore,
        authenticator: ClientAuthenticator,
        pushed: PushedRequests,
        clock: Callable[[], int],
        *,
        rates: RateLimits,
        rules: Rules,
        dpop: TokenDpop | None = None,
    ) -> None:
        """`dpop`: a `DPoP` header on the push is checked and binds the code to its key (RFC 9449
        §10.1; None: proofs are ignored)."""
        self._dpop = dpop
        self._rates = rates
        self._rules = rules
        self._clients = clients
        self._authenticator = authenticator
        self._pushed = pushed
        self._clock = clock

    def handle(
        self,
        form: Mapping[str, str],
        authorization: str | None,
        source: str,
        proof: ProofRequest | None = None,
    ) -> dict[str, Any]:
        """Guarded like the token endpoint, whose client authentication it shares (RFC 9126 §2;
        RFC 6749 §10.10): an address that keeps failing is refused before any work, and each
        client's pushes are counted per minute."""
        now = self._clock()
        failures = self._rules.token_address_failures
        failures.check(self._rates.count(self._rates.read(failures, source, now)), now)
        try:
            return self._push(form, authorization, now, proof)
        except TooManyRequests:
            raise
        except OAuthError:
            self._rates.record(failures, source, now)
            raise

    def _push(
        self, form: Mapping[str, str], authorization: str | None, now: int, proof: ProofRequest | None
    ) -> dict[str, Any]:
        presented = presented_client(form, authorization)
        record = self._clients.get(presented.client_id, now=now)
        # the proof before the client's credentials: a nonce refusal spends no assertion
        proved = self._dpop.proved(proof, PAR_PATH, now) if self._dpop is not None else None
        client = self._authenticator.authenticate(presented, record, endpoint=PAR_PATH)
        self._rates.hit(self._rules.par_client, client.client_id, now)
        if "request_uri" in form:  # §2.1: a pushed request cannot point at another
            raise InvalidRequest("request_uri must not be pushed")
        if "request" in form:
            raise InvalidRequest("request objects (RFC 9101) are not supported")
        if "authorization_code" not in client.grant_types:
            raise UnauthorizedClient("this client may not use the authorization code flow")
        if form.get("response_type") != "code":
            raise InvalidRequest("response_type must be code")
        redirect_uri = form.get("redirect_uri")
        if redirect_uri is None or not redirect_uri_matches(
            client.redirect_uris, redirect_uri, client.application_type
        ):
            raise InvalidRequest("redirect_uri is missing or not registered for this client")
        challenge = form.get("code_challenge")
        if (
            challenge is None
            or form.get("code_challenge_method") != "S256"
            or not pkce.is_valid_challenge(challenge)
        ):
            raise InvalidRequest("PKCE required: code_challenge with S256")
        dpop_jkt = form.get("dpop_jkt")
        if dpop_jkt is not None and not dpop.is_thumbprint(dpop_jkt):
            raise InvalidRequest("dpop_jkt is not a base64url JWK SHA-256 thumbprint (RFC 9449 §10)")
        if proved is not None and dpop_jkt is not None and proved != dpop_jkt:
            # §10.1: both ways of naming the key were used, and they disagree
            raise InvalidRequest("dpop_jkt does not match the key of the DPoP proof")
        params = {k: v for k, v in form.items() if k not in _AUTHENTICATION}
        params["client_id"] = client.client_id
        if proved is not None:
            params["dpop_jkt"] = proved  # §10.1: as if it had been sent as dpop_jkt
        request_uri = self._pushed.push(client.client_id, params, now=now, ttl=REQUEST_URI_TTL)
        return {"request_uri": request_uri, "expires_in": REQUEST_URI_TTL}
