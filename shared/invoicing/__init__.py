"""The invoice service's shared package: domain rules, use cases, the store and adapters."""
