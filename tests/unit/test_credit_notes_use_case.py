"""Issuing a credit note, the use case, on in-memory fakes (no moto): the amounts it moves, the
number it takes, the balance it adds, and what a lost race does."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from invoicing.domain.credit import CreditMethod, CreditReason
from invoicing.domain.events import Actor
from invoicing.domain.invoice import InvoiceStatus
from invoicing.errors import Conflict
from invoicing.store import retry
from invoicing.store.writes.credit import CreditNoteRace
from invoicing.use_cases.credit_notes import IssueCreditNote, issue_credit_note
from tests.support.fakes import FakeCreditNoteStore, customer, draft, fake_services

ACTOR = Actor("api_key:test")


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.time, "sleep", lambda _s: None)


@pytest.fixture
def svc():  # type: ignore[no-untyped-def]
    svc = fake_services()
    svc.credit_note_store = FakeCreditNoteStore(svc.memory)
    svc.memory.put_customer(customer(balances={"USD": 300}))
    return svc


def issued(svc, *, status: InvoiceStatus, paid: int = 0):  # type: ignore[no-untyped-def]
    """An issued invoice of 150.00, `paid` of it paid."""
    return svc.memory.put_invoice(
        replace(
            draft("in_1", "cus_1", 15000),
            status=status,
            invoice_number="INV-2026-00001",
            subtotal_cents=15000,
            total_cents=15000,
            amount_paid_cents=paid,
            amount_remaining_cents=15000 - paid,
            due_date=date(2026, 12, 1),
            version=2,
        )
    )


def credit(svc, amount: int, method: CreditMethod):  # type: ignore[no-untyped-def]
    cmd = IssueCreditNote(reason=CreditReason.OTHER, method=method, amount_cents=amount)
    return issue_credit_note(svc, ACTOR, "in_1", cmd)


def test_on_an_open_invoice_the_credit_lowers_the_amount_due_first(svc) -> None:  # type: ignore[no-untyped-def]
    issued(svc, status=InvoiceStatus.OPEN)
    note = credit(svc, 2000, CreditMethod.OUT_OF_BAND)
    invoice = svc.memory.invoices["in_1"]
    assert (note.pre_payment_cents, note.post_payment_cents) == (2000, 0)
    assert (invoice.credited_cents, invoice.amount_remaining_cents, invoice.status) == (2000, 13000, InvoiceStatus.OPEN)
    assert note.number.startswith("CN-") and note.number.endswith("-00001")
    assert svc.memory.events_of("in_1") == ["invoice.credit_note_issued"]
    assert [job["kind"] for job in svc.render_queue.sent] == ["credit_note_pdf"]


def test_on_a_paid_invoice_a_balance_credit_adds_to_the_customers_balance(svc) -> None:  # type: ignore[no-untyped-def]
    issued(svc, status=InvoiceStatus.PAID, paid=15000)
    credit(svc, 5000, CreditMethod.CUSTOMER_BALANCE)
    (writes,) = svc.memory.commits
    assert [kind for kind, _ in writes] == ["issue_credit_note", "claim_number", "change_balance", "add_event"]
    assert svc.memory.customers["cus_1"].balances == {"USD": 5300}


def test_a_credit_that_clears_the_amount_due_pays_the_invoice(svc) -> None:  # type: ignore[no-untyped-def]
    issued(svc, status=InvoiceStatus.OPEN)
    credit(svc, 15000, CreditMethod.OUT_OF_BAND)
    assert svc.memory.invoices["in_1"].status is InvoiceStatus.PAID
    assert svc.memory.events[-1].to_status == "paid"


def test_more_than_the_invoice_is_refused_and_writes_nothing(svc) -> None:  # type: ignore[no-untyped-def]
    issued(svc, status=InvoiceStatus.OPEN)
    with pytest.raises(Conflict) as refused:
        credit(svc, 15001, CreditMethod.OUT_OF_BAND)
    assert refused.value.code == "credit_exceeds_creditable"
    assert svc.memory.commits == [] and svc.memory.sequences == {}


def test_a_lost_race_is_read_and_decided_again(svc) -> None:  # type: ignore[no-untyped-def]
    issued(svc, status=InvoiceStatus.OPEN)
    svc.memory.lose_next(CreditNoteRace("moved"))
    credit(svc, 2000, CreditMethod.OUT_OF_BAND)
    assert len(svc.memory.commits) == 1 and svc.memory.invoices["in_1"].credited_cents == 2000
