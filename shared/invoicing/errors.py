"""Domain errors. Each carries a stable machine code and the HTTP status the API maps it to.

The error map in the API turns any `InvoicingError` into `{"error": {"code", "message"}}`; use cases
and the store raise these and never HTTP types.
"""

from __future__ import annotations


class InvoicingError(Exception):
    code = "invoicing_error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class NotFound(InvoicingError):
    code = "not_found"
    http_status = 404


class Forbidden(InvoicingError):
    """The caller is authenticated but its API key lacks the scope the operation needs."""

    code = "forbidden"
    http_status = 403


class ValidationFailed(InvoicingError):
    code = "validation_error"
    http_status = 422


class EInvoiceTermsMissing(ValidationFailed):
    """The document cannot be an e-invoice in the customer's format: `problems` lists each missing or
    wrong business term ({"term", "rule", "message"}, domain/einvoicing.py)."""

    code = "einvoice_terms_missing"

    def __init__(self, message: str, problems: list[dict[str, str]]) -> None:
        super().__init__(message, details={"problems": problems})


class Conflict(InvoicingError):
    code = "conflict"
    http_status = 409


class InvalidTransition(Conflict):
    code = "invalid_transition"


class InvoiceNotDraft(Conflict):
    code = "invoice_not_draft"


class InvoiceNotOpen(Conflict):
    code = "invoice_not_open"


class ConcurrentModification(Conflict):
    """The item changed between read and write; the caller may retry."""

    code = "concurrent_modification"


class ServiceUnavailable(InvoicingError):
    code = "service_unavailable"
    http_status = 503


class StaleInvoice(ConcurrentModification):
    """The invoice was written by someone else between our read and our commit: re-read and decide."""


class StaleBalance(ConcurrentModification):
    """The customer's balance moved since it was read (another finalization or credit note spent or
    added to it): re-read the customer and decide again."""


class WriteConflict(ConcurrentModification):
    """DynamoDB cancelled the transaction because another one was writing one of its items at the
    same moment (`TransactionConflict`): nothing was written, the same decision may be retried."""


class SequenceConflict(Conflict):
    code = "sequence_conflict"

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"another finalization for customer {customer_id} took the number; retry")


class NumberTaken(SequenceConflict):
    """Only the counter moved: the next number can be taken at once, nothing else is stale."""
