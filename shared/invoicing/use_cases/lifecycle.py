"""Finalize, void and mark uncollectible.

finalize_invoice — draft -> open. Who: invoices:write. Recomputes tax with the tax service and
  freezes it, converts the total to USD with the current rate (locked for good), snapshots the
  customer, and takes the next number INV-{YYYY}-{NNNNN} for the customer and calendar year (UTC).
  Number, status flip, frozen totals and the audit event are one transaction, conditioned on the
  counter's previous value and on the invoice still being the same draft. A lost race on the counter
  reads the counter again and retries at once (only that: nothing else is stale); anything else that
  moved (a draft edit, the customer's balance) starts again from the reads, with jittered backoff.
  Failures before the transaction (tax service down, no exchange rate, negative total) change nothing.
void_invoice — open | uncollectible -> void. The number stays used. With reissue=True, a corrected
  draft copy is created in the same transaction, linked both ways (reissue_of / reissued_as).
mark_uncollectible — open -> uncollectible (bad debt; may still be paid or voided later).
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any

from invoicing import clock
from invoicing.domain import money
from invoicing.domain.events import Actor
from invoicing.domain.invoice import (
    MAX_LINES,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    compute_totals,
    due_date_for,
    ensure_finalizable,
    ensure_transition,
    settle_if_nothing_due,
    sources_of,
)
from invoicing.domain.numbering import invoice_number
from invoicing.errors import ConcurrentModification, Conflict, ValidationFailed
from invoicing.ids import new_id
from invoicing.observability import logger, metrics
from invoicing.store.repository import Customer, NumberTaken, SequenceConflict, event_op
from invoicing.use_cases.services import Services, new_event

REISSUE_MAX_LINES = 95
# numbers taken by other finalizations of the same customer before one attempt gives up (see
# _number_and_commit); each one means another invoice got its number, so progress is never lost
NUMBER_ATTEMPTS = 25


def _backoff(attempt: int) -> None:
    # full jitter, 10 ms base, capped at 400 ms
    time.sleep(random.uniform(0, min(0.4, 0.01 * (2**attempt))))


def _usd_value(svc: Services, currency: str, total_cents: int) -> tuple[int, Decimal, str, str]:
    if currency == "USD":
        return total_cents, Decimal("1"), "identity", clock.iso(clock.now())
    rate = svc.exchange_rates.get(currency)
    if rate is None:
        raise Conflict(
            f"no exchange rate to USD for {currency}; PUT /exchange-rates/{currency} first",
            code="exchange_rate_missing",
        )
    return money.to_usd_cents(total_cents, currency, rate.rate_to_usd), rate.rate_to_usd, rate.source, rate.as_of


def finalize_invoice(
    svc: Services, actor: Actor, invoice_id: str, *, extra_ops: Any = None, adjust: Any = None
) -> Invoice:
    """See the module docstring. `extra_ops(invoice, finalized) -> list[callable(tx)]` lets later
    features (payment links) add items to the same transaction. `adjust(invoice, finalized, customer)
    -> (finalized, ops)` may change the finalized amounts before that and add its own items; by
    default it applies the customer's balance (use_cases/credit_notes.apply_customer_balance)."""
    if adjust is None:
        from invoicing.use_cases.credit_notes import apply_customer_balance

        adjust = functools.partial(apply_customer_balance, svc, actor)
    attempts = svc.settings.finalize_max_attempts
    for attempt in range(attempts):
        invoice = svc.repo.get_invoice(invoice_id)
        invoice.require_draft()
        customer = svc.repo.get_customer(invoice.customer_id)
        lines = list(invoice.lines)
        taxes = svc.tax.calculate(invoice, lines, customer) if lines else {}
        totals = compute_totals(lines, taxes)
        ensure_finalizable(invoice, totals)
        usd_cents, fx_rate, fx_source, fx_as_of = _usd_value(svc, invoice.currency, totals.total_cents)
        now_dt = clock.now()
        now = clock.iso(now_dt)
        base = replace(
            invoice,
            status=InvoiceStatus.OPEN,
            finalized_at=now,
            updated_at=now,
            version=invoice.version + 1,
            due_date=due_date_for(now_dt.date(), invoice.days_until_due, invoice.due_date),
            subtotal_cents=totals.subtotal_cents,
            tax_cents=totals.tax_cents,
            total_cents=totals.total_cents,
            amount_paid_cents=0,
            amount_remaining_cents=totals.total_cents,
            usd_total_cents=usd_cents,
            fx_rate=fx_rate,
            fx_rate_source=fx_source,
            fx_rate_as_of=fx_as_of,
            customer=customer.snapshot(),
            line_taxes=taxes,
            pdf_status="pending",
        )
        used_rates = sorted({t.tax_rate_id for t in taxes.values() if t.tax_rate_id})
        if used_rates and svc.settings.tax_service == "rates":
            # Freeze the rates once every check has passed (a failed finalize changes nothing), then
            # re-read them: an edit that slipped in between the first read and the freeze means the
            # computed tax is stale, so compute again. Outside the transaction on purpose: a shared
            # rate item in every finalization would be a hot item conflicting concurrent transactions.
            svc.tax_rates.mark_used(used_rates)
            current = svc.tax_rates.get_many(used_rates)
            if any(
                current.get(t.tax_rate_id) is None
                or (current[t.tax_rate_id].percentage, current[t.tax_rate_id].inclusive) != (t.percentage, t.inclusive)
                for t in taxes.values()
                if t.tax_rate_id
            ):
                continue
        try:
            return _number_and_commit(svc, actor, invoice, base, customer, now_dt.year, adjust, extra_ops)
        except (SequenceConflict, ConcurrentModification):
            metrics.add_metric(name="FinalizeRetries", unit="Count", value=1)
            logger.info("finalize retry", extra={"invoice_id": invoice_id, "attempt": attempt + 1})
            _backoff(attempt)
            continue
    raise ConcurrentModification(f"could not finalize invoice {invoice_id} after {attempts} attempts; retry")


def _number_and_commit(
    svc: Services,
    actor: Actor,
    invoice: Invoice,
    base: Invoice,
    customer: Customer,
    year: int,
    adjust: Any,
    extra_ops: Any,
) -> Invoice:
    """Take the customer's next number and commit. When only the counter moved (another finalization
    of this customer took the number), read the counter again and retry at once: the window between
    the read and the transaction is two calls, not the whole preparation, so many finalizations of one
    customer at the same time all get through. Anything else that moved goes back to the caller."""
    for attempt in range(NUMBER_ATTEMPTS):
        sequence = svc.repo.get_sequence(invoice.customer_id, "INV", year)
        finalized = replace(base, invoice_number=invoice_number(year, sequence))
        assert finalized.finalized_at is not None
        event = new_event(
            invoice.id,
            "invoice.finalized",
            actor,
            finalized.finalized_at,
            from_status="draft",
            to_status="open",
            data={
                "invoice_number": finalized.invoice_number,
                "total_cents": finalized.total_cents,
                "currency": invoice.currency,
                "usd_total_cents": finalized.usd_total_cents,
            },
        )
        finalized, adjust_ops = adjust(invoice, finalized, customer)
        settled = settle_if_nothing_due(finalized)
        if settled is not finalized:
            finalized = settled
            adjust_ops = [*adjust_ops, event_op(_nothing_due_event(invoice, finalized, actor))]
        extra = [*adjust_ops, *(extra_ops(invoice, finalized) if extra_ops else [])]
        try:
            svc.repo.finalize_invoice(
                invoice=invoice,
                finalized=finalized,
                sequence_year=year,
                sequence_next=sequence,
                event=event,
                extra=extra,
            )
        except NumberTaken:
            metrics.add_metric(name="FinalizeNumberRetries", unit="Count", value=1)
            # the winner has committed; a little jitter keeps the losers from colliding again
            time.sleep(random.uniform(0, min(0.05, 0.002 * (2**attempt))))
            continue
        logger.info(
            "invoice finalized",
            extra={
                "invoice_id": invoice.id,
                "customer_id": invoice.customer_id,
                "invoice_number": finalized.invoice_number,
            },
        )
        metrics.add_metric(name="InvoicesFinalized", unit="Count", value=1)
        return svc.repo.get_invoice(invoice.id)
    raise SequenceConflict(invoice.customer_id)


def _nothing_due_event(invoice: Invoice, finalized: Invoice, actor: Actor) -> Any:
    assert finalized.finalized_at is not None
    return new_event(
        invoice.id,
        "invoice.paid",
        actor,
        finalized.finalized_at,
        from_status=InvoiceStatus.OPEN.value,
        to_status=InvoiceStatus.PAID.value,
        data={"reason": "nothing_due", "total_cents": finalized.total_cents, "currency": invoice.currency},
    )


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
    )


def void_invoice(
    svc: Services, actor: Actor, invoice_id: str, *, reissue: bool = False
) -> tuple[Invoice, Invoice | None]:
    invoice = svc.repo.get_invoice(invoice_id)
    ensure_transition(invoice.status, InvoiceStatus.VOID)
    now = clock.iso(clock.now())
    extra = []
    copy: Invoice | None = None
    if reissue:
        if len(invoice.lines) > REISSUE_MAX_LINES or len(invoice.lines) > MAX_LINES:
            raise ValidationFailed(
                f"reissue copies at most {REISSUE_MAX_LINES} lines in one step; void without "
                "reissue and create the corrected invoice",
                details={"field": "reissue"},
            )
        copy = _copy_as_draft(invoice, now)
        copy_event = new_event(
            copy.id, "invoice.created", actor, now, to_status="draft", data={"reissue_of": invoice.id}
        )
        new_draft = copy

        def add_copy(tx: Any) -> None:
            svc.repo.save_linked_draft(tx, new_draft, copy_event)

        extra.append(add_copy)
    event = new_event(
        invoice.id,
        "invoice.voided",
        actor,
        now,
        from_status=invoice.status.value,
        to_status="void",
        data={"reissued_as": copy.id} if copy else {},
    )
    svc.repo.transition(
        invoice=invoice,
        target=InvoiceStatus.VOID,
        allowed_from=sources_of(InvoiceStatus.VOID),
        timestamp_field="voided_at",
        at=now,
        event=event,
        extra=extra,
        reissued_as=copy.id if copy else None,
    )
    logger.info("invoice voided", extra={"invoice_id": invoice_id, "reissued": bool(copy)})
    return svc.repo.get_invoice(invoice_id), (svc.repo.get_invoice(copy.id) if copy else None)


def mark_uncollectible(
    svc: Services, actor: Actor, invoice_id: str, *, event_data: dict[str, object] | None = None
) -> Invoice:
    """`event_data` goes into the audit event (dunning records its rule and day there)."""
    invoice = svc.repo.get_invoice(invoice_id)
    ensure_transition(invoice.status, InvoiceStatus.UNCOLLECTIBLE)
    now = clock.iso(clock.now())
    event = new_event(
        invoice.id,
        "invoice.marked_uncollectible",
        actor,
        now,
        from_status=invoice.status.value,
        to_status="uncollectible",
        data=event_data,
    )
    svc.repo.transition(
        invoice=invoice,
        target=InvoiceStatus.UNCOLLECTIBLE,
        allowed_from=sources_of(InvoiceStatus.UNCOLLECTIBLE),
        timestamp_field="marked_uncollectible_at",
        at=now,
        event=event,
    )
    return svc.repo.get_invoice(invoice_id)
