"""The MCP protocol surface: tools and resources on the official SDK's low-level server, served
statelessly over Streamable HTTP behind bearer-token authentication."""
