"""The unit of work: one use case's writes, typed, committed as one TransactWriteItems.

    with svc.uow() as tx:
        tx.claim_number(claim)
        tx.finalize(draft, finalized)
        tx.add_events(*events)
        tx.change_balance(change)     # optional
        tx.add_link(link)             # optional
    # committed here; nothing is written if the block raised

Each typed write knows its item's key, its condition and the domain error its condition failing
means. `commit()` matches DynamoDB's cancellation reasons to items by key (PynamoDB sends a
transaction's items grouped by kind, not in call order: see `Transaction`) and raises that error:
`StaleInvoice`, `InvoiceNotDraft`, `StaleBalance`, `NumberTaken`, or `WriteConflict` when another
transaction was writing one of the items at the same moment. The webhook outbox record is one more
typed write (`add_outbox`), made by `add_events` from the object after the change, so no change
commits without its public event and no event exists for a change that did not commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.update import Action

from invoicing.domain.balance import BalanceChange
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.domain.numbering import NumberClaim
from invoicing.domain.payments import PaymentLink
from invoicing.domain.webhooks import OutboxEvent
from invoicing.errors import Conflict, NumberTaken, StaleBalance, StaleInvoice, WriteConflict
from invoicing.store import keys
from invoicing.store.mapping import (
    balance_txn_to_item,
    equals_or_absent,
    event_to_item,
    invoice_to_item,
    line_to_item,
    link_create_actions,
    set_value,
    snapshot_to_map,
    tax_to_map,
)
from invoicing.store.models import (
    CustomerItem,
    EventItem,
    InvoiceItem,
    PaymentLinkItem,
    SequenceItem,
    TableItem,
    WebhookEndpointItem,
)
from invoicing.store.webhooks import Endpoint, endpoint_to_item, invoice_outbox, outbox_to_item

if TYPE_CHECKING:
    from invoicing.store.repository import Transaction


class Transactions(Protocol):
    """What the unit of work needs from the repository."""

    def transaction(self) -> Transaction: ...

    def draft_conflict(self, invoice_id: str) -> Exception: ...


# Which failed condition explains a cancelled transaction best, when several did: the invoice itself
# first (a draft that is no longer a draft says more than anything else), then the other items; the
# number last, and only when no transaction conflict was reported (then nothing was stale but the
# number, and taking the next one is enough).
_FIRST, _THEN, _NUMBER = 0, 1, 2


@dataclass(frozen=True)
class _Guard:
    key: keys.Key
    rank: int
    error: Callable[[], Exception]


def paid_actions(paid_at: str) -> list[Action]:
    """An invoice becoming paid: the status, its index row, and off the (sparse, open-only) due index."""
    return [
        InvoiceItem.status.set(InvoiceStatus.PAID.value),
        InvoiceItem.paid_at.set(paid_at),
        InvoiceItem.gsi2pk.set(keys.status_pk(InvoiceStatus.PAID.value)),
        InvoiceItem.due_pk.remove(),
        InvoiceItem.due_sk.remove(),
    ]


class UnitOfWork:
    def __init__(self, repo: Transactions) -> None:
        self._repo = repo
        self._ops: list[Callable[[Transaction], None]] = []
        self._guards: list[_Guard] = []
        self._done = False

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

    def _add(self, op: Callable[[Transaction], None], guard: _Guard | None = None) -> None:
        if self._done:
            raise RuntimeError("this unit of work is already committed")
        self._ops.append(op)
        if guard is not None:
            self._guards.append(guard)

    # -- typed writes
    def claim_number(self, claim: NumberClaim) -> None:
        """The counter must still hold `claim.next_value` (or not exist yet for number 1)."""
        pk, sk = keys.sequence_key(claim.customer_id, claim.kind, claim.year)

        def op(tx: Transaction) -> None:
            if claim.next_value == 1:
                tx.save(
                    SequenceItem(pk, sk, customer_id=claim.customer_id, next_value=2),
                    condition=TableItem.pk.does_not_exist(),
                )
            else:
                tx.update(
                    SequenceItem(pk, sk),
                    actions=[SequenceItem.next_value.set(claim.next_value + 1)],
                    condition=SequenceItem.next_value == claim.next_value,
                )

        self._add(op, _Guard((pk, sk), _NUMBER, lambda: NumberTaken(claim.customer_id)))

    def finalize(self, draft: Invoice, finalized: Invoice) -> None:
        """draft -> open (or paid when nothing is due): the number, the frozen totals, per-line tax,
        the customer snapshot, the USD value, the due and pending-PDF indexes. Conditioned on the
        invoice still being the same draft (`status = draft AND version = :v`)."""
        assert finalized.due_date is not None and finalized.customer is not None
        assert finalized.invoice_number is not None and finalized.finalized_at is not None
        line_taxes = {line_id: tax_to_map(t) for line_id, t in finalized.line_taxes.items()}
        actions: list[Action] = [
            InvoiceItem.version.set(draft.version + 1),
            InvoiceItem.invoice_number.set(finalized.invoice_number),
            InvoiceItem.finalized_at.set(finalized.finalized_at),
            InvoiceItem.updated_at.set(finalized.updated_at),
            InvoiceItem.due_date.set(finalized.due_date.isoformat()),
            InvoiceItem.subtotal_cents.set(finalized.subtotal_cents),
            InvoiceItem.tax_cents.set(finalized.tax_cents),
            InvoiceItem.total_cents.set(finalized.total_cents),
            InvoiceItem.amount_paid_cents.set(finalized.amount_paid_cents),
            InvoiceItem.amount_remaining_cents.set(finalized.amount_remaining_cents),
            InvoiceItem.currency.set(finalized.currency),
            set_value(InvoiceItem.customer_snapshot, snapshot_to_map(finalized.customer)),
            set_value(InvoiceItem.line_taxes, line_taxes) if line_taxes else InvoiceItem.line_taxes.remove(),
            InvoiceItem.pdf_status.set(finalized.pdf_status or "pending"),
            InvoiceItem.pdf_requested_at.set(finalized.finalized_at),
            InvoiceItem.pdf_pk.set(keys.pdf_pending_pk(draft.id)),
            InvoiceItem.pdf_sk.set(f"{finalized.finalized_at}#{draft.id}"),
        ]
        if finalized.status is InvoiceStatus.PAID:
            actions += paid_actions(finalized.paid_at or finalized.finalized_at)
        else:  # the due index is sparse: open invoices only
            actions += [
                InvoiceItem.status.set(InvoiceStatus.OPEN.value),
                InvoiceItem.gsi2pk.set(keys.status_pk(InvoiceStatus.OPEN.value)),
                InvoiceItem.due_pk.set(keys.due_pk(finalized.due_date)),
                InvoiceItem.due_sk.set(draft.id),
            ]
        if finalized.applied_balance_cents or finalized.starting_balance_cents:
            actions += [
                InvoiceItem.starting_balance_cents.set(finalized.starting_balance_cents),
                InvoiceItem.applied_balance_cents.set(finalized.applied_balance_cents),
            ]
        if finalized.usd_total_cents is not None:
            actions += [
                InvoiceItem.usd_total_cents.set(finalized.usd_total_cents),
                InvoiceItem.fx_rate.set(str(finalized.fx_rate)),
                InvoiceItem.fx_rate_source.set(finalized.fx_rate_source or ""),
                InvoiceItem.fx_rate_as_of.set(finalized.fx_rate_as_of or ""),
            ]
        key = keys.header_key(draft.id)

        def op(tx: Transaction) -> None:
            tx.update(
                InvoiceItem(*key),
                actions=actions,
                condition=(InvoiceItem.status == InvoiceStatus.DRAFT.value) & (InvoiceItem.version == draft.version),
            )

        self._add(op, _Guard(key, _FIRST, lambda: self._repo.draft_conflict(draft.id)))

    def transition(
        self,
        invoice: Invoice,
        *,
        target: InvoiceStatus,
        allowed_from: frozenset[InvoiceStatus],
        timestamp_field: str,
        at: str,
        reissued_as: str | None = None,
    ) -> Invoice:
        """Move an issued invoice to `target`; the condition re-checks the source status and version.
        Returns the invoice as it is after the change (the subject of its events)."""
        actions: list[Action] = [
            InvoiceItem.status.set(target.value),
            InvoiceItem.version.set(invoice.version + 1),
            InvoiceItem.updated_at.set(at),
            getattr(InvoiceItem, timestamp_field).set(at),
            InvoiceItem.gsi2pk.set(keys.status_pk(target.value)),
        ]
        if target is not InvoiceStatus.OPEN:
            actions += [InvoiceItem.due_pk.remove(), InvoiceItem.due_sk.remove()]
        if reissued_as:
            actions.append(InvoiceItem.reissued_as.set(reissued_as))
        condition = InvoiceItem.status.is_in(*[s.value for s in allowed_from]) & (
            InvoiceItem.version == invoice.version
        )
        key = keys.header_key(invoice.id)

        def op(tx: Transaction) -> None:
            tx.update(InvoiceItem(*key), actions=actions, condition=condition)

        self._add(op, _Guard(key, _FIRST, lambda: StaleInvoice(f"invoice {invoice.id} changed meanwhile; retry")))
        after = replace(invoice, status=target, version=invoice.version + 1, updated_at=at)
        after = replace(after, **{timestamp_field: at})  # type: ignore[arg-type]
        return replace(after, reissued_as=reissued_as) if reissued_as else after

    def add_draft(self, draft: Invoice) -> None:
        """A new draft with its lines (a reissued copy); its id is new, so the header must not exist."""

        def op(tx: Transaction) -> None:
            tx.save(invoice_to_item(draft), condition=TableItem.pk.does_not_exist())
            for line in draft.lines:
                tx.save(line_to_item(draft.id, line))

        self._add(op)

    def add_events(self, *events: InvoiceEvent, subject: Invoice | None = None) -> None:
        """The audit events of this change, and the outbox record of each public one. `subject` is the
        invoice as it is after the change: the public event carries it as the API returns it."""
        if subject is not None:
            for public in invoice_outbox(events, subject):
                self.add_outbox(public)
        for event in events:
            item = event_to_item(event)

            def op(tx: Transaction, item: EventItem = item) -> None:
                tx.save(item)

            self._add(op)

    def add_outbox(self, event: OutboxEvent) -> None:
        """A public event's outbox record: new (its id is the audit event's), 30 days' TTL."""
        item = outbox_to_item(event)

        def op(tx: Transaction) -> None:
            tx.save(item, condition=TableItem.pk.does_not_exist())

        self._add(op)

    def replace_endpoint(self, endpoint: Endpoint, *, expected_version: int) -> None:
        """A webhook endpoint changed by the machinery itself (disabled), conditioned on the version read."""
        item = endpoint_to_item(endpoint)
        key = keys.webhook_endpoint_key(endpoint.id)

        def op(tx: Transaction) -> None:
            tx.save(item, condition=TableItem.pk.exists() & (WebhookEndpointItem.version == expected_version))

        self._add(op, _Guard(key, _FIRST, lambda: Conflict(f"webhook endpoint {endpoint.id} changed meanwhile")))

    def change_balance(self, change: BalanceChange) -> None:
        """The customer's balance from `old` to `new` (conditioned on `old`) and its ledger entry."""
        txn = change.txn
        new = change.new_cents
        assert new == txn.ending_balance_cents and new >= 0
        key = keys.customer_key(txn.customer_id)

        def op(tx: Transaction) -> None:
            balance = CustomerItem.balances[txn.currency]  # type: ignore[index]
            tx.update(
                CustomerItem(*key),
                actions=[balance.set(new)],
                condition=TableItem.pk.exists() & equals_or_absent(balance, change.old_cents),
            )
            tx.save(balance_txn_to_item(txn), condition=TableItem.pk.does_not_exist())

        self._add(op, _Guard(key, _THEN, lambda: StaleBalance(f"the balance of {txn.customer_id} moved; retry")))

    def add_link(self, link: PaymentLink) -> None:
        """A new payment link. Written as an update that creates the item: PynamoDB sends updates
        last, and the cancellation reasons are matched by key anyway."""
        key = (keys.invoice_pk(link.invoice_id), keys.link_sk(link.id))

        def op(tx: Transaction) -> None:
            tx.update(PaymentLinkItem(*key), actions=link_create_actions(link), condition=TableItem.pk.does_not_exist())

        self._add(op, _Guard(key, _THEN, lambda: StaleInvoice(f"payment link {link.id} exists; retry")))

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

    def _error(self, tx: Transaction, exc: TransactWriteError) -> Exception | None:
        failed = tx.failed(exc)
        conflicted = tx.conflicted(exc)
        for guard in sorted((g for g in self._guards if g.key in failed), key=lambda g: g.rank):
            if guard.rank == _NUMBER and conflicted:
                break
            return guard.error()
        if conflicted:
            return WriteConflict("another write to the same items was in flight; retry")
        return None
