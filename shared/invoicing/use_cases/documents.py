"""Invoice PDFs: enqueue a render, render it (worker), hand out a short-lived download link.

enqueue_render — after finalize commits (never inside its transaction). If SQS refuses, the invoice
  stays `pdf_status = pending` on the sparse `pdf_pending` index and `repair_pending_pdfs` (scheduled)
  re-enqueues it, so no invoice is left without a PDF. Credit notes are on the same index and
  repaired by the same job.
render_invoice_pdf — the worker. Loads the frozen invoice, renders `invoice.html` (Jinja2, autoescape),
  prints it with Chromium and puts it to S3 at invoices/{customer_id}/{invoice_number}.pdf (SSE,
  application/pdf). Then one conditional transaction sets pdf_s3_key / pdf_status = rendered and
  writes the `invoice.pdf_rendered` event. A redelivered job overwrites the same key with the same
  content and finds its job id already recorded: harmless.
request_render — POST /invoices/{id}/pdf: re-render on request (e.g. after a template change).
pdf_download — GET /invoices/{id}/pdf: a pre-signed GET valid for settings.pdf_url_ttl_seconds.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from invoicing import clock
from invoicing.domain.events import Actor
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.errors import Conflict, NotFound
from invoicing.ids import new_id
from invoicing.observability import logger, metrics
from invoicing.settings import Settings
from invoicing.use_cases.services import Services, new_event

if TYPE_CHECKING:  # Jinja2 and Babel load only where a document is built, never on the API's cold start
    from invoicing.documents import InvoiceDocument, TaxBreakdownRow

RENDER_JOB_KIND = "invoice_pdf"


def pdf_key(invoice: Invoice) -> str:
    return f"invoices/{invoice.customer_id}/{invoice.invoice_number}.pdf"


def _percent_label(pct: Decimal) -> str:
    text = f"{pct.normalize():f}"
    return f"{text}%"


def tax_breakdown(invoice: Invoice) -> list[TaxBreakdownRow]:
    """One row per (rate, percentage, inclusive): the taxable base and the tax, from the frozen lines."""
    from invoicing.documents import TaxBreakdownRow

    rows: OrderedDict[tuple[str, Decimal, bool], list[int]] = OrderedDict()
    for line in invoice.lines:
        tax = line.tax
        if tax is None or (tax.tax_cents == 0 and tax.percentage == 0 and not tax.tax_rate_id):
            continue
        label = tax.display_name or "Tax"
        key = (label, tax.percentage, tax.inclusive)
        base = line.amount_cents - tax.tax_cents if tax.inclusive else line.amount_cents
        acc = rows.setdefault(key, [0, 0])
        acc[0] += base
        acc[1] += tax.tax_cents
    return [
        TaxBreakdownRow(
            label=f"{label} {_percent_label(pct)}",
            rate_percent=pct,
            inclusive=inclusive,
            taxable_cents=base,
            tax_cents=tax,
        )
        for (label, pct, inclusive), (base, tax) in rows.items()
    ]


def invoice_document(invoice: Invoice, settings: Settings, payment_url: str | None = None) -> InvoiceDocument:
    from invoicing.documents import DocumentLine, InvoiceDocument, Party

    snap = invoice.customer
    customer = (
        Party(name=snap.name, email=snap.email, address_lines=snap.address.lines(), tax_id=snap.tax_id)
        if snap
        else Party(name=invoice.customer_id)
    )
    seller = Party(
        name=settings.seller_name,
        email=settings.seller_email,
        address_lines=[p.strip() for p in settings.seller_address.split(",") if p.strip()],
        tax_id=settings.seller_tax_id,
    )
    issue_day = date.fromisoformat(invoice.finalized_at[:10]) if invoice.finalized_at else None
    lines = [
        DocumentLine(
            description=ln.description,
            quantity=ln.quantity,
            unit_amount_cents=ln.unit_amount_cents,
            amount_cents=ln.amount_cents,
            tax_rate_label=(
                f"{ln.tax.display_name} {_percent_label(ln.tax.percentage)}".strip()
                if ln.tax and (ln.tax.tax_rate_id or ln.tax.percentage)
                else None
            ),
            tax_cents=ln.tax.tax_cents if ln.tax else 0,
        )
        for ln in invoice.lines
    ]
    amount_due = invoice.amount_remaining_cents if not invoice.is_draft else invoice.total_cents
    return InvoiceDocument(
        kind="invoice",
        number=invoice.invoice_number,
        status=invoice.status.value,
        currency=invoice.currency,
        locale=snap.locale if snap else "en_US",
        issue_date=issue_day,
        due_date=invoice.due_date,
        seller=seller,
        customer=customer,
        lines=lines,
        tax_breakdown=tax_breakdown(invoice),
        subtotal_cents=invoice.subtotal_cents,
        tax_cents=invoice.tax_cents,
        total_cents=invoice.total_cents,
        amount_paid_cents=invoice.amount_paid_cents,
        amount_due_cents=amount_due,
        payment_url=payment_url if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) else None,
        memo=invoice.memo or None,
        logo_url=settings.seller_logo_url or None,
    )


def render_job(invoice: Invoice, payment_url: str | None = None) -> dict[str, Any]:
    job: dict[str, Any] = {
        "kind": RENDER_JOB_KIND,
        "job_id": new_id("job"),
        "invoice_id": invoice.id,
        "requested_at": invoice.pdf_requested_at or clock.iso(clock.now()),
    }
    if payment_url:
        job["payment_url"] = payment_url  # the queue is encrypted; the worker never logs bodies
    return job


def enqueue_render(svc: Services, invoice: Invoice, payment_url: str | None = None) -> bool:
    """Best effort after the commit: a failure leaves the invoice pending for the repair job."""
    try:
        svc.render_queue.send(render_job(invoice, payment_url))
    except Exception:  # any SQS/network failure: the repair path picks it up
        logger.exception("render job not enqueued; left pending for repair", extra={"invoice_id": invoice.id})
        metrics.add_metric(name="RenderEnqueueFailures", unit="Count", value=1)
        return False
    return True


def request_render(svc: Services, actor: Actor, invoice_id: str) -> Invoice:
    """Re-render on request. Idempotent in effect: any number of requests end in one current PDF."""
    invoice = svc.repo.request_pdf(invoice_id, clock.iso(clock.now()))
    enqueue_render(svc, invoice)
    logger.info("pdf render requested", extra={"invoice_id": invoice_id, "actor": actor.principal})
    return invoice


def render_invoice_pdf(svc: Services, job: dict[str, Any], *, render: Any = None) -> str:
    """The worker's unit of work. Returns "rendered", "already_recorded" or "skipped_draft".
    Any exception means: retry (the message returns to the queue, then the DLQ).
    Jobs of kind `credit_note_pdf` are dispatched to use_cases/credit_notes."""
    if job.get("kind") == "credit_note_pdf":
        from invoicing.use_cases.credit_notes import render_credit_note_pdf

        return render_credit_note_pdf(svc, job, render=render)
    if render is None:
        from invoicing.adapters.chromium import render_pdf as render
    from invoicing.documents import document_footer_text, render_document_html

    invoice = svc.repo.get_invoice(job["invoice_id"])
    if invoice.is_draft:
        logger.warning("render job for a draft dropped", extra={"invoice_id": invoice.id})
        return "skipped_draft"
    doc = invoice_document(invoice, svc.settings, job.get("payment_url"))
    pdf = render(render_document_html(doc), footer_text=document_footer_text(doc))
    key = pdf_key(invoice)
    svc.documents.put_pdf(key, pdf, f"{invoice.invoice_number}.pdf")
    now = clock.iso(clock.now())
    event = new_event(
        invoice.id,
        "invoice.pdf_rendered",
        Actor.system("render_pdf"),
        now,
        data={"pdf_s3_key": key, "bytes": len(pdf), "job_id": job["job_id"]},
    )
    recorded = svc.repo.mark_pdf_rendered(
        invoice_id=invoice.id,
        key=key,
        job_id=job["job_id"],
        requested_at=job.get("requested_at", now),
        at=now,
        event=event,
    )
    logger.info(
        "pdf rendered",
        extra={
            "invoice_id": invoice.id,
            "customer_id": invoice.customer_id,
            "bytes": len(pdf),
            "redelivery": not recorded,
        },
    )
    return "rendered" if recorded else "already_recorded"


def pdf_download(svc: Services, invoice_id: str) -> tuple[str, str]:
    invoice = svc.repo.get_invoice_header(invoice_id)
    if invoice.is_draft:
        raise NotFound(f"invoice {invoice_id} is a draft; drafts have no PDF", code="pdf_not_found")
    if not invoice.pdf_s3_key:
        raise Conflict("the PDF is still being rendered; retry in a few seconds", code="pdf_not_ready")
    ttl = svc.settings.pdf_url_ttl_seconds
    url = svc.documents.presigned_get(invoice.pdf_s3_key, ttl)
    return url, clock.iso(clock.now() + timedelta(seconds=ttl))


def repair_pending_pdfs(svc: Services, *, older_than_seconds: int = 600) -> int:
    """Re-enqueue renders (invoices and credit notes) requested more than `older_than_seconds` ago
    and still not rendered."""
    cutoff = clock.iso(clock.now() - timedelta(seconds=older_than_seconds))
    count = 0
    for pending in svc.repo.pending_pdfs(cutoff):
        if pending.credit_note_id is not None:
            from invoicing.use_cases import credit_notes

            note = credit_notes.credit_note_store(svc).get_pending_pdf(pending.invoice_id, pending.credit_note_id)
            if note is not None and credit_notes.enqueue_render(svc, note):
                count += 1
            continue
        try:
            invoice = svc.repo.get_invoice_header(pending.invoice_id)
        except NotFound:
            continue
        if enqueue_render(svc, invoice):
            count += 1
    logger.info("pending pdfs re-enqueued", extra={"count": count})
    return count
