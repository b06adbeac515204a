"""The `wallet-mcp` command: the stdio bridge, sign-in, the remote client and the admin commands."""
