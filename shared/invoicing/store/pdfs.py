"""Invoice PDFs: a render requested, a render recorded, and the renders that may have been lost.

The sparse `pdf_pending` index (pdf_pk = PDFPENDING#{shard}) holds a document from the moment its PDF
is requested until the worker records it; the repair job reads it (docs/data-model.md, pattern 21).
"""

from __future__ import annotations

from dataclasses import dataclass

from invoicing.errors import NotFound
from invoicing.store import keys
from invoicing.store.models import TableItem


class InvoiceNotOpenForPdf(NotFound):
    code = "invoice_not_found"

    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"invoice {invoice_id} is a draft; drafts have no PDF")


@dataclass(frozen=True)
class PendingPdf:
    """A document whose render job may have been lost: an invoice, or one of its credit notes."""

    invoice_id: str
    credit_note_id: str | None = None


class PdfRecords:
    """The PDF side of the invoice header, mixed into the Repository. Its writes (a render
    requested, a render recorded) are typed writes of the unit of work (store/writes/invoices.py)."""

    def pending_pdfs(self, requested_before: str, limit: int = 500) -> list[PendingPdf]:
        """Documents whose PDF was requested before `requested_before` and is not rendered yet:
        invoices (sk INVOICE) and credit notes (sk CREDITNOTE#{id}), both in the invoice's collection."""
        out: list[PendingPdf] = []
        for shard in range(keys.PDF_PENDING_SHARDS):
            for item in TableItem.pdf_pending.query(
                keys.pdf_pending_shard(shard), TableItem.pdf_sk < requested_before, limit=limit
            ):
                invoice_id = item.pk.removeprefix("INVOICE#")
                if item.sk == keys.INVOICE_SK:
                    out.append(PendingPdf(invoice_id))
                elif item.sk.startswith("CREDITNOTE#"):
                    out.append(PendingPdf(invoice_id, credit_note_id=item.sk.removeprefix("CREDITNOTE#")))
        return out[:limit]
