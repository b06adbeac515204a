"""The OAuth 2.1 authorization server: the grant rules (`rules`) and the endpoints (`server`)."""
