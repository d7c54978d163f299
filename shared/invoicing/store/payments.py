"""Payments, payment links and the pay pages' rate-limit counters: keys, conditions, transactions.

Items (docs/data-model.md):
- Payment             pk INVOICE#{iid}  sk PAYMENT#{pid}
- InvoicePaymentLink  pk INVOICE#{iid}  sk PAYLINK#{link_id}  gsi1 PAYTOKEN#{sha256(token)} / PAYLINK
- RateLimit           pk RATELIMIT#{client}#{window}  sk RATELIMIT  (ttl: deleted by DynamoDB)

Transactions go through `repository.Transaction`, which matches DynamoDB's cancellation reasons
to item keys (PynamoDB sends items grouped by kind, not in call order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice
from invoicing.domain.payments import (
    PAYABLE_STATUSES,
    Payment,
    PaymentAlreadyRecorded,
    PaymentApplication,
    PaymentLink,
    PaymentLinkInactive,
    PaymentMethod,
    PaymentSource,
)
from invoicing.errors import ConcurrentModification
from invoicing.store.keys import header_key, invoice_pk, link_sk, payment_sk, token_gsi1pk
from invoicing.store.mapping import event_to_item, link_create_actions
from invoicing.store.models import InvoiceItem, PaymentItem, PaymentLinkItem, RateLimitItem, TableItem
from invoicing.store.repository import Repository
from invoicing.store.transaction import Transaction
from invoicing.store.transaction import is_condition_failure as _is_condition_failure
from invoicing.store.uow import paid_actions

MAX_LINKS_REVOKED_AT_ONCE = 90  # stays inside the 100-item transaction limit


def rate_limit_pk(client_key: str, window: int) -> str:
    return f"RATELIMIT#{client_key}#{window}"


class InvoiceNotPayableNow(ConcurrentModification):
    """The invoice's status or remaining amount was not what the caller read: re-read and decide."""


# ---------------------------------------------------------------- conversions
def payment_to_item(p: Payment) -> PaymentItem:
    return PaymentItem(
        invoice_pk(p.invoice_id),
        payment_sk(p.id),
        invoice_id=p.invoice_id,
        payment_id=p.id,
        amount_cents=p.amount_cents,
        currency=p.currency,
        method=p.method.value,
        reference=p.reference or None,
        paid_at=p.paid_at,
        recorded_at=p.recorded_at,
        actor=p.actor,
        source=p.source.value,
        link_id=p.link_id,
        provider_ref=p.provider_ref,
        applied=p.applied,
    )


def payment_from_item(item: PaymentItem) -> Payment:
    return Payment(
        id=item.payment_id,
        invoice_id=item.invoice_id,
        amount_cents=int(item.amount_cents),
        currency=item.currency,
        method=PaymentMethod(item.method),
        reference=item.reference or "",
        paid_at=item.paid_at,
        recorded_at=item.recorded_at,
        actor=item.actor,
        source=PaymentSource(item.source),
        link_id=item.link_id,
        provider_ref=item.provider_ref,
        applied=bool(item.applied) if item.applied is not None else True,
    )


def link_from_item(item: PaymentLinkItem) -> PaymentLink:
    return PaymentLink(
        id=item.link_id,
        invoice_id=item.invoice_id,
        token_hash=item.token_hash,
        created_at=item.created_at,
        expires_at=item.expires_at,
        created_by=item.created_by or "",
        revoked_at=item.revoked_at,
        used_at=item.used_at,
        payment_id=item.payment_id,
    )


def _payable_condition() -> Any:
    return InvoiceItem.status.is_in(*sorted(s.value for s in PAYABLE_STATUSES))


@dataclass(frozen=True)
class LinkUse:
    """Consume a payment link in the payment's transaction.

    strict: the link must still be active (unused, unrevoked, unexpired at `at`): the pay button.
    Not strict: a provider confirmed money for this link; it is recorded whatever the link's state
    now (it may have expired while the customer was on the checkout page), and `used_at` is kept if set.
    """

    link_id: str
    at: str
    strict: bool = True


# ---------------------------------------------------------------- store
class PaymentStore:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    # -- payments
    def list_payments(self, invoice_id: str) -> list[Payment]:
        items = TableItem.query(invoice_pk(invoice_id), TableItem.sk.startswith(payment_sk("")), consistent_read=True)
        payments = [payment_from_item(i) for i in items if isinstance(i, PaymentItem)]
        return sorted(payments, key=lambda p: (p.recorded_at, p.id))

    def record_payment(
        self,
        *,
        invoice: Invoice,
        payment: Payment,
        application: PaymentApplication,
        event: InvoiceEvent,
        link: LinkUse | None = None,
    ) -> None:
        """Payment put + invoice update + audit event (+ the link marked used) in one transaction.

        The invoice update is conditioned on `status IN (open, uncollectible)` and on the remainder:
        `= amount` when this payment settles the invoice, `> amount` otherwise. So concurrent payments
        never overpay, and the status flip is decided on the value actually written.

        Raises PaymentAlreadyRecorded (the payment id exists: a replay), PaymentLinkInactive (strict
        link use and the link is no longer active), InvoiceNotPayableNow (re-read and decide).
        """
        amount = application.amount_cents
        actions: list[Action] = [
            InvoiceItem.amount_paid_cents.add(amount),
            InvoiceItem.amount_remaining_cents.add(-amount),
            # ADD, not SET version+1: the write is conditioned on the amounts, not on the version,
            # yet any version-conditioned writer (void, write-off) must still see the change
            InvoiceItem.version.add(1),
            InvoiceItem.updated_at.set(payment.recorded_at),
        ]
        if application.becomes_paid:
            actions += paid_actions(payment.paid_at)
            remaining_ok = InvoiceItem.amount_remaining_cents == amount
        else:
            remaining_ok = InvoiceItem.amount_remaining_cents > amount
        try:
            with self.repo.transaction() as tx:
                tx.update(
                    InvoiceItem(*header_key(invoice.id)),
                    actions=actions,
                    condition=_payable_condition() & remaining_ok,
                )
                tx.save(payment_to_item(payment), condition=TableItem.pk.does_not_exist())
                tx.save(event_to_item(event))
                if link is not None:
                    self._use_link(tx, invoice.id, payment.id, link)
        except TransactWriteError as exc:
            failed = tx.failed(exc)
            if (invoice_pk(invoice.id), payment_sk(payment.id)) in failed:
                raise PaymentAlreadyRecorded(f"payment {payment.id} is already recorded") from exc
            if link is not None and (invoice_pk(invoice.id), link_sk(link.link_id)) in failed:
                raise PaymentLinkInactive("the payment link is no longer active") from exc
            if header_key(invoice.id) in failed or tx.conflicted(exc):
                raise InvoiceNotPayableNow(f"invoice {invoice.id} changed meanwhile") from exc
            raise

    def _use_link(self, tx: Transaction, invoice_id: str, payment_id: str, link: LinkUse) -> None:
        item = PaymentLinkItem(invoice_pk(invoice_id), link_sk(link.link_id))
        if link.strict:
            tx.update(
                item,
                actions=[PaymentLinkItem.used_at.set(link.at), PaymentLinkItem.payment_id.set(payment_id)],
                condition=TableItem.pk.exists()
                & PaymentLinkItem.used_at.does_not_exist()
                & PaymentLinkItem.revoked_at.does_not_exist()
                & (PaymentLinkItem.expires_at > link.at),
            )
        else:
            tx.update(
                item,
                actions=[
                    PaymentLinkItem.used_at.set(PaymentLinkItem.used_at | link.at),
                    PaymentLinkItem.payment_id.set(PaymentLinkItem.payment_id | payment_id),
                ],
                condition=TableItem.pk.exists(),
            )

    def record_unapplied_payment(self, payment: Payment, event: InvoiceEvent) -> None:
        """Money that arrived for an invoice that can no longer take it: kept for a refund, the
        invoice untouched. Idempotent on the payment id like `record_payment`."""
        try:
            with self.repo.transaction() as tx:
                tx.save(payment_to_item(payment), condition=TableItem.pk.does_not_exist())
                tx.save(event_to_item(event))
        except TransactWriteError as exc:
            if (invoice_pk(payment.invoice_id), payment_sk(payment.id)) in tx.failed(exc):
                raise PaymentAlreadyRecorded(f"payment {payment.id} is already recorded") from exc
            raise

    # -- payment links
    def list_links(self, invoice_id: str) -> list[PaymentLink]:
        items = TableItem.query(invoice_pk(invoice_id), TableItem.sk.startswith(link_sk("")), consistent_read=True)
        return [link_from_item(i) for i in items if isinstance(i, PaymentLinkItem)]

    def find_link(self, token_hash: str) -> PaymentLink | None:
        """By token hash: the index gives the key, then a consistent read gives the current state."""
        for hit in TableItem.gsi1.query(token_gsi1pk(token_hash), TableItem.gsi1sk == "PAYLINK", limit=1):
            try:
                item = PaymentLinkItem.get(hit.pk, hit.sk, consistent_read=True)
            except DoesNotExist:
                return None
            # the index is keyed on the hash; re-check it on the item itself
            return link_from_item(item) if item.token_hash == token_hash else None
        return None

    def replace_links(
        self,
        *,
        invoice: Invoice,
        new: PaymentLink | None,
        revoke: list[PaymentLink],
        event: InvoiceEvent,
        at: str,
    ) -> None:
        """Issue `new` (optional) and revoke `revoke` in one transaction with the audit event,
        conditioned on the invoice still taking payments. Raises InvoiceNotPayableNow otherwise."""
        try:
            with self.repo.transaction() as tx:
                tx.condition_check(InvoiceItem, *header_key(invoice.id), condition=_payable_condition())
                for old in revoke[:MAX_LINKS_REVOKED_AT_ONCE]:
                    tx.update(
                        PaymentLinkItem(invoice_pk(invoice.id), link_sk(old.id)),
                        actions=[PaymentLinkItem.revoked_at.set(PaymentLinkItem.revoked_at | at)],
                        condition=TableItem.pk.exists(),
                    )
                if new is not None:
                    tx.update(
                        PaymentLinkItem(invoice_pk(invoice.id), link_sk(new.id)),
                        actions=link_create_actions(new),
                        condition=TableItem.pk.does_not_exist(),
                    )
                tx.save(event_to_item(event))
        except TransactWriteError as exc:
            if header_key(invoice.id) in tx.failed(exc) or tx.conflicted(exc):
                raise InvoiceNotPayableNow(f"invoice {invoice.id} changed meanwhile") from exc
            raise

    # -- rate limiting
    def take_rate_limit_slot(self, client_key: str, window: int, limit: int, expires_epoch: int) -> bool:
        """One hit in a fixed window; False once `limit` hits were counted. One conditional UpdateItem."""
        item = RateLimitItem(rate_limit_pk(client_key, window), "RATELIMIT")
        try:
            item.update(
                actions=[
                    RateLimitItem.type.set(RateLimitItem),
                    RateLimitItem.hits.add(1),
                    RateLimitItem.ttl.set(expires_epoch),
                ],
                condition=RateLimitItem.hits.does_not_exist() | (RateLimitItem.hits < limit),
            )
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True
