"""Access tokens: RS256 JWTs (RFC 9068; PS256 under the FAPI 2.0 profile) signed in KMS, verified
locally against cached public keys."""
