"""The unit of work: one use case's writes, typed, committed as one TransactWriteItems.

    with svc.uow() as tx:
        tx.claim_number(claim)
        tx.finalize(draft, finalized)
        tx.add_events(*events)
        tx.change_balance(change)     # optional
        tx.add_link(link)             # optional
    # committed here; nothing is written if the block raised

The typed writes live per aggregate in store/writes/ (invoices, payments, credit, reminders,
customers, rates, API keys, webhook endpoints). Each knows its item's key, its condition, the domain error its condition failing means,
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

from invoicing import clock
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice
from invoicing.domain.webhooks import OutboxEvent
from invoicing.errors import ValidationFailed, WriteConflict
from invoicing.ids import new_id
from invoicing.store.mapping import event_to_item
from invoicing.store.models import EventItem, TableItem
from invoicing.store.transaction import Transaction
from invoicing.store.webhooks import change_event, object_outbox, outbox_to_item
from invoicing.store.writes.api_keys import ApiKeyWrites
from invoicing.store.writes.base import NUMBER, Changed, Skipped
from invoicing.store.writes.billing_runs import BillingRunWrites
from invoicing.store.writes.credit import CreditWrites
from invoicing.store.writes.customers import CustomerWrites
from invoicing.store.writes.payments import PaymentWrites
from invoicing.store.writes.rates import RateWrites
from invoicing.store.writes.reminders import ReminderWrites
from invoicing.store.writes.webhooks import EndpointWrites

TRANSACTION_LIMIT = 100  # DynamoDB's items per TransactWriteItems

__all__ = ["Changed", "Skipped", "Transactions", "UnitOfWork"]


class Transactions(Protocol):
    """What the unit of work needs from the repository."""

    def transaction(self) -> Transaction: ...

    def draft_conflict(self, invoice_id: str) -> Exception: ...

    def get_invoice_header(self, invoice_id: str) -> Invoice: ...

    def purge_invoice_items(self, invoice_id: str) -> None: ...


class UnitOfWork(
    CreditWrites,
    PaymentWrites,
    ReminderWrites,
    CustomerWrites,
    RateWrites,
    ApiKeyWrites,
    EndpointWrites,
    BillingRunWrites,
):
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

    # -- the webhook outbox: one record per public event, in this same transaction
    def add_outbox(self, event: OutboxEvent) -> None:
        """A public event's outbox record: new (its id is the audit event's), 30 days' TTL."""
        item = outbox_to_item(event)

        def op(tx: Transaction) -> None:
            tx.save(item, condition=TableItem.pk.does_not_exist())

        self._add(op)

    def _publish(self) -> None:
        """The outbox records of this unit of work's public events. Each object changed here (its
        last typed write's `changes` entry: an invoice, a credit note, a refund) publishes the public
        events among the audit events about it, carrying it as it is after the change (a deleted draft:
        as it was) and its version after the change; a customer publishes the event its write names.
        An audit event about an object this unit of work did not change publishes nothing."""
        latest: dict[tuple[str, str], Changed] = {}
        for change in self.changes:
            latest[(change.kind, change.id)] = change
        events = tuple(self.events)
        for (kind, _id), change in latest.items():
            subject = change.after if change.after is not None else change.before
            if subject is None or change.version is None:
                continue
            if change.publishes is not None:
                public = change_event(
                    change.publishes, kind, subject, change.version, event_id=new_id("evt"), at=_updated_at(subject)
                )
                if public is not None:
                    self.add_outbox(public)
                continue
            for outbox in object_outbox(events, kind, subject, change.version):
                self.add_outbox(outbox)

    # -- commit
    def commit(self) -> None:
        if self._done:
            raise RuntimeError("this unit of work is already committed")
        self._publish()
        self._done = True
        if not self._ops:
            return
        if len(self._ops) > TRANSACTION_LIMIT:  # DynamoDB would refuse it whole; say so, write nothing
            raise ValidationFailed(
                f"this change writes {len(self._ops)} items; one transaction takes at most {TRANSACTION_LIMIT}",
                code="change_too_large",
            )
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


def _updated_at(subject: object) -> str:
    at = getattr(subject, "updated_at", None)
    return at if isinstance(at, str) else clock.iso(clock.now())
