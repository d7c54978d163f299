"""The unit of work's commit, without a table: which domain error a cancelled transaction becomes
(matched by item key, ranked, conflicts), and the objects as they are after the change."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pynamodb.exceptions import TransactWriteError

from invoicing.domain.events import Actor
from invoicing.domain.invoice import InvoiceStatus, mark_uncollectible
from invoicing.domain.numbering import NumberClaim
from invoicing.domain.payments import Payment, PaymentAlreadyRecorded, PaymentMethod, PaymentSource, apply_payment
from invoicing.errors import InvalidTransition, NumberTaken, StaleInvoice, WriteConflict
from invoicing.store import keys
from invoicing.store.uow import Skipped, UnitOfWork
from invoicing.store.writes.payments import InvoiceNotPayableNow
from tests.support.fakes import draft

AT = "2026-03-01T00:00:00.000Z"


class Cancelled:
    """A transaction that DynamoDB cancels: `failed` keys failed their condition, `conflict` says
    another transaction was writing one of the items."""

    def __init__(self, failed: set[keys.Key], conflict: bool = False) -> None:
        self._failed = failed
        self._conflict = conflict
        self.calls: list[str] = []

    def __enter__(self) -> Cancelled:
        return self

    def __exit__(self, *exc: object) -> None:
        raise TransactWriteError("cancelled")

    def __getattr__(self, name: str) -> Any:  # save, update, delete, condition_check
        return lambda *a, **k: self.calls.append(name)

    def failed(self, exc: Exception) -> set[keys.Key]:
        return self._failed

    def conflicted(self, exc: Exception) -> bool:
        return self._conflict


class Repo:
    def __init__(self, tx: Any, header: Any = None) -> None:
        self.tx = tx
        self.header = header

    def transaction(self) -> Any:
        return self.tx

    def draft_conflict(self, invoice_id: str) -> Exception:
        return StaleInvoice(invoice_id)

    def get_invoice_header(self, invoice_id: str) -> Any:
        if self.header is None:
            raise AssertionError("not read here")
        return self.header

    def purge_invoice_items(self, invoice_id: str) -> None:
        raise AssertionError("not purged here")


def open_invoice() -> Any:
    return replace(draft("in_1"), status=InvoiceStatus.OPEN, version=3, total_cents=1000, amount_remaining_cents=1000)


def payment(amount: int = 1000) -> Payment:
    return Payment(
        id="pay_1",
        invoice_id="in_1",
        amount_cents=amount,
        currency="USD",
        method=PaymentMethod.BANK_TRANSFER,
        reference="",
        paid_at=AT,
        recorded_at=AT,
        actor="api_key:test",
        source=PaymentSource.API,
    )


def pay(tx: UnitOfWork, amount: int = 1000) -> None:
    invoice = open_invoice()
    tx.record_payment(invoice, payment(amount), apply_payment(invoice, amount))


PAYMENT_KEY = (keys.invoice_pk("in_1"), keys.payment_sk("pay_1"))
HEADER = keys.header_key("in_1")
COUNTER = keys.sequence_key("cus_1", "INV", 2026)


def test_a_replayed_payment_says_so_whatever_else_failed() -> None:
    tx = UnitOfWork(Repo(Cancelled({HEADER, PAYMENT_KEY})))
    pay(tx)
    with pytest.raises(PaymentAlreadyRecorded):
        tx.commit()


def test_a_conflict_on_a_payment_means_read_again() -> None:
    tx = UnitOfWork(Repo(Cancelled(set(), conflict=True)))
    pay(tx)
    with pytest.raises(InvoiceNotPayableNow):
        tx.commit()


def test_a_taken_number_alone_is_number_taken_but_yields_to_a_conflict() -> None:
    for conflict, expected in ((False, NumberTaken), (True, WriteConflict)):
        tx = UnitOfWork(Repo(Cancelled({COUNTER}, conflict=conflict)))
        tx.claim_number(NumberClaim("cus_1", "INV", 2026, 7))
        with pytest.raises(expected):
            tx.commit()


def test_a_redelivered_render_is_skipped_not_failed() -> None:
    # the header read again is still at the version the render read: its job id is what failed
    tx = UnitOfWork(Repo(Cancelled({HEADER}), header=open_invoice()))
    tx.pdf_rendered(open_invoice(), key="k", job_id="job_1", requested_at=AT, at=AT)
    with pytest.raises(Skipped):
        tx.commit()


def test_a_render_recorded_after_the_invoice_moved_is_stale_and_bumps_the_version() -> None:
    # Given a render that read the invoice at version 3, which a payment moved to 4 meanwhile
    tx = UnitOfWork(Repo(Cancelled({HEADER}), header=replace(open_invoice(), version=4)))
    tx.pdf_rendered(open_invoice(), key="k", job_id="job_1", requested_at=AT, at=AT)
    # Then its invoice after the change is one version on (its event's sequence is its own)
    assert [(c.kind, c.version) for c in tx.changes] == [("invoice", 4)]
    # and the cancelled write is StaleInvoice (re-read and write again), not a redelivery
    with pytest.raises(StaleInvoice):
        tx.commit()


def test_nothing_is_sent_when_the_block_raises() -> None:
    cancelled = Cancelled(set())
    with pytest.raises(RuntimeError), UnitOfWork(Repo(cancelled)) as tx:
        pay(tx)
        raise RuntimeError("decided otherwise")
    assert cancelled.calls == []


def test_a_change_beyond_one_transaction_is_refused_before_anything_is_sent() -> None:
    from invoicing.domain.events import new_event
    from invoicing.errors import ValidationFailed

    cancelled = Cancelled(set())
    tx = UnitOfWork(Repo(cancelled))
    tx.add_events(*[new_event("in_1", "invoice.updated", Actor("api_key:test"), AT) for _ in range(101)])
    with pytest.raises(ValidationFailed) as refused:
        tx.commit()
    assert refused.value.code == "change_too_large" and cancelled.calls == []


def test_each_write_knows_the_object_after_the_change_and_its_version() -> None:
    tx = UnitOfWork(Repo(Cancelled(set())))
    pay(tx)
    after = {c.kind: c for c in tx.changes}["invoice"]
    assert (after.version, after.after.status, after.after.amount_remaining_cents) == (4, InvoiceStatus.PAID, 0)  # type: ignore[attr-defined]


def test_the_write_off_is_one_rule_for_admins_and_dunning() -> None:
    invoice = open_invoice()
    after, event = mark_uncollectible(invoice, Actor.system("dunning"), AT, data={"reason": "dunning"})
    assert (after.status, after.version, after.marked_uncollectible_at) == (InvoiceStatus.UNCOLLECTIBLE, 4, AT)
    assert (event.from_status, event.to_status, event.data) == ("open", "uncollectible", {"reason": "dunning"})
    with pytest.raises(InvalidTransition):
        mark_uncollectible(replace(invoice, status=InvoiceStatus.PAID), Actor("api_key:x"), AT)
    tx = UnitOfWork(Repo(Cancelled({HEADER})))
    tx.transition(invoice, after)
    tx.add_events(event)
    assert tx.events == [event] and tx.size == 2
    with pytest.raises(StaleInvoice):
        tx.commit()
