"""A cold-start floor (bench/cold.py): the SDK modules any stateless Streamable HTTP server built on
the SDK's low-level `Server` loads (the server, its request context, the transport's session
manager), as the MCP function loads them (`wallet_mcp.mcp_server` defers the SDK's package
`__init__`s, the collector rests). No tool, no token check, no AWS client: what is left of the MCP
function's import when everything of ours is taken away."""

from wallet_mcp import coldstart  # isort: skip
from wallet_mcp import mcp_server  # noqa: F401  # isort: skip  (defers mcp/__init__, mcp/server/__init__)

from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

coldstart.loaded()
assert Server and ServerRequestContext and StreamableHTTPSessionManager
