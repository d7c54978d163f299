"""The credit-note and customer-balance rules (domain/credit.py), stated as properties.

A pure model applies random sequences of finalizations, payments, credit notes and voids through the
domain functions only, the way the use cases do, and checks after every step: no invoice is ever
over-credited or over-refunded, the balance ledger sums to the customer's balance, and each
invoice's amounts stay consistent (total = paid + remaining + pre-payment credit + applied balance).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoicing.domain.credit import (
    CreditBalanceConsumed,
    CreditExceedsCreditable,
    CreditMethod,
    CreditNoteNotVoidable,
    CreditNoteStatus,
    LineCredit,
    balance_to_apply,
    compute_credit,
    ensure_voidable,
    proportional_tax,
    split_credit,
)
from invoicing.domain.invoice import Invoice, InvoiceLine, InvoiceStatus, LineTax
from invoicing.domain.payments import PaymentExceedsAmountDue, apply_payment
from invoicing.domain.refunds import RefundExceedsPaid, allocate_refund
from invoicing.errors import Conflict, InvoiceNotOpen


def _invoice(total: int, status: InvoiceStatus = InvoiceStatus.OPEN, **extra) -> Invoice:
    return Invoice(
        id="in_1",
        customer_id="cus_1",
        status=status,
        currency="USD",
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        total_cents=total,
        amount_remaining_cents=total if status is not InvoiceStatus.DRAFT else 0,
        **extra,
    )


# ---------------------------------------------------------------- examples
def test_proportional_tax_rounds_half_up_once():
    assert proportional_tax(1001, 10005, 3335) == 334  # 333.67
    assert proportional_tax(1001, 11006, 1100) == 100  # 100.05
    assert proportional_tax(1, 2, 1) == 1  # 0.5 -> 1
    assert proportional_tax(100, 0, 50) == 0


def test_line_credit_takes_the_frozen_tax_in_proportion():
    line = InvoiceLine(
        id="il_1",
        description="Seat",
        quantity=Decimal("3"),
        unit_amount_cents=3335,
        tax=LineTax(tax_rate_id="txr", percentage=Decimal("10"), inclusive=False, tax_cents=1001),
    )
    inv = replace(_invoice(11006), lines=(line,), tax_cents=1001, subtotal_cents=10005)
    amounts = compute_credit(inv, amount_cents=None, lines=[LineCredit(line_id="il_1", quantity=Decimal("1"))])
    assert (amounts.subtotal_cents, amounts.tax_cents, amounts.total_cents) == (3335, 334, 3669)
    whole = compute_credit(inv, amount_cents=None, lines=[LineCredit(line_id="il_1", quantity=Decimal("3"))])
    assert whole.total_cents == 11006 and whole.tax_cents == 1001
    with pytest.raises(Conflict) as over:  # more than the line holds: its state, a 409
        compute_credit(inv, amount_cents=None, lines=[LineCredit(line_id="il_1", quantity=Decimal("3.0001"))])
    assert over.value.code == "credit_exceeds_line"


def test_inclusive_line_credit_keeps_the_tax_inside():
    line = InvoiceLine(
        id="il_1",
        description="Box",
        quantity=Decimal("1"),
        unit_amount_cents=11900,
        tax=LineTax(tax_rate_id="txr", percentage=Decimal("19"), inclusive=True, tax_cents=1900),
    )
    inv = replace(_invoice(11900), lines=(line,), tax_cents=1900)
    amounts = compute_credit(inv, amount_cents=None, lines=[LineCredit(line_id="il_1", quantity=Decimal("0.5"))])
    assert (amounts.total_cents, amounts.tax_cents, amounts.subtotal_cents) == (5950, 950, 5000)


def test_statuses():
    with pytest.raises(InvoiceNotOpen):
        split_credit(_invoice(100, InvoiceStatus.DRAFT), 1, CreditMethod.OUT_OF_BAND, 0)
    with pytest.raises(Conflict) as err:
        split_credit(_invoice(100, InvoiceStatus.VOID), 1, CreditMethod.OUT_OF_BAND, 0)
    assert err.value.code == "invoice_void"


def test_open_credit_settles_when_it_reaches_the_amount_due():
    split = split_credit(_invoice(100), 100, CreditMethod.CUSTOMER_BALANCE, 0)
    assert split.settles_invoice and split.pre_payment_cents == 100 and split.balance_cents == 0


def test_allocate_refund_newest_first():
    assert allocate_refund([("a", 40), ("b", 60)], 80) == [("b", 60), ("a", 20)]
    with pytest.raises(RefundExceedsPaid):
        allocate_refund([("a", 10)], 11)


@given(st.integers(-100, 10**6), st.integers(-100, 10**6))
def test_balance_to_apply_is_bounded(balance, due):
    applied = balance_to_apply(balance, due)
    assert 0 <= applied <= max(0, balance) and applied <= max(0, due)
    if balance > 0 and due > 0:
        assert applied == min(balance, due)


@given(st.integers(1, 10**9), st.integers(0, 10**9), st.integers(1, 10**9))
def test_proportional_tax_never_exceeds_the_tax(tax, extra, part):
    base = tax + extra
    part = min(part, base)
    assert 0 <= proportional_tax(tax, base, part) <= tax


# ---------------------------------------------------------------- the model
@dataclass
class Note:
    invoice: int
    total: int
    pre: int
    post: int
    balance: int
    refund: int
    status: CreditNoteStatus = CreditNoteStatus.ISSUED


@dataclass
class Model:
    invoices: list[Invoice]
    notes: list[Note]
    balance: int
    ledger: list[int]

    def check(self) -> None:
        assert self.balance >= 0
        assert sum(self.ledger) == self.balance
        for i, inv in enumerate(self.invoices):
            issued = [n for n in self.notes if n.invoice == i and n.status is CreditNoteStatus.ISSUED]
            assert inv.credited_cents == sum(n.total for n in issued) <= inv.total_cents
            assert inv.pre_payment_credited_cents == sum(n.pre for n in issued)
            assert inv.post_payment_credited_cents == sum(n.post for n in issued)
            assert 0 <= inv.refunded_cents <= inv.amount_paid_cents
            assert inv.amount_remaining_cents >= 0
            assert inv.total_cents == (
                inv.amount_paid_cents
                + inv.amount_remaining_cents
                + inv.pre_payment_credited_cents
                + inv.applied_balance_cents
            )
            assert (inv.status is InvoiceStatus.PAID) == (inv.amount_remaining_cents == 0)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("finalize"), st.integers(0, 20000)),
        st.tuples(st.just("pay"), st.integers(0, 20), st.integers(1, 20000)),
        st.tuples(st.just("credit"), st.integers(0, 20), st.integers(1, 20000), st.sampled_from(list(CreditMethod))),
        st.tuples(st.just("void"), st.integers(0, 40)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_random_sequences_keep_every_invariant(steps):
    m = Model(invoices=[], notes=[], balance=0, ledger=[])
    for step in steps:
        kind = step[0]
        if kind == "finalize":
            inv = _invoice(step[1])
            applied = balance_to_apply(m.balance, inv.amount_remaining_cents)
            if applied:
                m.balance -= applied
                m.ledger.append(-applied)
                remaining = inv.amount_remaining_cents - applied
                inv = replace(
                    inv,
                    starting_balance_cents=m.balance + applied,
                    applied_balance_cents=applied,
                    amount_remaining_cents=remaining,
                    status=InvoiceStatus.PAID if remaining == 0 else inv.status,
                )
            elif inv.total_cents == 0:
                inv = replace(inv, status=InvoiceStatus.PAID)  # the model's shortcut: nothing due
            m.invoices.append(inv)
        elif kind == "pay" and m.invoices:
            i = step[1] % len(m.invoices)
            inv = m.invoices[i]
            try:
                app = apply_payment(inv, step[2])
            except (PaymentExceedsAmountDue, Conflict):
                continue
            m.invoices[i] = replace(
                inv,
                amount_paid_cents=app.paid_after,
                amount_remaining_cents=app.remaining_after,
                status=InvoiceStatus.PAID if app.becomes_paid else inv.status,
            )
        elif kind == "credit" and m.invoices:
            i = step[1] % len(m.invoices)
            inv = m.invoices[i]
            try:
                split = split_credit(inv, step[2], step[3], inv.refunded_cents)
            except (CreditExceedsCreditable, RefundExceedsPaid):
                continue
            m.notes.append(
                Note(
                    i,
                    step[2],
                    split.pre_payment_cents,
                    split.post_payment_cents,
                    split.balance_cents,
                    split.refund_cents,
                )
            )
            if split.balance_cents:
                m.balance += split.balance_cents
                m.ledger.append(split.balance_cents)
            m.invoices[i] = replace(
                inv,
                credited_cents=inv.credited_cents + step[2],
                pre_payment_credited_cents=inv.pre_payment_credited_cents + split.pre_payment_cents,
                post_payment_credited_cents=inv.post_payment_credited_cents + split.post_payment_cents,
                amount_remaining_cents=inv.amount_remaining_cents - split.pre_payment_cents,
                refunded_cents=inv.refunded_cents + split.refund_cents,
                status=InvoiceStatus.PAID if split.settles_invoice else inv.status,
            )
        elif kind == "void" and m.notes:
            n = m.notes[step[1] % len(m.notes)]
            inv = m.invoices[n.invoice]
            try:
                ensure_voidable(
                    status=n.status,
                    invoice=inv,
                    pre_payment_cents=n.pre,
                    refund_cents=n.refund,
                    balance_cents=n.balance,
                    customer_balance_cents=m.balance,
                )
            except (CreditNoteNotVoidable, CreditBalanceConsumed):
                continue
            n.status = CreditNoteStatus.VOID
            if n.balance:
                m.balance -= n.balance
                m.ledger.append(-n.balance)
            m.invoices[n.invoice] = replace(
                inv,
                credited_cents=inv.credited_cents - n.total,
                pre_payment_credited_cents=inv.pre_payment_credited_cents - n.pre,
                post_payment_credited_cents=inv.post_payment_credited_cents - n.post,
                amount_remaining_cents=inv.amount_remaining_cents + n.pre,
            )
        m.check()
