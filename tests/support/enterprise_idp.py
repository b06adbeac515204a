"""A small enterprise identity provider for the flow tests: it serves its JWK Set over plain http
on loopback and signs Identity Assertion JWT Authorization Grants (ID-JAGs) with its own key, as
Okta, Entra or Keycloak would after an RFC 8693 token exchange. Several issuers can share one
server: each is a path (`http://127.0.0.1:<port>/<name>`) with its own key."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ID_JAG_TYP = "oauth-id-jag+jwt"


@dataclass
class Issuer:
    name: str
    base: str
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(65537, 2048)
    )
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def issuer(self) -> str:
        return f"{self.base}/{self.name}"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def algorithm(self) -> str:
        return "RS256" if isinstance(self.key, rsa.RSAPrivateKey) else "ES256"

    def jwks(self) -> dict[str, Any]:
        algorithm = (
            jwt.algorithms.RSAAlgorithm
            if isinstance(self.key, rsa.RSAPrivateKey)
            else jwt.algorithms.ECAlgorithm
        )
        public = json.loads(algorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": self.algorithm}]}

    def claims(self, *, audience: str, resource: str, client_id: str, subject: str, **extra: Any) -> dict:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "resource": resource,
            "client_id": client_id,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 300,
            **extra,
        }

    def sign(self, claims: dict[str, Any], *, typ: str = ID_JAG_TYP, **header: Any) -> str:
        return jwt.encode(
            claims, self.key, algorithm=self.algorithm, headers={"typ": typ, "kid": self.kid, **header}
        )

    def id_jag(self, **claims: Any) -> str:
        """An ID-JAG as the IdP's token exchange would answer it (draft §4.3)."""
        return self.sign(self.claims(**claims))


@dataclass
class EnterpriseIdp:
    base: str
    issuers: dict[str, Issuer]
    hits: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Issuer:
        return self.issuers[name]


@contextmanager
def running_idp(port: int, names: tuple[str, ...]) -> Iterator[EnterpriseIdp]:
    base = f"http://127.0.0.1:{port}"
    idp = EnterpriseIdp(base=base, issuers={name: Issuer(name, base) for name in names})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name, _, rest = self.path.strip("/").partition("/")
            issuer = idp.issuers.get(name)
            if issuer is None or rest != "jwks":
                self.send_error(404)
                return
            idp.hits[name] = idp.hits.get(name, 0) + 1
            body = json.dumps(issuer.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield idp
    finally:
        server.shutdown()
