"""The wallet domain: accounts and transactions in integer minor units, stored in one DynamoDB table,
used by both the Backend API and the MCP server (never over HTTP)."""
