"""Discovery documents: authorization-server metadata (RFC 8414) and protected-resource
metadata (RFC 9728) for the MCP server and the wallet API."""

from __future__ import annotations

from typing import Any

from wallet_mcp.config import Settings
from wallet_mcp.primitives import client_assertions, dpop
from wallet_mcp.primitives.scopes import SUPPORTED_SCOPES

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")


def authorization_server_metadata(settings: Settings) -> dict[str, Any]:
    issuer = settings.issuer
    # RFC 8414 §2: the JWS algorithms of private_key_jwt assertions (RFC 7523 §2.2); FAPI 2.0 §5.4.1
    signing = list(client_assertions.algorithms_for(settings.fapi2_profile))
    methods: tuple[str, ...] = AUTH_METHODS
    confidential: tuple[str, ...] = CONFIDENTIAL_AUTH_METHODS
    if settings.fapi2_profile:
        # FAPI 2.0 §5.3.2.1: confidential clients only, no client secrets
        methods = ("private_key_jwt",)
        confidential = tuple(m for m in confidential if not m.startswith("client_secret_"))
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "registration_endpoint": f"{issuer}/oauth/register",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "pushed_authorization_request_endpoint": f"{issuer}/oauth/par",
        "require_pushed_authorization_requests": settings.require_pushed_authorization_requests,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            # RFC 7523 §2.1, for ID-JAGs of the trusted enterprise IdPs (docs/enterprise.md)
            *([JWT_BEARER_GRANT] if settings.trusted_idps or settings.trusted_workload_issuers else []),
        ],
        "token_endpoint_auth_methods_supported": list(methods),
        "token_endpoint_auth_signing_alg_values_supported": signing,
        "revocation_endpoint_auth_methods_supported": list(methods),
        "revocation_endpoint_auth_signing_alg_values_supported": signing,
        "introspection_endpoint_auth_methods_supported": list(confidential),
        "introspection_endpoint_auth_signing_alg_values_supported": signing,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": True,
        "protected_resources": list(settings.known_resources),
        # RFC 9449 §5.1
        "dpop_signing_alg_values_supported": list(dpop.algorithms_for(settings.fapi2_profile)),
    }


def protected_resource_metadata(settings: Settings, resource: str, host: str | None = None) -> dict[str, Any]:
    """RFC 9728 §2 for one of this server's resources. Its `resource` is exactly the URL the client
    asked about (§3.3): locally, on the loopback name the request came in on (`Settings.as_addressed`)."""
    names = {
        settings.mcp_resource: "Wallet MCP server",
        settings.api_resource: "Wallet API",
    }
    return {
        "resource": settings.as_addressed(resource, host),
        "authorization_servers": [settings.issuer],
        "scopes_supported": list(SUPPORTED_SCOPES),
        "bearer_methods_supported": ["header"],
        "resource_name": names[resource],
        # RFC 9728 §2 (RFC 9449): proofs this resource accepts, and whether it takes only DPoP-bound tokens
        "dpop_signing_alg_values_supported": list(dpop.algorithms_for(settings.fapi2_profile)),
        "dpop_bound_access_tokens_required": settings.dpop_required,
    }
