"""Render jobs on the render queue: one message per document, sent after the commit that needs it.

Best effort by design: a failure leaves the document `pdf_status = pending` on the sparse
`pdf_pending` index, and the scheduled repair job (use_cases/documents.repair_pending_pdfs) sends
the job again, so no issued document stays without a PDF.
"""

from __future__ import annotations

from typing import Any, Protocol

from invoicing import clock
from invoicing.domain.credit import CreditNote
from invoicing.domain.invoice import Invoice
from invoicing.ids import new_id
from invoicing.observability import logger, metrics

INVOICE_PDF = "invoice_pdf"
CREDIT_NOTE_PDF = "credit_note_pdf"


class Queue(Protocol):
    def send(self, body: dict[str, Any]) -> object: ...


def invoice_job(invoice: Invoice) -> dict[str, Any]:
    return {
        "kind": INVOICE_PDF,
        "job_id": new_id("job"),
        "invoice_id": invoice.id,
        "requested_at": invoice.pdf_requested_at or clock.iso(clock.now()),
    }


def credit_note_job(note: CreditNote) -> dict[str, Any]:
    return {"kind": CREDIT_NOTE_PDF, "job_id": new_id("job"), "credit_note_id": note.id}


def enqueue_invoice_render(queue: Queue, invoice: Invoice) -> bool:
    try:
        queue.send(invoice_job(invoice))
    except Exception:  # any SQS/network failure: the repair path picks it up
        logger.exception("render job not enqueued; left pending for repair", extra={"invoice_id": invoice.id})
        metrics.add_metric(name="RenderEnqueueFailures", unit="Count", value=1)
        return False
    return True


def enqueue_credit_note_render(queue: Queue, note: CreditNote) -> bool:
    try:
        queue.send(credit_note_job(note))
    except Exception:  # any SQS/network failure: the PDF can be re-requested, and repair re-sends it
        logger.exception("credit note render job not enqueued", extra={"credit_note_id": note.id})
        metrics.add_metric(name="RenderEnqueueFailures", unit="Count", value=1)
        return False
    return True
