"""wallet_mcp: the shared code of every function (shipped as one Lambda layer).

Packages by concern: `oauth` (the authorization server's rules), `tokens` (JWT signing and
verification), `credentials` (secrets at rest), `storage` (DynamoDB access), `mcp_server`
(the MCP protocol surface), `web` (what every FastAPI app shares).
"""
