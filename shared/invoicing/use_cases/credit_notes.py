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
  `pending` for finance to pay back by hand (use_cases/refunds.py: retry, complete, webhooks; invoicing/refund_attempts.py: the first attempt); the
  PDF render job is enqueued.
void_credit_note — who: invoices:write. Reverses the credit's effects with a `credit_note_voided`
  event: the invoice's credited amount (and the amount due it took off, only while the invoice is
  still open/uncollectible) and the balance it added (409 `credit_balance_consumed` once that balance
  has been spent). A credit note that refunded money cannot be voided.
"""

from __future__ import annotations

from dataclasses import dataclass

from invoicing import clock
from invoicing.adapters.render_jobs import enqueue_credit_note_render
from invoicing.domain.balance import BalanceChange
from invoicing.domain.credit import (
    BalanceTransaction,
    CreditMethod,
    CreditNote,
    CreditNoteStatus,
    CreditReason,
    LineCredit,
    check_memo,
    compute_credit,
    ensure_creditable,
    ensure_voidable,
    split_credit,
)
from invoicing.domain.events import Actor, new_event
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.domain.numbering import NumberClaim, credit_note_number
from invoicing.domain.refunds import MANUAL, STRIPE, Refund, RefundStatus, allocate_refund
from invoicing.errors import ConcurrentModification, Conflict
from invoicing.ids import new_id
from invoicing.observability import logger, metrics
from invoicing.refund_attempts import first_attempt
from invoicing.services import Services
from invoicing.store.credit_notes import CreditNoteStore
from invoicing.store.retry import LONG, retry
from invoicing.store.writes.credit import CreditNoteRace, RefundWrite

MAX_ATTEMPTS = 6
MAX_REFUNDED_PAYMENTS = 40  # one credit note's transaction stays far below DynamoDB's 100 items


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
    store = svc.credit_note_store
    credit_note_id = new_id("cn")

    def attempt() -> tuple[CreditNote, list[RefundWrite]]:
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
        with svc.uow() as tx:
            tx.issue_credit_note(
                invoice,
                note,
                split,
                claim=NumberClaim(invoice.customer_id, "CN", year, sequence),
                balance=balance,
                refunds=tuple(refunds),
            )
            tx.add_events(event)
        return note, refunds

    note, refunds = retry(
        attempt,
        on=(CreditNoteRace,),
        attempts=MAX_ATTEMPTS,
        exhausted=lambda: ConcurrentModification(f"invoice {invoice_id} kept changing; retry the credit note"),
        backoff=LONG,
        on_retry=lambda n, exc: metrics.add_metric(name="CreditNoteRetries", unit="Count", value=1),
    )
    logger.info(
        "credit note issued",
        extra={"invoice_id": invoice_id, "credit_note_id": note.id, "total_cents": note.total_cents},
    )
    metrics.add_metric(name="CreditNotesIssued", unit="Count", value=1)
    for write in refunds:
        _refund_through_provider(svc, actor, write.refund)
    enqueue_credit_note_render(svc.render_queue, note)
    return store.get(note.id)


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
    provider_name = svc.payment_provider().name
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
                    version=1,
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
    try:
        first_attempt(svc, actor, refund)
    except Exception:  # any store or provider trouble after the commit: the refund stays as recorded
        logger.exception("refund outcome not recorded", extra={"refund_id": refund.id})
        metrics.add_metric(name="RefundOutcomeNotRecorded", unit="Count", value=1)


def get_credit_note(svc: Services, credit_note_id: str) -> CreditNote:
    return svc.credit_note_store.get(credit_note_id)


def list_credit_notes(svc: Services, invoice_id: str) -> list[CreditNote]:
    svc.repo.get_invoice_header(invoice_id)  # 404 for an unknown invoice
    return svc.credit_note_store.list_for_invoice(invoice_id)


def list_balance_transactions(svc: Services, customer_id: str) -> list[BalanceTransaction]:
    """The whole ledger, newest first (reconciliation); the API pages it."""
    svc.repo.get_customer(customer_id)  # 404 for an unknown customer
    return svc.credit_note_store.list_balance_transactions(customer_id)


def balance_transactions_page(
    svc: Services, customer_id: str, *, limit: int, starting_after: str | None
) -> tuple[list[BalanceTransaction], str | None]:
    svc.repo.get_customer(customer_id)  # 404 for an unknown customer
    return svc.credit_note_store.balance_transactions_page(customer_id, limit=limit, cursor=starting_after)


def void_credit_note(svc: Services, actor: Actor, credit_note_id: str) -> CreditNote:
    """See the module docstring."""
    store = svc.credit_note_store

    def attempt() -> CreditNote:
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
        with svc.uow() as tx:
            tx.void_credit_note(invoice, note, at=now, balance=balance)
            tx.add_events(event)
        logger.info("credit note voided", extra={"invoice_id": invoice.id, "credit_note_id": note.id})
        return note

    retry(
        attempt,
        on=(CreditNoteRace,),
        attempts=MAX_ATTEMPTS,
        exhausted=lambda: ConcurrentModification(f"credit note {credit_note_id} kept changing; retry"),
        backoff=LONG,
    )
    return store.get(credit_note_id)


# ---------------------------------------------------------------- documents
def enqueue_render(svc: Services, note: CreditNote) -> bool:
    """Best effort after the commit (like invoices): a failure leaves pdf_status pending."""
    return enqueue_credit_note_render(svc.render_queue, note)


def credit_note_pdf_download(svc: Services, credit_note_id: str) -> tuple[str, str]:
    from datetime import timedelta

    note = svc.credit_note_store.get(credit_note_id)
    if not note.pdf_s3_key:
        raise Conflict("the PDF is still being rendered; retry in a few seconds", code="pdf_not_ready")
    ttl = svc.settings.pdf_url_ttl_seconds
    return svc.documents.presigned_get(note.pdf_s3_key, ttl), clock.iso(clock.now() + timedelta(seconds=ttl))
