"""The MCP protocol surface: tools and resources on the official SDK's low-level server, served
statelessly over Streamable HTTP behind bearer-token authentication."""

from wallet_mcp import coldstart

# the server needs the SDK's low-level modules, not the client nor the high-level MCPServer that
# the `mcp` and `mcp.server` package __init__s import (~1/4 of the SDK's import; docs/operations.md)
coldstart.defer_package_init("mcp", "mcp.server")
