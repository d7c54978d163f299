"""Recording a payment, the use case, on in-memory fakes (no moto): what it writes, the rules it
applies before writing, and what a lost race does."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from invoicing.domain.events import Actor
from invoicing.domain.invoice import InvoiceStatus
from invoicing.domain.payments import PaymentMethod
from invoicing.errors import ConcurrentModification, Conflict, InvoiceNotOpen
from invoicing.store import retry
from invoicing.store.writes.payments import InvoiceNotPayableNow
from invoicing.use_cases.payments import RecordPayment, record_payment
from tests.support.fakes import FakePaymentStore, customer, draft, fake_services

ACTOR = Actor("api_key:test")


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.time, "sleep", lambda _s: None)


@pytest.fixture
def svc():  # type: ignore[no-untyped-def]
    svc = fake_services()
    svc.payment_store = FakePaymentStore(svc.memory)
    svc.memory.put_customer(customer())
    # an open invoice of 150.00
    svc.memory.put_invoice(
        replace(
            draft("in_1", "cus_1", 15000),
            status=InvoiceStatus.OPEN,
            invoice_number="INV-2026-00001",
            total_cents=15000,
            amount_remaining_cents=15000,
            due_date=date(2026, 12, 1),
            version=2,
        )
    )
    return svc


def pay(svc, amount: int):  # type: ignore[no-untyped-def]
    return record_payment(svc, ACTOR, "in_1", RecordPayment(amount_cents=amount, method=PaymentMethod.BANK_TRANSFER))


def test_a_partial_payment_lowers_the_amount_due_with_its_event(svc) -> None:  # type: ignore[no-untyped-def]
    payment, invoice = pay(svc, 5000)
    assert (invoice.status, invoice.amount_paid_cents, invoice.amount_remaining_cents) == (
        InvoiceStatus.OPEN,
        5000,
        10000,
    )
    (writes,) = svc.memory.commits
    assert [kind for kind, _ in writes] == ["record_payment", "add_event"]
    assert svc.memory.events[-1].type == "invoice.payment_recorded" and svc.memory.events[-1].to_status is None
    assert payment.amount_cents == 5000


def test_the_payment_that_settles_the_invoice_marks_it_paid(svc) -> None:  # type: ignore[no-untyped-def]
    _, invoice = pay(svc, 15000)
    assert invoice.status is InvoiceStatus.PAID and invoice.paid_at is not None
    assert (svc.memory.events[-1].from_status, svc.memory.events[-1].to_status) == ("open", "paid")


def test_more_than_is_due_is_refused_and_writes_nothing(svc) -> None:  # type: ignore[no-untyped-def]
    # the invoice's amount due (its state) refuses a well-formed amount: 409
    with pytest.raises(Conflict) as refused:
        pay(svc, 15001)
    assert refused.value.code == "payment_exceeds_amount_due"
    assert svc.memory.commits == []


def test_a_draft_takes_no_payment(svc) -> None:  # type: ignore[no-untyped-def]
    svc.memory.put_invoice(draft("in_1", "cus_1"))
    with pytest.raises(InvoiceNotOpen):
        pay(svc, 100)
    assert svc.memory.commits == []


def test_a_lost_race_is_read_and_decided_again(svc) -> None:  # type: ignore[no-untyped-def]
    # Given another payment lands between our read and our write
    svc.memory.lose_next(InvoiceNotPayableNow("moved"))
    _, invoice = pay(svc, 5000)
    # Then the invoice was read again and one payment was written
    assert len(svc.memory.commits) == 1 and invoice.amount_remaining_cents == 10000


def test_an_invoice_that_keeps_moving_is_a_409_with_nothing_written(svc) -> None:  # type: ignore[no-untyped-def]
    svc.memory.lose_next(*[InvoiceNotPayableNow("moved") for _ in range(5)])
    with pytest.raises(ConcurrentModification) as refused:
        pay(svc, 5000)
    assert isinstance(refused.value, Conflict) and svc.memory.commits == []
