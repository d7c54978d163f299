"""The unit of work: one use case's writes, typed, committed as one TransactWriteItems.

    with svc.uow() as tx:
        tx.claim_number(claim)
        tx.finalize(draft, finalized)
        tx.add_events(*events)
        tx.change_balance(change)     # optional
        tx.add_link(link)             # optional
    # committed here; nothing is written if the block raised

The typed writes live per aggregate in store/writes/ (invoices, payments, credit, reminders,
customers). Each knows its item's key, its condition, the domain error its condition failing means,
and the object as it is after the change (`tx.changes`). `commit()` matches DynamoDB's cancellation
reasons to items by key (PynamoDB sends a transaction's items grouped by kind, not in call order: see
`Transaction`) and raises that error: `StaleInvoice`, `InvoiceNotDraft`, `StaleBalance`,
`NumberTaken`, `PaymentAlreadyRecorded`, `CreditNoteRace`, ... or `WriteConflict` when another
transaction was writing one of the items at the same moment.

Audit events are written here and nowhere else (`add_events`; tests/unit/test_architecture.py checks
it): the webhook outbox record of an event is one more item beside it, in the same transaction as the
change it reports, built from `changes`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from pynamodb.exceptions import TransactWriteError

from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice
from invoicing.errors import WriteConflict
from invoicing.store.mapping import event_to_item
from invoicing.store.models import EventItem
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import NUMBER, Changed, Skipped
from invoicing.store.writes.credit import CreditWrites
from invoicing.store.writes.customers import CustomerWrites
from invoicing.store.writes.payments import PaymentWrites
from invoicing.store.writes.reminders import ReminderWrites

TRANSACTION_LIMIT = 100  # DynamoDB's items per TransactWriteItems

__all__ = ["Changed", "Skipped", "Transactions", "UnitOfWork"]


class Transactions(Protocol):
    """What the unit of work needs from the repository."""

    def transaction(self) -> Transaction: ...

    def draft_conflict(self, invoice_id: str) -> Exception: ...

    def get_invoice_header(self, invoice_id: str) -> Invoice: ...

    def purge_invoice_items(self, invoice_id: str) -> None: ...


class UnitOfWork(CreditWrites, PaymentWrites, ReminderWrites, CustomerWrites):
    def __init__(self, repo: Transactions) -> None:
        super().__init__()
        self._repo = repo
        self.events: list[InvoiceEvent] = []

    # -- the context manager: commit on a clean exit, discard otherwise
    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None and not self._done:
            self.commit()

    @property
    def size(self) -> int:
        return len(self._ops)

    # -- the audit trail: the one place an event becomes an item
    def add_events(self, *events: InvoiceEvent) -> None:
        for event in events:
            item = event_to_item(event)

            def op(tx: Transaction, item: EventItem = item) -> None:
                tx.save(item)

            self._add(op)
            self.events.append(event)

    # -- commit
    def commit(self) -> None:
        if self._done:
            raise RuntimeError("this unit of work is already committed")
        self._done = True
        if not self._ops:
            return
        tx = self._repo.transaction()
        try:
            with tx:
                for op in self._ops:
                    op(tx)
        except TransactWriteError as exc:
            error = self._error(tx, exc)
            if error is None:
                raise
            raise error from exc
        for after in self._after_commit:
            after()

    def _error(self, tx: Transaction, exc: TransactWriteError) -> Exception | None:
        failed = tx.failed(exc)
        conflicted = tx.conflicted(exc)
        for guard in sorted((g for g in self._guards if g.key in failed), key=lambda g: g.rank):
            if guard.rank == NUMBER and conflicted:
                break
            return guard.error()
        if conflicted:
            for guard in sorted((g for g in self._guards if g.on_conflict), key=lambda g: g.rank):
                return guard.error()
            return WriteConflict("another write to the same items was in flight; retry")
        return None
