"""One-off operational tools (run with `python -m tools.<name>`)."""
