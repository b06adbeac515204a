"""Pure protocol pieces every layer above may use: OAuth errors, PKCE, redirect URIs, scopes,
resource indicators, bearer challenges, form parsing, and the one outbound HTTP fetcher."""
