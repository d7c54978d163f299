"""Finalize, the use case, on the in-memory unit of work (no moto): what one finalization writes, in
which order its events read, and what a lost race does."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine

from invoicing.domain.events import Actor
from invoicing.domain.invoice import InvoiceStatus
from invoicing.errors import ConcurrentModification, Conflict, InvoiceNotDraft, NumberTaken, StaleBalance
from invoicing.store import retry
from invoicing.use_cases.finalize import finalize_invoice
from tests.support.fakes import customer, draft, fake_services

ACTOR = Actor("api_key:test")


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.time, "sleep", lambda _s: None)


@pytest.fixture
def svc():  # type: ignore[no-untyped-def]
    svc = fake_services()
    svc.memory.put_customer(customer())
    return svc


def kinds(writes: list[tuple[str, object]]) -> list[str]:
    return [kind for kind, _ in writes]


def test_one_transaction_holds_the_number_the_invoice_its_event_and_the_link(svc) -> None:  # type: ignore[no-untyped-def]
    # Given a draft of 10.00 and a customer without balance
    svc.memory.put_invoice(draft("in_1", "cus_1", 1000))
    # When it is finalized
    finalized = finalize_invoice(svc, ACTOR, "in_1")
    # Then one unit of work committed the number, the invoice, its event and a payment link
    (writes,) = svc.memory.commits
    assert kinds(writes) == ["claim_number", "finalize", "add_event", "add_link"]
    assert finalized.invoice.status is InvoiceStatus.OPEN
    assert finalized.invoice.invoice_number is not None and finalized.invoice.invoice_number.endswith("-00001")
    assert finalized.invoice.amount_remaining_cents == 1000
    assert svc.memory.events_of("in_1") == ["invoice.finalized"]
    # and the link's URL (with its token) is returned once, under the configured public base URL
    assert finalized.link is not None and finalized.link.url.startswith("https://pay.example.test/pay/")
    assert svc.memory.links == [finalized.link.link]
    # and the invoice names it as its one active link (a reminder decides from the header)
    assert finalized.invoice.links_tracked
    assert finalized.invoice.active_link_id == finalized.link.link.id
    assert finalized.invoice.active_link_expires_at == finalized.link.link.expires_at
    # and the PDF job is queued after the commit
    assert [job["invoice_id"] for job in svc.render_queue.sent] == ["in_1"]


def test_the_invoice_goes_on_the_due_index_at_its_first_step_in_its_customers_zone() -> None:
    # Given a customer in Tokyo and a draft due 30 days after it is finalized (the default steps
    # upcoming -7, due 0, overdue +3)
    svc = fake_services()
    svc.memory.put_customer(customer(timezone="Asia/Tokyo"))
    svc.memory.put_invoice(draft("in_1", "cus_1", 1000))
    # When it is finalized on 2026-03-01 at 20:00 UTC (already 2 March in Tokyo)
    with time_machine.travel(datetime(2026, 3, 1, 20, 0, tzinfo=UTC), tick=False):
        finalized = finalize_invoice(svc, ACTOR, "in_1")
    # Then it is due on 31 March (30 days from its local issue day) and the run first looks at it
    # when 24 March begins in Tokyo: 23 March, 15:00 UTC
    assert finalized.invoice.due_date == date(2026, 3, 31)
    assert svc.memory.remind_at["in_1"] == datetime(2026, 3, 23, 15, 0, tzinfo=UTC)


def test_numbers_follow_the_counter(svc) -> None:  # type: ignore[no-untyped-def]
    svc.memory.sequences[("cus_1", "INV", _year())] = 42
    svc.memory.put_invoice(draft("in_1", "cus_1"))
    assert finalize_invoice(svc, ACTOR, "in_1").invoice.invoice_number == f"INV-{_year()}-00042"
    assert svc.memory.sequences[("cus_1", "INV", _year())] == 43


def test_a_balance_covering_everything_pays_the_invoice_at_once(svc) -> None:  # type: ignore[no-untyped-def]
    # Given a customer with 25.00 of balance and a draft of 10.00
    svc.memory.put_customer(customer(balances={"USD": 2500}))
    svc.memory.put_invoice(draft("in_1", "cus_1", 1000))
    # When it is finalized
    finalized = finalize_invoice(svc, ACTOR, "in_1")
    # Then it is paid with the balance, in the same transaction, and gets no link
    (writes,) = svc.memory.commits
    assert kinds(writes) == ["claim_number", "finalize", "add_event", "add_event", "change_balance"]
    assert finalized.invoice.status is InvoiceStatus.PAID and finalized.link is None
    assert finalized.invoice.links_tracked and finalized.invoice.active_link_id is None
    assert (finalized.invoice.applied_balance_cents, finalized.invoice.amount_remaining_cents) == (1000, 0)
    assert svc.memory.events_of("in_1") == ["invoice.finalized", "invoice.customer_balance_applied"]
    assert svc.memory.customers["cus_1"].balances == {"USD": 1500}


def test_a_partial_balance_lowers_the_amount_due_and_still_gets_a_link(svc) -> None:  # type: ignore[no-untyped-def]
    svc.memory.put_customer(customer(balances={"USD": 400}))
    svc.memory.put_invoice(draft("in_1", "cus_1", 1000))
    finalized = finalize_invoice(svc, ACTOR, "in_1")
    assert finalized.invoice.status is InvoiceStatus.OPEN and finalized.invoice.amount_remaining_cents == 600
    assert finalized.link is not None
    assert svc.memory.customers["cus_1"].balances == {"USD": 0}


def test_nothing_due_means_paid_with_a_nothing_due_event_after_the_finalized_one(svc) -> None:  # type: ignore[no-untyped-def]
    svc.memory.put_invoice(draft("in_1", "cus_1", 0))
    finalized = finalize_invoice(svc, ACTOR, "in_1")
    assert finalized.invoice.status is InvoiceStatus.PAID and finalized.link is None
    assert finalized.invoice.links_tracked and finalized.invoice.active_link_id is None
    assert finalized.invoice.paid_at == finalized.invoice.finalized_at
    assert svc.memory.events_of("in_1") == ["invoice.finalized", "invoice.paid"]
    assert svc.memory.events[-1].data["reason"] == "nothing_due"


def test_a_lost_number_reads_only_the_counter_again(svc) -> None:  # type: ignore[no-untyped-def]
    # Given another finalization of the same customer takes the number first
    svc.memory.put_invoice(draft("in_1", "cus_1"))
    svc.memory.lose_next(NumberTaken("cus_1"))
    # When finalizing
    finalize_invoice(svc, ACTOR, "in_1")
    # Then the draft and the batch (customer, counter, rates) were read once, the counter alone once
    # more, and one commit landed; the invoice returned is the committed one, not read again
    assert [r.split()[0] for r in svc.memory.reads] == ["invoice", "finalize", "sequence"]
    assert len(svc.memory.commits) == 1


def test_one_finalize_reads_twice_and_writes_once(svc) -> None:  # type: ignore[no-untyped-def]
    # the draft (a Query) and one BatchGetItem for everything else, then one transaction
    svc.memory.put_invoice(draft("in_1", "cus_1"))
    finalized = finalize_invoice(svc, ACTOR, "in_1")
    assert [r.split()[0] for r in svc.memory.reads] == ["invoice", "finalize"]
    assert len(svc.memory.commits) == 1
    assert finalized.invoice == svc.memory.invoices["in_1"]  # the response is what was committed


def test_a_moved_balance_starts_again_from_the_reads(svc) -> None:  # type: ignore[no-untyped-def]
    svc.memory.put_customer(customer(balances={"USD": 400}))
    svc.memory.put_invoice(draft("in_1", "cus_1"))
    svc.memory.lose_next(StaleBalance("moved"))
    finalize_invoice(svc, ACTOR, "in_1")
    assert sum(r.startswith("finalize inputs") for r in svc.memory.reads) == 2
    assert len(svc.memory.commits) == 1


def test_gives_up_after_the_configured_attempts_and_writes_nothing(svc) -> None:  # type: ignore[no-untyped-def]
    svc.memory.put_invoice(draft("in_1", "cus_1"))
    svc.memory.lose_next(*[StaleBalance("moved") for _ in range(svc.settings.finalize_max_attempts)])
    with pytest.raises(ConcurrentModification):
        finalize_invoice(svc, ACTOR, "in_1")
    assert svc.memory.commits == [] and svc.memory.events == [] and svc.render_queue.sent == []


def test_bad_input_writes_nothing(svc) -> None:  # type: ignore[no-untyped-def]
    # a draft without lines, a negative total, an invoice that is no longer a draft
    svc.memory.put_invoice(draft("in_empty", "cus_1", lines=()))
    svc.memory.put_invoice(draft("in_negative", "cus_1", -500))
    for invoice_id, code in (("in_empty", "invoice_has_no_lines"), ("in_negative", "invoice_total_below_zero")):
        with pytest.raises(Conflict) as refused:  # the draft's content refuses: 409
            finalize_invoice(svc, ACTOR, invoice_id)
        assert refused.value.code == code
    svc.memory.put_invoice(draft("in_open", "cus_1", status=InvoiceStatus.OPEN))
    with pytest.raises(InvoiceNotDraft):
        finalize_invoice(svc, ACTOR, "in_open")
    assert svc.memory.commits == [] and svc.memory.sequences == {} and svc.render_queue.sent == []


def test_a_draft_edited_meanwhile_is_read_again(svc) -> None:  # type: ignore[no-untyped-def]
    # Given the draft's version moves between the read and the commit (an edit won)
    svc.memory.put_invoice(draft("in_1", "cus_1"))
    real_get = svc.repo.get_invoice
    edits = iter([True])

    def get_then_edit(invoice_id: str, *, consistent: bool = True):  # type: ignore[no-untyped-def]
        invoice = real_get(invoice_id)
        if next(edits, False):
            from dataclasses import replace

            svc.memory.put_invoice(replace(invoice, version=invoice.version + 1))
        return invoice

    svc.repo.get_invoice = get_then_edit
    # When finalizing: the first commit is refused (StaleInvoice), the second, from a fresh read, lands
    finalized = finalize_invoice(svc, ACTOR, "in_1")
    assert finalized.invoice.status is InvoiceStatus.OPEN and len(svc.memory.commits) == 1


def _year() -> int:
    from invoicing import clock

    return clock.now().year
