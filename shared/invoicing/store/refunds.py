"""Refunds after their credit note: the outcome of each Stripe attempt, Stripe's webhooks, a manual
refund completed by hand. Keys: pk INVOICE#{iid}, sk REFUND#{rid} (the item is put by the credit
note's transaction, store/credit_notes.py).

Every change is conditioned on the refund's status, attempt count and Stripe refund id as they were
read (what the change was decided from) and written in one transaction with its audit event, so
two writers that read the same refund can never both apply their decision: the loser gets
`RefundChanged`, re-reads and decides again.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from invoicing.domain.credit import Refund
from invoicing.domain.events import InvoiceEvent
from invoicing.errors import ConcurrentModification
from invoicing.store.credit_notes import refund_from_item, refund_sk
from invoicing.store.keys import invoice_pk
from invoicing.store.mapping import event_to_item
from invoicing.store.models import RefundItem, TableItem
from invoicing.store.repository import Repository

MAX_FAILURE = 500


class RefundChanged(ConcurrentModification):
    """The refund is no longer as it was read (another attempt, a webhook, a concurrent complete)."""


def _optional(attr: Any, value: Any) -> Any:
    return attr.set(value) if value is not None else attr.remove()


def _was(attr: Any, value: Any) -> Any:
    """`attr = :value`, or absent when it was read as None (0 for counters)."""
    if value is None:
        return attr.does_not_exist()
    return (attr == value) | attr.does_not_exist() if value == 0 else attr == value


class RefundStore:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def get(self, invoice_id: str, refund_id: str) -> Refund | None:
        try:
            item = RefundItem.get(invoice_pk(invoice_id), refund_sk(refund_id), consistent_read=True)
        except DoesNotExist:
            return None
        return refund_from_item(item)

    def _condition(self, read: Refund) -> Any:
        return (
            TableItem.pk.exists()
            & (RefundItem.status == read.status.value)
            & _was(RefundItem.attempts, read.attempts)
            & _was(RefundItem.provider_ref, read.provider_ref)
        )

    def claim_attempt(self, read: Refund, attempt: int, at: str) -> None:
        """Take attempt number `attempt` before calling Stripe: of two retries that read the same
        refund only one gets it, so only one refund call is made per attempt (and its idempotency
        key). The refund stays `failed` meanwhile: if the process stops after this, it can be retried
        again and the next retry first looks for what this attempt may have created."""
        try:
            RefundItem(invoice_pk(read.invoice_id), refund_sk(read.id)).update(
                actions=[RefundItem.attempts.set(attempt), RefundItem.updated_at.set(at)],
                condition=self._condition(read),
            )
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                raise RefundChanged(f"refund {read.id} changed meanwhile") from exc
            raise

    def record(self, read: Refund, changed: Refund, event: InvoiceEvent) -> None:
        """Write `changed` over the refund as it was `read`, with its event, in one transaction."""
        actions: list[Any] = [
            RefundItem.status.set(changed.status.value),
            RefundItem.updated_at.set(changed.updated_at),
            _optional(RefundItem.provider_ref, changed.provider_ref),
            _optional(RefundItem.provider_created, changed.provider_created),
            _optional(RefundItem.failure, changed.failure[:MAX_FAILURE] if changed.failure else None),
        ]
        if changed.attempts != read.attempts:
            actions.append(RefundItem.attempts.set(changed.attempts))
        for name in ("reference", "paid_at", "completed_by"):
            value = getattr(changed, name)
            if value != getattr(read, name):
                actions.append(_optional(getattr(RefundItem, name), value))
        key = (invoice_pk(read.invoice_id), refund_sk(read.id))
        try:
            with self.repo.transaction() as tx:
                tx.update(RefundItem(*key), actions=actions, condition=self._condition(read))
                tx.save(event_to_item(event))
        except TransactWriteError as exc:
            if key in tx.failed(exc) or tx.conflicted(exc):
                raise RefundChanged(f"refund {read.id} changed meanwhile") from exc
            raise
