"""Credit notes and the customer balance.

issue_credit_note — who: invoices:write. Open, uncollectible or paid invoices (a draft is 409
  `invoice_not_open`, a void invoice 409 `invoice_void`). The amount comes from `amount_cents` or from
  lines (free lines, or a quantity of an original line with its frozen tax in proportion); see
  domain/credit.py. The credits of an invoice never exceed its total (409 `credit_exceeds_creditable`);
  on an open invoice the credit first reduces the amount due (and the invoice becomes paid when that
  reaches 0, as Stripe does), the rest goes by `method`: customer_balance (ledger + balance), refund
  (at most what was paid and not yet refunded, 409 `refund_exceeds_paid`), out_of_band (recorded).
  ONE transaction: the credit note with its number CN-{YYYY}-{NNNNN} (per customer, gapless: the
  counter is claimed like invoice numbers), the invoice's derived amounts conditioned on its version
  and credited amount, the `invoice.credit_note_issued` event, the balance and its ledger entry, the
  refund items and the payments' refunded amounts. A lost race is re-read and re-decided.
  After the commit: Stripe refunds go through the SDK (idempotent on our refund id), manual ones stay
  `pending` for finance to pay back by hand (use_cases/refunds.py: retry, complete, webhooks); the
  PDF render job is enqueued.
void_credit_note — who: invoices:write. Reverses the credit's effects with a `credit_note_voided`
  event: the invoice's credited amount (and the amount due it took off, only while the invoice is
  still open/uncollectible) and the balance it added (409 `credit_balance_consumed` once that balance
  has been spent). A credit note that refunded money cannot be voided.
apply_customer_balance — finalization's `adjust` hook (lifecycle.finalize_invoice): the customer's
  balance in the invoice's currency pays the new invoice down; fully covered means paid at once. The
  ledger entry and the balance update (conditioned on its old value) join the finalize transaction.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Any

from invoicing import clock
from invoicing.domain.credit import (
    MANUAL,
    STRIPE,
    BalanceTransaction,
    CreditLine,
    CreditMethod,
    CreditNote,
    CreditNoteStatus,
    CreditReason,
    LineCredit,
    Refund,
    RefundStatus,
    allocate_refund,
    balance_to_apply,
    check_memo,
    compute_credit,
    ensure_creditable,
    ensure_voidable,
    split_credit,
)
from invoicing.domain.events import Actor
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.domain.numbering import credit_note_number
from invoicing.errors import ConcurrentModification, Conflict
from invoicing.ids import new_id
from invoicing.observability import logger, metrics
from invoicing.store.credit_notes import (
    BalanceChange,
    CreditNoteRace,
    CreditNoteStore,
    RefundWrite,
    balance_change_op,
)
from invoicing.store.repository import Customer, event_op
from invoicing.use_cases.services import Services, new_event

MAX_ATTEMPTS = 6
MAX_REFUNDED_PAYMENTS = 40  # one credit note's transaction stays far below DynamoDB's 100 items
RENDER_JOB_KIND = "credit_note_pdf"


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.4, 0.01 * (2**attempt))))


def credit_note_store(svc: Services) -> CreditNoteStore:
    store = svc.adapters.get("credit_note_store")
    if store is None:
        store = svc.adapters.setdefault("credit_note_store", CreditNoteStore(svc.repo))
    return store


@dataclass(frozen=True)
class IssueCreditNote:
    reason: CreditReason
    method: CreditMethod
    amount_cents: int | None = None
    lines: tuple[LineCredit, ...] = ()
    memo: str = ""


def issue_credit_note(svc: Services, actor: Actor, invoice_id: str, cmd: IssueCreditNote) -> CreditNote:
    """See the module docstring."""
    memo = check_memo(cmd.memo)
    store = credit_note_store(svc)
    credit_note_id = new_id("cn")
    for attempt in range(MAX_ATTEMPTS):
        invoice = svc.repo.get_invoice(invoice_id)
        ensure_creditable(invoice)
        amounts = compute_credit(invoice, amount_cents=cmd.amount_cents, lines=list(cmd.lines))
        split = split_credit(invoice, amounts.total_cents, cmd.method, invoice.refunded_cents)
        now_dt = clock.now()
        now = clock.iso(now_dt)
        refunds = _plan_refunds(svc, store, invoice, credit_note_id, split.refund_cents, now)
        year = now_dt.year
        sequence = svc.repo.get_sequence(invoice.customer_id, "CN", year)
        note = CreditNote(
            id=credit_note_id,
            number=credit_note_number(year, sequence),
            invoice_id=invoice.id,
            invoice_number=invoice.invoice_number,
            customer_id=invoice.customer_id,
            status=CreditNoteStatus.ISSUED,
            currency=invoice.currency,
            reason=cmd.reason,
            method=cmd.method,
            memo=memo,
            lines=amounts.lines,
            subtotal_cents=amounts.subtotal_cents,
            tax_cents=amounts.tax_cents,
            total_cents=amounts.total_cents,
            pre_payment_cents=split.pre_payment_cents,
            post_payment_cents=split.post_payment_cents,
            balance_cents=split.balance_cents,
            refund_cents=split.refund_cents,
            out_of_band_cents=split.out_of_band_cents,
            created_at=now,
            actor=actor.principal,
            pdf_status="pending",
        )
        balance = None
        if split.balance_cents:
            customer = svc.repo.get_customer(invoice.customer_id)
            old = customer.balances.get(invoice.currency, 0)
            balance = BalanceChange(
                old_cents=old,
                txn=BalanceTransaction(
                    id=new_id("cbtxn"),
                    customer_id=invoice.customer_id,
                    currency=invoice.currency,
                    amount_cents=split.balance_cents,
                    ending_balance_cents=old + split.balance_cents,
                    kind="credit_note",
                    created_at=now,
                    actor=actor.principal,
                    credit_note_id=note.id,
                    invoice_id=invoice.id,
                ),
            )
        event = new_event(
            invoice.id,
            "invoice.credit_note_issued",
            actor,
            now,
            from_status=invoice.status.value if split.settles_invoice else None,
            to_status=InvoiceStatus.PAID.value if split.settles_invoice else None,
            data={
                "credit_note_id": note.id,
                "number": note.number,
                "total_cents": note.total_cents,
                "tax_cents": note.tax_cents,
                "reason": note.reason.value,
                "method": note.method.value,
                "pre_payment_cents": note.pre_payment_cents,
                "post_payment_cents": note.post_payment_cents,
                "credited_cents": invoice.credited_cents + note.total_cents,
            },
        )
        try:
            store.issue(
                invoice=invoice,
                note=note,
                split=split,
                sequence_year=year,
                sequence_next=sequence,
                event=event,
                balance=balance,
                refunds=refunds,
                paid_at=now,
            )
        except CreditNoteRace:
            metrics.add_metric(name="CreditNoteRetries", unit="Count", value=1)
            _backoff(attempt)
            continue
        logger.info(
            "credit note issued",
            extra={"invoice_id": invoice.id, "credit_note_id": note.id, "total_cents": note.total_cents},
        )
        metrics.add_metric(name="CreditNotesIssued", unit="Count", value=1)
        for write in refunds:
            _refund_through_provider(svc, actor, write.refund)
        enqueue_render(svc, note)
        return store.get(note.id)
    raise ConcurrentModification(f"invoice {invoice_id} kept changing; retry the credit note")


def _plan_refunds(
    svc: Services, store: CreditNoteStore, invoice: Invoice, credit_note_id: str, amount: int, now: str
) -> list[RefundWrite]:
    if amount <= 0:
        return []
    payments = store.payment_refunds(invoice.id)
    refundable = [(pid, total - refunded) for pid, (total, refunded, _, _) in payments.items() if total > refunded]
    plan = allocate_refund(refundable, amount)[:MAX_REFUNDED_PAYMENTS]
    if sum(part for _, part in plan) != amount:
        raise Conflict("the refund spreads over too many payments; refund in smaller parts", code="refund_too_spread")
    from invoicing.use_cases.payments import payment_provider

    provider_name = payment_provider(svc).name
    out = []
    for payment_id, part in plan:
        _total, refunded, reference, source = payments[payment_id]
        through_stripe = source == "stripe" and provider_name == "stripe" and bool(reference)
        out.append(
            RefundWrite(
                refund=Refund(
                    id=new_id("re"),
                    invoice_id=invoice.id,
                    payment_id=payment_id,
                    credit_note_id=credit_note_id,
                    amount_cents=part,
                    currency=invoice.currency,
                    provider=STRIPE if through_stripe else MANUAL,
                    status=RefundStatus.PENDING,
                    created_at=now,
                    updated_at=now,
                    payment_reference=reference,
                    attempts=1 if through_stripe else 0,  # made right after the commit
                ),
                payment_refunded_before=refunded,
            )
        )
    return out


def _refund_through_provider(svc: Services, actor: Actor, refund: Refund) -> None:
    """After the commit: the refund is recorded (pending) before any money moves, so a crash here
    leaves a visible pending refund, never money returned without a record (use_cases/refunds.py).
    The credit note stands whatever happens here: an outcome that could not be recorded is brought
    in by Stripe's webhook, and a failed refund can be retried."""
    from invoicing.use_cases.refunds import first_attempt  # it imports this module

    try:
        first_attempt(svc, actor, refund)
    except Exception:  # any store or provider trouble after the commit: the refund stays as recorded
        logger.exception("refund outcome not recorded", extra={"refund_id": refund.id})
        metrics.add_metric(name="RefundOutcomeNotRecorded", unit="Count", value=1)


def get_credit_note(svc: Services, credit_note_id: str) -> CreditNote:
    return credit_note_store(svc).get(credit_note_id)


def list_credit_notes(svc: Services, invoice_id: str) -> list[CreditNote]:
    svc.repo.get_invoice_header(invoice_id)  # 404 for an unknown invoice
    return credit_note_store(svc).list_for_invoice(invoice_id)


def list_balance_transactions(svc: Services, customer_id: str) -> list[BalanceTransaction]:
    """The whole ledger, newest first (reconciliation); the API pages it."""
    svc.repo.get_customer(customer_id)  # 404 for an unknown customer
    return credit_note_store(svc).list_balance_transactions(customer_id)


def balance_transactions_page(
    svc: Services, customer_id: str, *, limit: int, starting_after: str | None
) -> tuple[list[BalanceTransaction], str | None]:
    svc.repo.get_customer(customer_id)  # 404 for an unknown customer
    return credit_note_store(svc).balance_transactions_page(customer_id, limit=limit, cursor=starting_after)


def void_credit_note(svc: Services, actor: Actor, credit_note_id: str) -> CreditNote:
    """See the module docstring."""
    store = credit_note_store(svc)
    for attempt in range(MAX_ATTEMPTS):
        note = store.get(credit_note_id)
        invoice = svc.repo.get_invoice_header(note.invoice_id)
        customer_balance = 0
        if note.balance_cents:
            customer_balance = svc.repo.get_customer(note.customer_id).balances.get(note.currency, 0)
        ensure_voidable(
            status=note.status,
            invoice=invoice,
            pre_payment_cents=note.pre_payment_cents,
            refund_cents=note.refund_cents,
            balance_cents=note.balance_cents,
            customer_balance_cents=customer_balance,
        )
        now = clock.iso(clock.now())
        balance = None
        if note.balance_cents:
            balance = BalanceChange(
                old_cents=customer_balance,
                txn=BalanceTransaction(
                    id=new_id("cbtxn"),
                    customer_id=note.customer_id,
                    currency=note.currency,
                    amount_cents=-note.balance_cents,
                    ending_balance_cents=customer_balance - note.balance_cents,
                    kind="credit_note_void",
                    created_at=now,
                    actor=actor.principal,
                    credit_note_id=note.id,
                    invoice_id=note.invoice_id,
                ),
            )
        event = new_event(
            invoice.id,
            "invoice.credit_note_voided",
            actor,
            now,
            data={
                "credit_note_id": note.id,
                "number": note.number,
                "total_cents": note.total_cents,
                "credited_cents": invoice.credited_cents - note.total_cents,
            },
        )
        try:
            store.void(invoice=invoice, note=note, event=event, balance=balance, at=now)
        except CreditNoteRace:
            _backoff(attempt)
            continue
        logger.info("credit note voided", extra={"invoice_id": invoice.id, "credit_note_id": note.id})
        return store.get(credit_note_id)
    raise ConcurrentModification(f"credit note {credit_note_id} kept changing; retry")


# ---------------------------------------------------------------- finalization: apply the balance
def apply_customer_balance(
    svc: Services, actor: Actor, invoice: Invoice, finalized: Invoice, customer: Customer
) -> tuple[Invoice, list[Any]]:
    """lifecycle.finalize_invoice's `adjust` hook. The balance read with `customer` (this attempt's
    read) is the condition: if another finalization spent it meanwhile, finalize retries."""
    balance = customer.balances.get(finalized.currency, 0)
    applied = balance_to_apply(balance, finalized.amount_remaining_cents)
    if not applied:
        return finalized, []
    assert finalized.finalized_at is not None
    remaining = finalized.amount_remaining_cents - applied
    paid = remaining == 0
    adjusted = replace(
        finalized,
        starting_balance_cents=balance,
        applied_balance_cents=applied,
        amount_remaining_cents=remaining,
        status=InvoiceStatus.PAID if paid else finalized.status,
        paid_at=finalized.finalized_at if paid else finalized.paid_at,
    )
    change = BalanceChange(
        old_cents=balance,
        txn=BalanceTransaction(
            id=new_id("cbtxn"),
            customer_id=customer.id,
            currency=finalized.currency,
            amount_cents=-applied,
            ending_balance_cents=balance - applied,
            kind="applied_to_invoice",
            created_at=finalized.finalized_at,
            actor=actor.principal,
            invoice_id=invoice.id,
        ),
    )
    event = new_event(
        invoice.id,
        "invoice.customer_balance_applied",
        actor,
        finalized.finalized_at,
        from_status=InvoiceStatus.OPEN.value if paid else None,
        to_status=InvoiceStatus.PAID.value if paid else None,
        data={
            "applied_balance_cents": applied,
            "starting_balance_cents": balance,
            "ending_balance_cents": balance - applied,
            "amount_remaining_cents": remaining,
            "balance_transaction_id": change.txn.id,
        },
    )

    return adjusted, [balance_change_op(change), event_op(event)]


# ---------------------------------------------------------------- documents
def pdf_key(note: CreditNote) -> str:
    return f"credit-notes/{note.customer_id}/{note.number}.pdf"


def enqueue_render(svc: Services, note: CreditNote) -> bool:
    """Best effort after the commit (like invoices): a failure leaves pdf_status pending."""
    job = {"kind": RENDER_JOB_KIND, "job_id": new_id("job"), "credit_note_id": note.id}
    try:
        svc.render_queue.send(job)
    except Exception:  # any SQS/network failure: the PDF can be re-requested
        logger.exception("credit note render job not enqueued", extra={"credit_note_id": note.id})
        metrics.add_metric(name="RenderEnqueueFailures", unit="Count", value=1)
        return False
    return True


def credit_note_document(note: CreditNote, invoice: Invoice, settings: Any) -> Any:
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
        locale=snap.locale if snap else "en_US",
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
    )


def render_credit_note_pdf(svc: Services, job: dict[str, Any], *, render: Any = None) -> str:
    """The render worker's unit of work for `credit_note_pdf` jobs (dispatched by use_cases/documents).
    The S3 key is stable per number, so a redelivered job overwrites the same file."""
    if render is None:
        from invoicing.adapters.chromium import render_pdf as render
    from invoicing.documents import document_footer_text, render_document_html

    store = credit_note_store(svc)
    note = store.get(job["credit_note_id"])
    invoice = svc.repo.get_invoice(note.invoice_id)
    doc = credit_note_document(note, invoice, svc.settings)
    pdf = render(render_document_html(doc), footer_text=document_footer_text(doc))
    key = pdf_key(note)
    svc.documents.put_pdf(key, pdf, f"{note.number}.pdf")
    recorded = store.mark_pdf_rendered(note, key, job["job_id"], clock.iso(clock.now()))
    logger.info("credit note pdf rendered", extra={"credit_note_id": note.id, "bytes": len(pdf)})
    return "rendered" if recorded else "already_recorded"


def credit_note_pdf_download(svc: Services, credit_note_id: str) -> tuple[str, str]:
    from datetime import timedelta

    note = credit_note_store(svc).get(credit_note_id)
    if not note.pdf_s3_key:
        raise Conflict("the PDF is still being rendered; retry in a few seconds", code="pdf_not_ready")
    ttl = svc.settings.pdf_url_ttl_seconds
    return svc.documents.presigned_get(note.pdf_s3_key, ttl), clock.iso(clock.now() + timedelta(seconds=ttl))
