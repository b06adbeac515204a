"""DynamoDB access: one module per table, records as frozen dataclasses (docs/storage.md)."""
