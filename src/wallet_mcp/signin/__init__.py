"""Signing a person in: password and sessions, upstream OpenID providers, and the one CSRF scheme."""
