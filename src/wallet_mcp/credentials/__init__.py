"""Secrets at rest: opaque tokens and client secrets stored as digests, passwords with a slow KDF."""
