"""Access tokens: RS256 JWTs (RFC 9068) signed in KMS, verified locally against cached public keys."""
