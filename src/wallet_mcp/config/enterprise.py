"""The enterprise identity providers whose Identity Assertion JWT Authorization Grants (ID-JAGs,
draft-ietf-oauth-identity-assertion-authz-grant; the MCP extension
`io.modelcontextprotocol/enterprise-managed-authorization`) this server accepts, parsed from
configuration (docs/enterprise.md).

`TRUSTED_ENTERPRISE_IDPS` (the template's `TrustedEnterpriseIdps`) is a JSON list, one object per
provider:

    {"id": "acme", "name": "Acme Corp", "issuer": "https://acme.okta.com",
     "jwks_uri": "https://acme.okta.com/oauth2/v1/keys",
     "client_ids": ["mcp-demo-client"], "subject": "email",
     "scopes": "mcp:tools:list mcp:tools:call wallet:accounts:read"}

- `client_ids`: the clients (registered here) the IdP may issue grants to; an ID-JAG for another
  client is refused whatever it says.
- `subject`: how the ID-JAG's subject becomes a wallet user: `sub` (the IdP's `sub` is the wallet
  login name), `email` (its `email` claim, with `email_verified: true`, is exactly one user's
  verified address) or `link` (an identity link for (`iss`, `sub`), as an upstream sign-in through
  the same issuer writes it).
- `scopes`: the most the IdP may grant; an ID-JAG asking for more is narrowed to it.

Checked at cold start like the upstream providers (`config.upstream`): https only, plain http on a
loopback host only with the development switch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final, Literal

from wallet_mcp.config.upstream import is_allowed_url

MAX_IDPS: Final = 8
SubjectMapping = Literal["sub", "email", "link"]

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 scope-token
_KNOWN_KEYS: Final = frozenset({"id", "name", "issuer", "jwks_uri", "client_ids", "subject", "scopes"})


class EnterpriseIdpConfigError(ValueError):
    """TRUSTED_ENTERPRISE_IDPS is malformed; the message says which provider and why."""


@dataclass(frozen=True, slots=True)
class TrustedIdp:
    id: str
    """Audit and admin-page name, and the `idp` claim of the access tokens its grants give."""
    name: str
    """Shown to people: "granted by <name>"."""
    issuer: str
    """The `iss` its ID-JAGs carry, compared exactly."""
    jwks_uri: str
    client_ids: frozenset[str]
    subject: SubjectMapping
    scopes: tuple[str, ...]


def parse_trusted_idps(raw: str, *, allow_loopback: bool) -> tuple[TrustedIdp, ...]:
    """The providers in `raw` (JSON); EnterpriseIdpConfigError for any mistake."""
    if not raw.strip():
        return ()
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise EnterpriseIdpConfigError("TRUSTED_ENTERPRISE_IDPS is not valid JSON") from exc
    if not isinstance(document, list):
        raise EnterpriseIdpConfigError("TRUSTED_ENTERPRISE_IDPS must be a JSON list")
    if len(document) > MAX_IDPS:
        raise EnterpriseIdpConfigError(f"at most {MAX_IDPS} trusted enterprise identity providers")
    found: list[TrustedIdp] = []
    for index, entry in enumerate(document):
        idp = _idp(entry, index, allow_loopback=allow_loopback)
        if any(i.id == idp.id for i in found):
            raise EnterpriseIdpConfigError(f"enterprise IdP id {idp.id!r} is used twice")
        if any(i.issuer == idp.issuer for i in found):
            raise EnterpriseIdpConfigError(f"enterprise IdP issuer {idp.issuer!r} is configured twice")
        found.append(idp)
    return tuple(found)


def _idp(entry: object, index: int, *, allow_loopback: bool) -> TrustedIdp:
    if not isinstance(entry, dict):
        raise EnterpriseIdpConfigError(f"enterprise IdP #{index + 1} must be a JSON object")
    label = (
        f"enterprise IdP {entry['id']!r}"
        if isinstance(entry.get("id"), str)
        else f"enterprise IdP #{index + 1}"
    )

    def fail(message: str) -> EnterpriseIdpConfigError:
        return EnterpriseIdpConfigError(f"{label}: {message}")

    unknown = sorted(set(entry) - _KNOWN_KEYS)
    if unknown:
        raise fail(f"unknown setting {unknown[0]!r}")
    idp_id = entry.get("id")
    if not isinstance(idp_id, str) or not _ID.match(idp_id):
        raise fail("id must be 1-32 of a-z, 0-9 and '-', starting with a letter or digit")
    name = entry.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 60 or not name.isprintable():
        raise fail("name must be 1-60 printable characters")
    https = "an https URL" + (" (or http on loopback)" if allow_loopback else "")
    issuer = entry.get("issuer")
    if not isinstance(issuer, str) or not is_allowed_url(issuer, allow_loopback=allow_loopback):
        raise fail(f"issuer must be {https} without query or fragment")
    jwks_uri = entry.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not is_allowed_url(
        jwks_uri, allow_loopback=allow_loopback, allow_query=True
    ):
        raise fail(f"jwks_uri must be {https}")
    client_ids = entry.get("client_ids")
    if (
        not isinstance(client_ids, list)
        or not client_ids
        or not all(isinstance(c, str) and 1 <= len(c) <= 512 and c.isprintable() for c in client_ids)
    ):
        raise fail("client_ids must be a non-empty list of client ids")
    subject = entry.get("subject")
    if subject not in ("sub", "email", "link"):
        raise fail("subject must be 'sub', 'email' or 'link'")
    scopes = entry.get("scopes")
    if (
        not isinstance(scopes, str)
        or not scopes.split()
        or not all(_SCOPE_TOKEN.match(s) for s in scopes.split())
    ):
        raise fail("scopes must be a space-separated list of the scopes the IdP may grant")
    return TrustedIdp(
        id=idp_id,
        name=name.strip(),
        issuer=issuer,
        jwks_uri=jwks_uri,
        client_ids=frozenset(client_ids),
        subject=subject,
        scopes=tuple(dict.fromkeys(scopes.split())),
    )


# --- workload identity (SEP-1933: a workload's JWT as an RFC 7523 §2.1 grant) --------------------

_WORKLOAD_KEYS: Final = frozenset({"id", "name", "issuer", "jwks_uri", "audience", "subjects", "scopes"})


@dataclass(frozen=True, slots=True)
class TrustedWorkloadIssuer:
    """An issuer of workload identity tokens (a CI system's OIDC tokens, a cluster's service-account
    tokens) whose JWTs, presented with the `jwt-bearer` grant, authenticate a machine client."""

    id: str
    name: str
    issuer: str
    jwks_uri: str
    audience: str | None
    """The `aud` its tokens must name; None: this server's issuer."""
    subjects: dict[str, str]
    """Exact `sub` → the client id (registered here) a workload with that subject acts as."""
    scopes: tuple[str, ...]


def parse_workload_issuers(
    raw: str, *, allow_loopback: bool, enterprise: tuple[TrustedIdp, ...] = ()
) -> tuple[TrustedWorkloadIssuer, ...]:
    """`TRUSTED_WORKLOAD_ISSUERS` (JSON), e.g.

    [{"id": "github", "name": "GitHub Actions",
      "issuer": "https://token.actions.githubusercontent.com",
      "jwks_uri": "https://token.actions.githubusercontent.com/.well-known/jwks",
      "audience": "https://wallet.example.com",
      "subjects": {"repo:acme/agent:ref:refs/heads/main": "mcp_Xq2…"},
      "scopes": "mcp:tools:list mcp:tools:call wallet:accounts:read"}]
    """
    if not raw.strip():
        return ()
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise EnterpriseIdpConfigError("TRUSTED_WORKLOAD_ISSUERS is not valid JSON") from exc
    if not isinstance(document, list) or len(document) > MAX_IDPS:
        raise EnterpriseIdpConfigError(f"TRUSTED_WORKLOAD_ISSUERS must be a JSON list of at most {MAX_IDPS}")
    found: list[TrustedWorkloadIssuer] = []
    taken = {idp.issuer for idp in enterprise}
    for index, entry in enumerate(document):
        workload = _workload(entry, index, allow_loopback=allow_loopback)
        if workload.issuer in taken or any(w.id == workload.id for w in found):
            raise EnterpriseIdpConfigError(f"workload issuer {workload.id!r}: its id or issuer is used twice")
        taken.add(workload.issuer)
        found.append(workload)
    return tuple(found)


def _workload(entry: object, index: int, *, allow_loopback: bool) -> TrustedWorkloadIssuer:
    if not isinstance(entry, dict):
        raise EnterpriseIdpConfigError(f"workload issuer #{index + 1} must be a JSON object")
    unknown = sorted(set(entry) - _WORKLOAD_KEYS)
    # the shared fields are checked as an enterprise IdP's are
    base = _idp(
        {
            **{k: v for k, v in entry.items() if k in ("id", "name", "issuer", "jwks_uri", "scopes")},
            "client_ids": ["-"],
            "subject": "sub",
        },
        index,
        allow_loopback=allow_loopback,
    )
    label = f"workload issuer {base.id!r}"
    if unknown:
        raise EnterpriseIdpConfigError(f"{label}: unknown setting {unknown[0]!r}")
    audience = entry.get("audience")
    if audience is not None and (not isinstance(audience, str) or not 1 <= len(audience) <= 2000):
        raise EnterpriseIdpConfigError(f"{label}: audience must be a string")
    subjects = entry.get("subjects")
    if (
        not isinstance(subjects, dict)
        or not subjects
        or not all(
            isinstance(s, str) and 1 <= len(s) <= 512 and isinstance(c, str) and 1 <= len(c) <= 512
            for s, c in subjects.items()
        )
    ):
        raise EnterpriseIdpConfigError(f"{label}: subjects must map each exact sub to a client id")
    return TrustedWorkloadIssuer(
        id=base.id,
        name=base.name,
        issuer=base.issuer,
        jwks_uri=base.jwks_uri,
        audience=audience,
        subjects=dict(subjects),
        scopes=base.scopes,
    )
