"""Response models shared by the API and the webhook payloads."""
