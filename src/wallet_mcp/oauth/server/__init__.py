"""The authorization server's endpoints, one handler module per endpoint (docs/architecture.md)."""
