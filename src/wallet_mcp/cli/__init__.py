"""`wallet-mcp`: the command-line side of the wallet for people and local MCP clients.

`serve-stdio` bridges the wallet's seven MCP tools over stdio to the Backend API, `login`/`logout`
hold a person's OAuth tokens, `tools`/`call` talk to the remote MCP server, and `admin` manages
users and personal access tokens in the stack's tables. One module per concern; `main.py` only
dispatches. Logs go to stderr (stdout is the MCP channel or the command's answer) and never carry
a token or a secret.
"""
