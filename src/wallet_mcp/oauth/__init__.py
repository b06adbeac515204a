"""The OAuth 2.1 authorization server: pure rules, one module per concern or endpoint."""
