"""The MCP protocol surface: tools and resources on the official SDK's low-level server, served
statelessly over Streamable HTTP behind bearer-token authentication."""

from wallet_mcp import coldstart

# the server needs the SDK's low-level modules, not the client nor the high-level MCPServer that
# the `mcp` and `mcp.server` package __init__s import (~1/4 of the SDK's import; docs/operations.md)
coldstart.defer_package_init("mcp", "mcp.server")

# The low-level server's module imports the SDK's authorization-server routes (and with them the
# authorize, token, registration and revocation handlers) at its top, for `streamable_http_app()`,
# which builds a whole Starlette app with them when given an authorization-server provider. This
# function never calls it (http.McpEndpoint serves the session manager on our own route, and the
# authorization server is ours), so the routes module stays a stand-in unless something calls one
# of its functions; then the real one loads (~7 ms of the import; docs/operations.md).
# tests/unit/test_import_weight.py fails if the SDK imports anything else from it.
SDK_AUTH_ROUTES = (
    "mcp.server.auth.routes",
    ("build_resource_metadata_url", "create_auth_routes", "create_protected_resource_routes"),
)
coldstart.defer_module(SDK_AUTH_ROUTES[0], *SDK_AUTH_ROUTES[1])
