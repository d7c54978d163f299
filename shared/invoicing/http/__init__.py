"""HTTP glue shared by the API-facing functions: the one error map, actor extraction, idempotency."""
