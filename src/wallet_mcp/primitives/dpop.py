"""DPoP proofs (RFC 9449): checking one, the key thumbprint it binds to, and server nonces.

Pure: no I/O. What a proof must be (§4.3): a single JWT with `typ: dpop+jwt`, an asymmetric
algorithm of `ALGORITHMS` (never `none` or an HMAC), a public `jwk` in its header that verifies
its signature, `jti`, `htm` (the request's method), `htu` (the request's URL without query and
fragment), `iat` within a short window, at a resource `ath` (the hash of the access token it is
sent with, §7.1), and where the server asks for one, a `nonce` it issued (§8, §9).

The key is named by its RFC 7638 thumbprint (`jkt`), which access tokens carry as `cnf.jkt`
(§6.1). The replay cache (a `jti` used once within the window) is the caller's: `ReplayCache`
here is the in-memory one, per instance; a strict deployment passes a conditional write instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

ALGORITHMS: Final = ("ES256", "RS256", "PS256")
"""The JWS algorithms a proof may use (advertised as `dpop_signing_alg_values_supported`)."""
FAPI2_ALGORITHMS: Final = ("ES256", "PS256")
"""Under the FAPI 2.0 profile (§5.4.1: PS256, ES256 or EdDSA; not RS256)."""


def algorithms_for(fapi2_profile: bool) -> tuple[str, ...]:
    return FAPI2_ALGORITHMS if fapi2_profile else ALGORITHMS


PROOF_TYP: Final = "dpop+jwt"
MAX_AGE: Final = 60
"""Seconds a proof is accepted after its `iat` (and how long the replay cache keeps its `jti`)."""
MAX_FUTURE: Final = 5
"""Seconds of clock skew allowed for an `iat` in the future."""
NONCE_WINDOW: Final = 300
"""Seconds a server nonce is current; one from the previous window is still accepted."""
MAX_PROOF_LENGTH: Final = 8192
MIN_RSA_BITS: Final = 2048
"""RFC 8725 §3.5 defers to NIST; FAPI 2.0 §5.4.2: RSA keys of at least 2048 bits."""
_MAX_JTI: Final = 256
_KTY_MEMBERS: Final = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
_PRIVATE_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_KTY_OF_ALG: Final = {"ES256": "EC", "RS256": "RSA", "PS256": "RSA"}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

Problem = Literal["invalid_dpop_proof", "use_dpop_nonce"]


class InvalidProof(Exception):
    """A proof this server does not accept. `error` is the RFC 9449 code: `invalid_dpop_proof`,
    or `use_dpop_nonce` when only a (fresh) server nonce is missing (§8)."""

    def __init__(self, description: str, error: Problem = "invalid_dpop_proof") -> None:
        super().__init__(description)
        self.error: Problem = error
        self.description = description


@dataclass(frozen=True, slots=True)
class Proof:
    """A checked proof: the key's thumbprint, and what the replay cache keys it by."""

    jkt: str
    jti: str
    iat: int


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 over the required members, sorted, without whitespace, base64url."""
    members = _KTY_MEMBERS.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise InvalidProof("the jwk is not a supported public key")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


THUMBPRINT_LENGTH: Final = 43
"""A SHA-256 thumbprint in base64url without padding: 32 bytes, 43 characters."""


def is_thumbprint(value: str) -> bool:
    """§10: `dpop_jkt` is the JWK SHA-256 thumbprint (RFC 7638) of the key the client will prove,
    base64url-encoded without padding; anything else (another length, padding, another alphabet,
    trailing bits set) is not one."""
    if len(value) != THUMBPRINT_LENGTH:
        return False
    try:
        raw = base64.urlsafe_b64decode(value + "=")
    except ValueError:
        return False
    return b64url(raw) == value


def access_token_hash(access_token: str) -> str:
    """§4.2 `ath`: base64url(SHA-256(ASCII(access token)))."""
    return b64url(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


def normalized_uri(url: str) -> str | None:
    """`url` as §4.3 item 9 compares it: no query or fragment, scheme and host in lower case,
    the default port dropped (RFC 3986 §6.2.2-6.2.3); None if it is not an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def check_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: int,
    access_token: str | None = None,
    nonce_ok: Callable[[str | None], bool] | None = None,
    algorithms: tuple[str, ...] = ALGORITHMS,
) -> Proof:
    """§4.3: the checked proof, or InvalidProof. `access_token` at a resource (the proof must carry
    its `ath`); `nonce_ok` where the server requires nonces: given the proof's `nonce` (None when
    it has none), whether it is current (else `use_dpop_nonce`). Every signature check happens
    before the nonce is looked at, so a nonce is only ever handed to the holder of a valid proof."""
    import jwt

    if not proof or len(proof) > MAX_PROOF_LENGTH or proof.count(".") != 2:
        raise InvalidProof("the DPoP header is not a single JWT")
    try:
        header = jwt.get_unverified_header(proof)
    except jwt.InvalidTokenError as exc:
        raise InvalidProof("the DPoP proof is not a well-formed JWT") from exc
    if str(header.get("typ", "")).lower() != PROOF_TYP:
        raise InvalidProof("the DPoP proof's typ must be dpop+jwt")
    alg = header.get("alg")
    if alg not in algorithms or alg not in ALGORITHMS:
        raise InvalidProof(f"the DPoP proof's alg must be one of {' '.join(algorithms)}")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidProof("the DPoP proof carries no jwk")
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        # §4.3 item 7: a private key in the header (or a symmetric one) is never accepted
        raise InvalidProof("the DPoP proof's jwk must be a public key")
    if jwk.get("kty") != _KTY_OF_ALG[str(alg)] or (alg == "ES256" and jwk.get("crv") != "P-256"):
        raise InvalidProof("the DPoP proof's jwk does not match its alg")
    jkt = thumbprint(jwk)
    try:
        claims = jwt.decode(
            proof,
            _public_key(jkt, str(alg), jwk),
            algorithms=[str(alg)],
            options={"require": ["jti", "htm", "htu", "iat"], "verify_aud": False, "verify_iat": False},
        )
    except (jwt.InvalidTokenError, jwt.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        raise InvalidProof("the DPoP proof's signature or claims are not valid") from exc
    jti, htm, htu, iat = (claims.get(k) for k in ("jti", "htm", "htu", "iat"))
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
        raise InvalidProof("the DPoP proof's jti is not valid")
    if htm != method.upper():
        raise InvalidProof("the DPoP proof's htm does not match the request's method")
    expected = normalized_uri(url)
    if not isinstance(htu, str) or expected is None or normalized_uri(htu) != expected:
        raise InvalidProof("the DPoP proof's htu does not match the request's URL")
    if not isinstance(iat, int) or isinstance(iat, bool) or iat < now - MAX_AGE or iat > now + MAX_FUTURE:
        raise InvalidProof("the DPoP proof's iat is outside the accepted window")
    if access_token is not None:
        ath = claims.get("ath")
        expected_ath = access_token_hash(access_token).encode()
        if not isinstance(ath, str) or not hmac.compare_digest(ath.encode("utf-8", "replace"), expected_ath):
            raise InvalidProof("the DPoP proof's ath does not match the access token")
    if nonce_ok is not None:
        nonce = claims.get("nonce")
        if not nonce_ok(nonce if isinstance(nonce, str) else None):
            raise InvalidProof(
                "a current DPoP nonce is required: use the one in the DPoP-Nonce header", "use_dpop_nonce"
            )
    return Proof(jkt=jkt, jti=jti, iat=iat)


_KEYS: OrderedDict[tuple[str, str], Any] = OrderedDict()
_KEY_CACHE_SIZE: Final = 1024


def _public_key(jkt: str, alg: str, jwk: Mapping[str, Any]) -> Any:
    """The public key of a proof's `jwk`, remembered by thumbprint: a client sends the same key
    with every request, and building it from the JWK is a third of a check."""
    found = _KEYS.get((jkt, alg))
    if found is None:
        import jwt  # here, not at import: a function that sees no proof never loads pyjwt

        found = jwt.algorithms.get_default_algorithms()[alg].from_jwk(dict(jwk))
        if hasattr(found, "private_bytes"):
            raise InvalidProof("the DPoP proof's jwk must be a public key")
        if getattr(found, "key_size", MIN_RSA_BITS) < MIN_RSA_BITS and _KTY_OF_ALG[alg] == "RSA":
            raise InvalidProof(f"the DPoP proof's RSA key must have at least {MIN_RSA_BITS} bits")
        _KEYS[(jkt, alg)] = found
        if len(_KEYS) > _KEY_CACHE_SIZE:
            _KEYS.popitem(last=False)
    return found


class Nonces:
    """Stateless server nonces (§8, §9): the window's index and an HMAC of it under a key every
    instance derives alike, so any instance accepts what another issued, with nothing stored. A
    nonce stays valid for its window and the next, then the client is told a new one."""

    def __init__(self, key: Callable[[], bytes], *, window: int = NONCE_WINDOW) -> None:
        """`key` is called on first use (the function derives it once per cold start)."""
        self._key = key
        self._window = window

    def _mac(self, index: int) -> bytes:
        message = b"wallet-mcp/dpop-nonce\n" + index.to_bytes(8, "big")
        return hmac.new(self._key(), message, hashlib.sha256).digest()[:18]

    def current(self, now: int) -> str:
        index = now // self._window
        return b64url(index.to_bytes(8, "big") + self._mac(index))

    def valid(self, nonce: str | None, now: int) -> bool:
        if not nonce or len(nonce) > 64:
            return False
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return False
        if len(raw) != 26:
            return False
        index = int.from_bytes(raw[:8], "big")
        if index not in (now // self._window, now // self._window - 1):
            return False
        return hmac.compare_digest(raw[8:], self._mac(index))


class ReplayCache:
    """`jti`s seen by this instance within the proof window (§11.1), bounded. Per instance: a proof
    replayed to another instance within `MAX_AGE` seconds is not caught here (docs/security.md)."""

    def __init__(self, *, capacity: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity
        self._clock = clock

    def first_use(self, jkt: str, jti: str, expires_at: int, now: int) -> bool:
        """Record the proof: True the first time, False for a replay."""
        key = f"{jkt}\n{jti}"
        while self._seen:
            oldest, expiry = next(iter(self._seen.items()))
            if expiry >= now and len(self._seen) < self._capacity:
                break
            del self._seen[oldest]
        if key in self._seen and self._seen[key] >= now:
            return False
        self._seen[key] = expires_at
        self._seen.move_to_end(key)
        return True


FirstUse = Callable[[str, str, int, int], bool]
"""(jkt, jti, expires_at, now) -> True the first time the proof is seen, False for a replay."""


class DpopChecker:
    """One server's proof checking: `check_proof`, its nonces, then its replay cache — in that
    order, so a replayed proof is refused without spending anything, and a proof refused for its
    nonce does not use up its `jti`."""

    def __init__(
        self, nonces: Nonces | None, first_use: FirstUse, *, algorithms: tuple[str, ...] = ALGORITHMS
    ) -> None:
        """`nonces`: None when the server asks for none; `algorithms`: those a proof may use."""
        self._nonces = nonces
        self._first_use = first_use
        self.algorithms = algorithms

    def nonce(self, now: int) -> str | None:
        """The current server nonce, for a `DPoP-Nonce` header (None: nonces are not used)."""
        return self._nonces.current(now) if self._nonces is not None else None

    def check(
        self, proofs: list[str], *, method: str, url: str, now: int, access_token: str | None = None
    ) -> Proof:
        """`proofs`: every `DPoP` header of the request; exactly one is allowed (§4.3 item 1)."""
        if len(proofs) != 1:
            raise InvalidProof("exactly one DPoP header is required")
        nonces = self._nonces
        checked = check_proof(
            proofs[0],
            method=method,
            url=url,
            now=now,
            access_token=access_token,
            nonce_ok=(lambda nonce: nonces.valid(nonce, now)) if nonces is not None else None,
            algorithms=self.algorithms,
        )
        if not self._first_use(checked.jkt, checked.jti, checked.iat + MAX_AGE, now):
            raise InvalidProof("this DPoP proof was already used")
        return checked


class ProofSigner:
    """The client side (§4.2): a private key, its public JWK and thumbprint, and the proofs it
    signs. ES256 with an EC P-256 key (what the `wallet-mcp` command generates), or RS256/PS256
    with an RSA key."""

    def __init__(self, private_key: Any, alg: str = "ES256") -> None:
        import jwt

        if alg not in _KTY_OF_ALG:
            raise ValueError(f"unsupported DPoP algorithm {alg}")
        family = jwt.algorithms.ECAlgorithm if _KTY_OF_ALG[alg] == "EC" else jwt.algorithms.RSAAlgorithm
        self.alg = alg
        self.private_key = private_key
        self.public_jwk: dict[str, Any] = json.loads(family.to_jwk(private_key.public_key()))
        self.jkt = thumbprint(self.public_jwk)

    def __repr__(self) -> str:  # never the key
        return f"ProofSigner(alg={self.alg}, jkt={self.jkt})"

    def proof(
        self,
        method: str,
        url: str,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
        jti: str | None = None,
        iat: int | None = None,
        claims: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        """A proof for `method url` (its query and fragment left out of `htu`, §4.2), with the
        server's `nonce` and, at a resource, `ath` of `access_token`."""
        import secrets

        import jwt

        parts = urlsplit(url)
        body: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method.upper(),
            "htu": f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.query or parts.fragment else url,
            "iat": int(time.time()) if iat is None else iat,
        }
        if nonce is not None:
            body["nonce"] = nonce
        if access_token is not None:
            body["ath"] = access_token_hash(access_token)
        body.update(claims or {})
        headers = {"typ": PROOF_TYP, "jwk": self.public_jwk, **(header or {})}
        return jwt.encode(body, self.private_key, algorithm=self.alg, headers=headers)
