"""Finalization, decided without I/O: what a draft becomes, and everything its one transaction writes.

`freeze` turns a draft into the issued invoice (frozen totals and per-line tax, the customer
snapshot, the USD value, the due date); `plan` adds the number and decides the rest:

1. the customer's balance in the invoice's currency pays it down (`balance_to_apply`);
2. nothing left to pay means paid at once (`settle_if_nothing_due`), with no payment link;
3. the events, in the order the audit trail reads: `invoice.finalized`, then
   `invoice.customer_balance_applied`, then `invoice.paid` (reason `nothing_due`).

The use case (use_cases/finalize.py) reads, calls these, and hands the plan to one unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from invoicing.domain.balance import BalanceChange
from invoicing.domain.credit import BalanceTransaction, balance_to_apply
from invoicing.domain.customer import Customer
from invoicing.domain.events import Actor, InvoiceEvent, new_event
from invoicing.domain.invoice import (
    Invoice,
    InvoiceStatus,
    LineTax,
    Totals,
    due_date_for,
    settle_if_nothing_due,
)
from invoicing.domain.numbering import INVOICE_PREFIX, NumberClaim
from invoicing.domain.payments import PAYABLE_STATUSES
from invoicing.ids import new_id


@dataclass(frozen=True)
class UsdValue:
    """The total in USD, locked at finalization with the rate it was converted at."""

    cents: int
    rate: Decimal
    source: str
    as_of: str


@dataclass(frozen=True)
class FinalizePlan:
    """Everything one finalization writes, in one transaction."""

    draft: Invoice
    invoice: Invoice  # as issued: numbered, open (or paid when nothing is due)
    claim: NumberClaim
    events: tuple[InvoiceEvent, ...]
    balance_change: BalanceChange | None

    @property
    def needs_link(self) -> bool:
        """A payment link only for something left to pay."""
        return self.invoice.status in PAYABLE_STATUSES and self.invoice.amount_remaining_cents > 0


def freeze(
    draft: Invoice,
    customer: Customer,
    taxes: dict[str, LineTax],
    totals: Totals,
    usd: UsdValue,
    now: datetime,
    at: str,
) -> Invoice:
    """The draft as issued, not yet numbered: `at` is `now` as stored (clock.iso)."""
    return replace(
        draft,
        status=InvoiceStatus.OPEN,
        finalized_at=at,
        updated_at=at,
        version=draft.version + 1,
        due_date=due_date_for(now.date(), draft.days_until_due, draft.due_date),
        subtotal_cents=totals.subtotal_cents,
        tax_cents=totals.tax_cents,
        total_cents=totals.total_cents,
        amount_paid_cents=0,
        amount_remaining_cents=totals.total_cents,
        usd_total_cents=usd.cents,
        fx_rate=usd.rate,
        fx_rate_source=usd.source,
        fx_rate_as_of=usd.as_of,
        customer=customer.snapshot(),
        line_taxes=taxes,
        # each line shows its frozen result, as a finalized invoice reads back (store/mapping.py)
        lines=tuple(replace(line, tax=taxes.get(line.id, LineTax.none())) for line in draft.lines),
        pdf_status="pending",
        # its link (finalize issues one when something is due) is named on the header: none yet
        links_tracked=True,
        active_link_id=None,
        active_link_expires_at=None,
    )


def plan(draft: Invoice, frozen: Invoice, customer: Customer, year: int, sequence: int, actor: Actor) -> FinalizePlan:
    """Number `frozen` with `sequence` of `year`, apply the balance read with `customer` (that read
    is the balance write's condition), settle when nothing is due, and make the events."""
    at = frozen.finalized_at
    assert at is not None
    claim = NumberClaim(draft.customer_id, INVOICE_PREFIX, year, sequence)
    numbered = replace(frozen, invoice_number=claim.number)
    events = [
        new_event(
            draft.id,
            "invoice.finalized",
            actor,
            at,
            from_status="draft",
            to_status="open",
            data={
                "invoice_number": numbered.invoice_number,
                "total_cents": numbered.total_cents,
                "currency": draft.currency,
                "usd_total_cents": numbered.usd_total_cents,
            },
        )
    ]
    invoice, change, applied_event = _apply_balance(draft, numbered, customer, actor)
    if applied_event is not None:
        events.append(applied_event)
    settled = settle_if_nothing_due(invoice)
    if settled is not invoice:
        invoice = settled
        events.append(
            new_event(
                draft.id,
                "invoice.paid",
                actor,
                at,
                from_status=InvoiceStatus.OPEN.value,
                to_status=InvoiceStatus.PAID.value,
                data={"reason": "nothing_due", "total_cents": invoice.total_cents, "currency": draft.currency},
            )
        )
    return FinalizePlan(draft=draft, invoice=invoice, claim=claim, events=tuple(events), balance_change=change)


def _apply_balance(
    draft: Invoice, finalized: Invoice, customer: Customer, actor: Actor
) -> tuple[Invoice, BalanceChange | None, InvoiceEvent | None]:
    """The customer's balance in the invoice's currency pays the new invoice down; fully covered
    means paid at once (as Stripe does)."""
    balance = customer.balances.get(finalized.currency, 0)
    applied = balance_to_apply(balance, finalized.amount_remaining_cents)
    if not applied:
        return finalized, None, None
    at = finalized.finalized_at
    assert at is not None
    remaining = finalized.amount_remaining_cents - applied
    paid = remaining == 0
    adjusted = replace(
        finalized,
        starting_balance_cents=balance,
        applied_balance_cents=applied,
        amount_remaining_cents=remaining,
        status=InvoiceStatus.PAID if paid else finalized.status,
        paid_at=at if paid else finalized.paid_at,
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
            created_at=at,
            actor=actor.principal,
            invoice_id=draft.id,
        ),
    )
    event = new_event(
        draft.id,
        "invoice.customer_balance_applied",
        actor,
        at,
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
    return adjusted, change, event
