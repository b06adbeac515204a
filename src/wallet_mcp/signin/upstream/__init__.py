"""Signing in through an upstream OpenID provider (Google, Microsoft, any OpenID Connect provider).

Only the configuration (`config.upstream`) is imported at cold start; the rest (HTTP, JWT
validation, secrets) is imported on the first request to an upstream route, so a password sign-in
pays nothing for it. docs/identity-providers.md describes the configuration and the rules.
"""
