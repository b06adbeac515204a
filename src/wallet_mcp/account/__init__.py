"""The signed-in pages: a user's connected apps (/account) and client administration (/admin)."""
