"""Void and mark uncollectible (finalize: use_cases/finalize.py).

void_invoice — open | uncollectible -> void. The number stays used. With reissue=True, a corrected
  draft copy is created in the same transaction, linked both ways (reissue_of / reissued_as).
mark_uncollectible — open -> uncollectible (bad debt; may still be paid or voided later).
Both are conditioned on the version read; a lost race (a payment, a PDF render or a reminder recorded
  meanwhile) is re-read and decided again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from invoicing import clock
from invoicing.domain.events import Actor, new_event
from invoicing.domain.invoice import (
    MAX_LINES,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    compute_totals,
    ensure_transition,
    transitioned,
)
from invoicing.domain.invoice import mark_uncollectible as uncollectible
from invoicing.errors import ConcurrentModification, StaleInvoice, ValidationFailed
from invoicing.ids import new_id
from invoicing.observability import logger
from invoicing.services import Services
from invoicing.store.retry import SHORT, retry

T = TypeVar("T")
MAX_ATTEMPTS = 5

# one transaction of at most 100 items: the void (update, event, outbox record) and the copy (header,
# lines, event, outbox record)
REISSUE_MAX_LINES = 93


def _copy_as_draft(invoice: Invoice, now: str) -> Invoice:
    lines = tuple(
        InvoiceLine(
            id=new_id("il"),
            description=ln.description,
            quantity=ln.quantity,
            unit_amount_cents=ln.unit_amount_cents,
            tax_rate_id=ln.tax_rate_id,
            created_at=now,
            tax=ln.tax,
            unit_code=ln.unit_code,
        )
        for ln in invoice.lines
    )
    totals = compute_totals(list(lines), {ln.id: ln.tax for ln in lines if ln.tax})
    return Invoice(
        id=new_id("in"),
        customer_id=invoice.customer_id,
        status=InvoiceStatus.DRAFT,
        currency=invoice.currency,
        created_at=now,
        updated_at=now,
        days_until_due=invoice.days_until_due,
        memo=invoice.memo,
        lines=lines,
        subtotal_cents=totals.subtotal_cents,
        tax_cents=totals.tax_cents,
        total_cents=totals.total_cents,
        reissue_of=invoice.id,
        metadata=dict(invoice.metadata),
        purchase_order=invoice.purchase_order,
        custom_fields=invoice.custom_fields,
    )


def void_invoice(
    svc: Services, actor: Actor, invoice_id: str, *, reissue: bool = False
) -> tuple[Invoice, Invoice | None]:
    """A lost race on the version (a payment, a PDF render or a reminder recorded meanwhile) is
    re-read and decided again; a status that no longer allows voiding is 409."""

    def attempt() -> Invoice | None:
        invoice = svc.repo.get_invoice(invoice_id)
        ensure_transition(invoice.status, InvoiceStatus.VOID)
        now = clock.iso(clock.now())
        copy: Invoice | None = None
        events = []
        if reissue:
            if len(invoice.lines) > REISSUE_MAX_LINES or len(invoice.lines) > MAX_LINES:
                raise ValidationFailed(
                    f"reissue copies at most {REISSUE_MAX_LINES} lines in one step; void without "
                    "reissue and create the corrected invoice",
                    details={"field": "reissue"},
                )
            copy = _copy_as_draft(invoice, now)
            events.append(
                new_event(copy.id, "invoice.created", actor, now, to_status="draft", data={"reissue_of": invoice.id})
            )
        voided = new_event(
            invoice.id,
            "invoice.voided",
            actor,
            now,
            from_status=invoice.status.value,
            to_status="void",
            data={"reissued_as": copy.id} if copy else {},
        )
        voided_invoice = transitioned(invoice, InvoiceStatus.VOID, now, reissued_as=copy.id if copy else None)
        with svc.uow() as tx:
            tx.transition(invoice, voided_invoice)
            tx.add_events(voided)
            if copy is not None:
                tx.add_draft(copy)
                tx.add_events(*events)
        return copy

    copy = _retry_stale(invoice_id, attempt)
    logger.info("invoice voided", extra={"invoice_id": invoice_id, "reissued": bool(copy)})
    return svc.repo.get_invoice(invoice_id), (svc.repo.get_invoice(copy.id) if copy else None)


def mark_uncollectible(svc: Services, actor: Actor, invoice_id: str) -> Invoice:
    def attempt() -> None:
        invoice = svc.repo.get_invoice(invoice_id)
        after, event = uncollectible(invoice, actor, clock.iso(clock.now()))
        with svc.uow() as tx:
            tx.transition(invoice, after)
            tx.add_events(event)

    _retry_stale(invoice_id, attempt)
    return svc.repo.get_invoice(invoice_id)


def _retry_stale(invoice_id: str, attempt: Callable[[], T]) -> T:
    return retry(
        attempt,
        on=(StaleInvoice,),
        attempts=MAX_ATTEMPTS,
        exhausted=lambda: ConcurrentModification(f"invoice {invoice_id} kept changing; retry"),
        backoff=SHORT,
    )
