"""Invoice PDFs: enqueue a render, render it (worker), hand out a short-lived download link.

enqueue_render — after finalize commits (never inside its transaction). If SQS refuses, the invoice
  stays `pdf_status = pending` on the sparse `pdf_pending` index and `repair_pending_pdfs` (scheduled)
  re-enqueues it, so no invoice is left without a PDF. Credit notes are on the same index and
  repaired by the same job.
render_invoice_pdf — the worker. Loads the frozen invoice, renders `invoice.html` (Jinja2, autoescape),
  prints it with Chromium and puts it to S3 at invoices/{customer_id}/{invoice_number}.pdf (SSE,
  application/pdf). For a customer who receives e-invoices it first puts the XML in the customer's
  format at invoices/{customer_id}/{invoice_number}.xml, and for cii and xrechnung customers the PDF
  is Factur-X (the CII embedded, PDF/A-3; adapters/facturx.py). Then one conditional transaction sets
  pdf_s3_key / pdf_status = rendered, bumps the version (conditioned on the version read; re-read and
  written again when the invoice moved) and writes the `invoice.pdf_rendered` event. A redelivered
  job overwrites the same key with the same content and finds its job id already recorded: harmless.
request_render — POST /invoices/{id}/pdf: re-render on request (e.g. after a template change).
pdf_download — GET /invoices/{id}/pdf: a pre-signed GET valid for settings.pdf_url_ttl_seconds.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from invoicing import clock
from invoicing.adapters.render_jobs import CREDIT_NOTE_PDF, enqueue_credit_note_render, enqueue_invoice_render
from invoicing.domain.credit import CreditLine, CreditNote, CreditNoteStatus
from invoicing.domain.events import Actor, new_event
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.einvoice.inputs import einvoice_format, invoice_xml, rate_ids
from invoicing.einvoice.model import Syntax
from invoicing.errors import ConcurrentModification, Conflict, EInvoiceTermsMissing, NotFound, StaleInvoice
from invoicing.observability import logger, metrics
from invoicing.services import Services
from invoicing.settings import Settings
from invoicing.store.pdfs import InvoiceNotOpenForPdf
from invoicing.store.retry import SHORT, retry
from invoicing.store.uow import Skipped

MAX_RECORD_ATTEMPTS = 5

if TYPE_CHECKING:  # Jinja2 and Babel load only where a document is built, never on the API's cold start
    from invoicing.documents import InvoiceDocument, TaxBreakdownRow


def pdf_key(invoice: Invoice) -> str:
    return f"invoices/{invoice.customer_id}/{invoice.invoice_number}.pdf"


def einvoice_key(invoice: Invoice) -> str:
    return f"invoices/{invoice.customer_id}/{invoice.invoice_number}.xml"


# The customers whose invoice PDF becomes Factur-X (CII EN 16931 inside a PDF/A-3): those who asked for
# CII, and XRechnung's German buyers, for whom a ZUGFeRD/Factur-X EN 16931 invoice is an e-invoice too.
# A Peppol (ubl) buyer receives the XML over the network; its PDF stays a plain copy (docs/decisions.md).
FACTURX_FORMATS = frozenset({Syntax.CII, Syntax.XRECHNUNG})


def _with_einvoice(svc: Services, invoice: Invoice, pdf: bytes) -> bytes:
    """For a customer who receives e-invoices: store the XML in its format beside the PDF, and return
    the PDF as Factur-X for FACTURX_FORMATS; else the PDF as it is. Finalize checked the terms; if
    they changed since (a seller parameter, the customer), the PDF still ships and the XML waits:
    GET /invoices/{id}/einvoice names what is missing."""
    customer = svc.repo.get_customer(invoice.customer_id)
    syntax = einvoice_format(customer)
    if syntax is None:
        return pdf
    ids = rate_ids(invoice)
    rates = svc.tax_rates.get_many(ids) if ids and svc.settings.tax_service == "rates" else {}
    try:
        xml = invoice_xml(invoice, customer, svc.settings, rates, syntax)
        cii = xml if syntax is Syntax.CII else invoice_xml(invoice, customer, svc.settings, rates, Syntax.CII)
    except EInvoiceTermsMissing as missing:
        terms = sorted({p["term"] for p in missing.details["problems"]})
        logger.warning("e-invoice not stored: terms missing", extra={"invoice_id": invoice.id, "terms": terms})
        metrics.add_metric(name="EInvoiceTermsMissing", unit="Count", value=1)
        return pdf
    svc.documents.put_xml(einvoice_key(invoice), xml, f"{invoice.invoice_number}.xml")
    if syntax not in FACTURX_FORMATS:
        return pdf
    from invoicing.adapters.facturx import FacturXMetadata, make_facturx  # pikepdf: the renderer's layer only

    locale = invoice.customer.locale if invoice.customer else "en_US"
    meta = FacturXMetadata(
        title=f"Invoice {invoice.invoice_number}", author=svc.settings.seller_name, lang=locale.replace("_", "-")
    )
    return make_facturx(pdf, cii, meta)


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


def _parties(invoice: Invoice, settings: Any) -> tuple[Any, Any]:
    """(buyer, seller) as printed: the customer frozen on the invoice, the seller from the settings."""
    from invoicing.documents import Party

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
    return customer, seller


def _branding(settings: Any) -> Any:
    from invoicing.documents import SellerBranding

    return SellerBranding(
        accent_color=settings.seller_accent_color,
        bank_details=settings.bank_transfer_instructions,
        legal_lines=settings.seller_legal_line_list,
        footer_text=settings.seller_footer_text,
    )


def seller_logo(svc: Services) -> str | None:
    """The logo to print: SELLER_LOGO_URL (a data: URL) if set, else the checked PNG/SVG at
    SELLER_LOGO_KEY in the documents bucket. A missing or refused logo never fails a document: it
    prints without one, and the log says why (the seller fixes the object, the next render shows it)."""
    settings = svc.settings
    if settings.seller_logo_url or not settings.seller_logo_key:
        return settings.seller_logo_url or None
    from botocore.exceptions import ClientError

    from invoicing.logo import MAX_LOGO_BYTES, LogoRejected, logo_data_url

    try:
        body, content_type = svc.documents.get_small(settings.seller_logo_key, MAX_LOGO_BYTES)
        return logo_data_url(body, content_type)
    except (LogoRejected, ValueError, ClientError) as exc:
        logger.warning("seller logo not printed", extra={"key": settings.seller_logo_key, "reason": str(exc)})
        return None


def invoice_document(invoice: Invoice, settings: Settings, payment_url: str | None = None) -> InvoiceDocument:
    from invoicing.documents import CustomField, DocumentLine, InvoiceDocument

    customer, seller = _parties(invoice, settings)
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
        locale=invoice.customer.locale if invoice.customer else settings.seller_locale,
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
        purchase_order=invoice.purchase_order or None,
        custom_fields=[CustomField(key, value) for key, value in invoice.custom_fields],
        branding=_branding(settings),
        seller_locale=settings.seller_locale,
    )


def enqueue_render(svc: Services, invoice: Invoice) -> bool:
    """Best effort after the commit: a failure leaves the invoice pending for the repair job."""
    return enqueue_invoice_render(svc.render_queue, invoice)


def request_render(svc: Services, actor: Actor, invoice_id: str) -> Invoice:
    """Re-render on request. Idempotent in effect: any number of requests end in one current PDF."""
    invoice = svc.repo.get_invoice_header(invoice_id)
    if invoice.is_draft:
        raise InvoiceNotOpenForPdf(invoice_id)
    with svc.uow() as tx:
        tx.request_pdf(invoice, clock.iso(clock.now()))
    invoice = svc.repo.get_invoice_header(invoice_id)
    enqueue_render(svc, invoice)
    logger.info("pdf render requested", extra={"invoice_id": invoice_id, "actor": actor.principal})
    return invoice


def render_invoice_pdf(svc: Services, job: dict[str, Any], *, render: Any = None) -> str:
    """The worker's unit of work. Returns "rendered", "already_recorded" or "skipped_draft".
    Any exception means: retry (the message returns to the queue, then the DLQ).
    Jobs of kind `credit_note_pdf` go to render_credit_note_pdf."""
    if job.get("kind") == CREDIT_NOTE_PDF:
        return render_credit_note_pdf(svc, job, render=render)
    if render is None:
        from invoicing.adapters.chromium import render_pdf as render
    from invoicing.documents import document_footer_text, render_document_html

    invoice = svc.repo.get_invoice(job["invoice_id"])
    if invoice.is_draft:
        logger.warning("render job for a draft dropped", extra={"invoice_id": invoice.id})
        return "skipped_draft"
    doc = replace(invoice_document(invoice, svc.settings), logo_url=seller_logo(svc))
    pdf = render(render_document_html(doc), footer_text=document_footer_text(doc))
    pdf = _with_einvoice(svc, invoice, pdf)
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

    def record() -> None:
        header = svc.repo.get_invoice_header(invoice.id)  # a newer render requested meanwhile keeps it pending
        with svc.uow() as tx:
            tx.pdf_rendered(header, key=key, job_id=job["job_id"], requested_at=job.get("requested_at", now), at=now)
            tx.add_events(event)

    try:
        retry(
            record,
            on=(StaleInvoice,),  # the invoice moved (a payment, a credit note) between the read and the write
            attempts=MAX_RECORD_ATTEMPTS,
            exhausted=lambda: ConcurrentModification(f"invoice {invoice.id} kept changing; the job is retried"),
            backoff=SHORT,
        )
        recorded = True
    except Skipped:  # this job was recorded already (a redelivery)
        recorded = False
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


def pdf_origin(svc: Services, invoice: Invoice) -> str | None:
    """Where the invoice's PDF download redirects to (scheme and host of the signed S3 URL), so the
    console may frame it for its inline preview; None while there is no PDF. Signs, reads nothing."""
    if invoice.is_draft or not invoice.pdf_s3_key:
        return None
    parts = urlsplit(svc.documents.presigned_get(invoice.pdf_s3_key, 60))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def repair_pending_pdfs(svc: Services, *, older_than_seconds: int = 600) -> int:
    """Re-enqueue renders (invoices and credit notes) requested more than `older_than_seconds` ago
    and still not rendered."""
    cutoff = clock.iso(clock.now() - timedelta(seconds=older_than_seconds))
    count = 0
    for pending in svc.repo.pending_pdfs(cutoff):
        if pending.credit_note_id is not None:
            note = svc.credit_note_store.get_pending_pdf(pending.invoice_id, pending.credit_note_id)
            if note is not None and enqueue_credit_note_render(svc.render_queue, note):
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


# ---------------------------------------------------------------- credit notes
def credit_note_pdf_key(note: CreditNote) -> str:
    return f"credit-notes/{note.customer_id}/{note.number}.pdf"


def credit_note_document(note: CreditNote, invoice: Invoice, settings: Any) -> Any:
    from invoicing.documents import DocumentLine, InvoiceDocument

    customer, seller = _parties(invoice, settings)
    from datetime import date
    from decimal import Decimal

    def doc_line(ln: CreditLine) -> Any:
        quantity = ln.quantity if ln.quantity is not None else Decimal("1")
        return DocumentLine(
            description=ln.description,
            quantity=quantity,
            unit_amount_cents=ln.unit_amount_cents if ln.unit_amount_cents is not None else ln.amount_cents,
            amount_cents=ln.amount_cents,
            tax_cents=ln.tax_cents,
        )

    return InvoiceDocument(
        kind="credit_note",
        number=note.number,
        status="void" if note.status is CreditNoteStatus.VOID else "open",
        currency=note.currency,
        locale=invoice.customer.locale if invoice.customer else settings.seller_locale,
        issue_date=date.fromisoformat(note.created_at[:10]),
        due_date=None,
        seller=seller,
        customer=customer,
        lines=[doc_line(ln) for ln in note.lines],
        tax_breakdown=[],
        subtotal_cents=note.subtotal_cents,
        tax_cents=note.tax_cents,
        total_cents=note.total_cents,
        memo=note.memo or None,
        logo_url=settings.seller_logo_url or None,
        reference_number=note.invoice_number,
        purchase_order=invoice.purchase_order or None,
        branding=_branding(settings),
        seller_locale=settings.seller_locale,
    )


def render_credit_note_pdf(svc: Services, job: dict[str, Any], *, render: Any = None) -> str:
    """The render worker's unit of work for `credit_note_pdf` jobs (dispatched by render_pdf_job).
    The S3 key is stable per number, so a redelivered job overwrites the same file."""
    if render is None:
        from invoicing.adapters.chromium import render_pdf as render
    from invoicing.documents import document_footer_text, render_document_html

    store = svc.credit_note_store
    note = store.get(job["credit_note_id"])
    invoice = svc.repo.get_invoice(note.invoice_id)
    doc = replace(credit_note_document(note, invoice, svc.settings), logo_url=seller_logo(svc))
    pdf = render(render_document_html(doc), footer_text=document_footer_text(doc))
    key = credit_note_pdf_key(note)
    svc.documents.put_pdf(key, pdf, f"{note.number}.pdf")
    try:
        with svc.uow() as tx:
            tx.credit_note_pdf_rendered(note, key=key, job_id=job["job_id"], at=clock.iso(clock.now()))
        recorded = True
    except Skipped:  # this job was recorded already (a redelivery)
        recorded = False
    logger.info("credit note pdf rendered", extra={"credit_note_id": note.id, "bytes": len(pdf)})
    return "rendered" if recorded else "already_recorded"
