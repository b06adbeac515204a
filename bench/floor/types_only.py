"""A cold-start floor (bench/cold.py): the MCP protocol's types as the SDK's server loads them,
both revisions' models (`mcp_types.methods`), with the collector paused as our functions pause it
(`wallet_mcp.coldstart`). Nothing of ours beyond that pause."""

from wallet_mcp import coldstart  # isort: skip

import mcp_types
import mcp_types.methods  # what mcp.server.connection imports

coldstart.loaded()
assert mcp_types.Tool
