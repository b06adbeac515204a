"""What every function's FastAPI app shares: construction, error rendering, response headers."""
