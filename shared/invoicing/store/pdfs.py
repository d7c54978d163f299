"""Invoice PDFs: a render requested, a render recorded, and the renders that may have been lost.

The sparse `pdf_pending` index (pdf_pk = PDFPENDING#{shard}) holds a document from the moment its PDF
is requested until the worker records it; the repair job reads it (docs/data-model.md, pattern 21).
"""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.errors import NotFound
from invoicing.store import keys
from invoicing.store.mapping import event_to_item
from invoicing.store.models import InvoiceItem, TableItem
from invoicing.store.transaction import Transaction, is_condition_failure


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
    """The PDF side of the invoice header (mixed into the Repository, which provides the two below)."""

    def get_invoice_header(self, invoice_id: str) -> Invoice:
        raise NotImplementedError

    def transaction(self) -> Transaction:
        raise NotImplementedError

    def request_pdf(self, invoice_id: str, at: str) -> Invoice:
        """Mark a (re-)render as requested: `pending` unless a PDF already exists (the old one stays
        downloadable until the new one replaces it), and put the invoice on the pending index."""
        item = InvoiceItem(*keys.header_key(invoice_id))
        try:
            item.update(
                actions=[
                    InvoiceItem.pdf_requested_at.set(at),
                    InvoiceItem.pdf_status.set(InvoiceItem.pdf_status | "pending"),
                    InvoiceItem.pdf_pk.set(keys.pdf_pending_pk(invoice_id)),
                    InvoiceItem.pdf_sk.set(f"{at}#{invoice_id}"),
                ],
                condition=TableItem.pk.exists() & (InvoiceItem.status != InvoiceStatus.DRAFT.value),
            )
        except UpdateError as exc:
            if is_condition_failure(exc):
                self.get_invoice_header(invoice_id)
                raise InvoiceNotOpenForPdf(invoice_id) from exc
            raise
        return self.get_invoice_header(invoice_id)

    def mark_pdf_rendered(
        self, *, invoice_id: str, key: str, job_id: str, requested_at: str, at: str, event: InvoiceEvent
    ) -> bool:
        """Record the rendered PDF and its audit event together. Returns False when this job was
        already recorded (a redelivery): the condition on the job id makes the write happen once.
        The pending marker is cleared only if no newer render was requested meanwhile."""
        actions: list[Action] = [
            InvoiceItem.pdf_status.set("rendered"),
            InvoiceItem.pdf_s3_key.set(key),
            InvoiceItem.pdf_job_id.set(job_id),
            InvoiceItem.pdf_rendered_at.set(at),
        ]
        header = self.get_invoice_header(invoice_id)
        if header.pdf_requested_at is None or header.pdf_requested_at <= requested_at:
            actions += [InvoiceItem.pdf_pk.remove(), InvoiceItem.pdf_sk.remove()]
        condition = (
            TableItem.pk.exists()
            & (InvoiceItem.status != InvoiceStatus.DRAFT.value)
            & (InvoiceItem.pdf_job_id.does_not_exist() | (InvoiceItem.pdf_job_id != job_id))
        )
        try:
            with self.transaction() as tx:
                tx.update(InvoiceItem(*keys.header_key(invoice_id)), actions=actions, condition=condition)
                tx.save(event_to_item(event))
        except TransactWriteError as exc:
            if keys.header_key(invoice_id) in tx.failed(exc):
                return False
            raise
        return True

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
