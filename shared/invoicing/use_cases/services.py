"""Kept for the handlers that import the composition root from here; it lives in invoicing.services.
Use cases import `invoicing.services` (no use-case module imports another)."""

from invoicing.domain.events import new_event
from invoicing.services import Services, build_services, get_services

__all__ = ["Services", "build_services", "get_services", "new_event"]
