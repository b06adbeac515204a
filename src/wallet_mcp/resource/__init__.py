"""The protected resources' side of OAuth: one bearer pipeline for `/mcp` and `/api`."""
