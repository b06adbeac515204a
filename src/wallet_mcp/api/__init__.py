"""The wallet Backend API: REST over the wallet domain, for tokens issued for `<issuer>/api`.

`auth` authenticates (RFC 6750 bearer tokens, per-route scopes), `schemas` parses requests and
describes responses, `routes` maps HTTP onto `WalletService`, `errors` renders what they raise.
"""
