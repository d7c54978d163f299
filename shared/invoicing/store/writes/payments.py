"""Typed writes of payments and payment links: a payment applied to its invoice (and the link it
came through), money kept unapplied, links issued and revoked."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pynamodb.expressions.update import Action

from invoicing.domain.invoice import Invoice, LinkState
from invoicing.domain.payments import (
    PAYABLE_STATUSES,
    Payment,
    PaymentAlreadyRecorded,
    PaymentApplication,
    PaymentLink,
    PaymentLinkInactive,
)
from invoicing.errors import ConcurrentModification, StaleInvoice
from invoicing.store.keys import header_key, invoice_pk, link_sk, payment_sk
from invoicing.store.mapping import link_create_actions
from invoicing.store.models import InvoiceItem, PaymentLinkItem, TableItem
from invoicing.store.payment_mapping import payment_to_item
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import FIRST, THEN, Guard, WriteSet
from invoicing.store.writes.invoices import paid_actions

MAX_LINKS_REVOKED_AT_ONCE = 90  # stays inside the 100-item transaction limit


class InvoiceNotPayableNow(ConcurrentModification):
    """The invoice's status or remaining amount was not what the caller read: re-read and decide."""


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


def _payable_condition() -> Any:
    return InvoiceItem.status.is_in(*sorted(s.value for s in PAYABLE_STATUSES))


class PaymentWrites(WriteSet):
    def _payment(self, payment: Payment) -> None:
        key = (invoice_pk(payment.invoice_id), payment_sk(payment.id))

        def op(tx: Transaction) -> None:
            tx.save(payment_to_item(payment), condition=TableItem.pk.does_not_exist())

        # a payment id that exists is a replay (the provider's redelivery): first, whatever else failed
        self._add(op, Guard(key, FIRST, lambda: PaymentAlreadyRecorded(f"payment {payment.id} is already recorded")))
        self._changed("payment", payment.id, payment)

    def record_payment(
        self, invoice: Invoice, payment: Payment, application: PaymentApplication, link: LinkUse | None = None
    ) -> None:
        """The Payment item, the invoice's amounts (and `paid` when it settles) and the link used.

        The invoice update is conditioned on `status IN (open, uncollectible)`, on the remainder
        (`= amount` when this payment settles the invoice, `> amount` otherwise) and on the version
        read. So concurrent payments never overpay, the status flip is decided on the value actually
        written, and the invoice after the payment (its public event's object and sequence) is exact.
        Errors: PaymentAlreadyRecorded (a replay), PaymentLinkInactive (strict link use and the link
        is no longer active), InvoiceNotPayableNow (re-read and decide)."""
        amount = application.amount_cents
        actions: list[Action] = [
            InvoiceItem.amount_paid_cents.add(amount),
            InvoiceItem.amount_remaining_cents.add(-amount),
            # conditioned on the version read too (below): the payment's `after` and its event's
            # sequence are then exactly what is stored, never a stale read's
            InvoiceItem.version.add(1),
            InvoiceItem.updated_at.set(payment.recorded_at),
        ]
        if application.becomes_paid:
            actions += paid_actions(invoice.id, payment.paid_at)
            remaining_ok = InvoiceItem.amount_remaining_cents == amount
        else:
            remaining_ok = InvoiceItem.amount_remaining_cents > amount
        condition = _payable_condition() & remaining_ok & (InvoiceItem.version == invoice.version)
        after = application.applied_to(invoice, payment)
        self._payment(payment)
        if link is not None:
            self._use_link(invoice.id, payment.id, link)
            if invoice.links_tracked and link.link_id == invoice.active_link_id:
                # the header's link is used up (single use): no active link is left. Conditioned on it
                # still being the header's link (a link replaced meanwhile does not bump the version)
                actions += [InvoiceItem.link_id.remove(), InvoiceItem.link_expires_at.remove()]
                condition = condition & (InvoiceItem.link_id == link.link_id)
                after = replace(after, active_link_id=None, active_link_expires_at=None)
        header = header_key(invoice.id)

        def op(tx: Transaction) -> None:
            tx.update(InvoiceItem(*header), actions=actions, condition=condition)

        self._add(
            op,
            Guard(
                header, THEN, lambda: InvoiceNotPayableNow(f"invoice {invoice.id} changed meanwhile"), on_conflict=True
            ),
        )
        self._changed("invoice", invoice.id, after, after.version)

    def _use_link(self, invoice_id: str, payment_id: str, link: LinkUse) -> None:
        key = (invoice_pk(invoice_id), link_sk(link.link_id))

        def op(tx: Transaction) -> None:
            item = PaymentLinkItem(*key)
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

        self._add(op, Guard(key, FIRST, lambda: PaymentLinkInactive("the payment link is no longer active")))
        self._changed("payment_link", link.link_id, None)

    def record_unapplied_payment(self, payment: Payment) -> None:
        """Money that arrived for an invoice that can no longer take it: kept for a refund, the
        invoice untouched. Idempotent on the payment id like `record_payment`."""
        self._payment(payment)

    def add_link(self, link: PaymentLink) -> None:
        """A new payment link. Written as an update that creates the item: PynamoDB sends updates
        last, and the cancellation reasons are matched by key anyway."""
        key = (invoice_pk(link.invoice_id), link_sk(link.id))

        def op(tx: Transaction) -> None:
            tx.update(PaymentLinkItem(*key), actions=link_create_actions(link), condition=TableItem.pk.does_not_exist())

        self._add(op, Guard(key, THEN, lambda: StaleInvoice(f"payment link {link.id} exists; retry")))
        self._changed("payment_link", link.id, link)

    def replace_links(self, invoice: LinkState, *, new: PaymentLink | None, revoke: list[str], at: str) -> None:
        """Issue `new` (optional) and revoke the links `revoke` (ids), conditioned on the invoice still
        taking payments and its header still naming the link it was read with (InvoiceNotPayableNow
        otherwise: re-read). The header then names `new` as its one link that may be active (or none),
        and tracks its links from now on (Invoice.links_tracked). The link condition keeps two
        concurrent issues from both revoking the same old link and leaving one new link unnamed."""
        header = header_key(invoice.invoice_id)
        condition = _payable_condition()
        if not invoice.links_tracked:
            condition = condition & InvoiceItem.links_tracked.does_not_exist()
        elif invoice.link_id is not None:
            condition = condition & (InvoiceItem.link_id == invoice.link_id)
        else:
            condition = condition & InvoiceItem.link_id.does_not_exist()
        actions: list[Action] = [InvoiceItem.links_tracked.set(True)]
        if new is not None:
            actions += [InvoiceItem.link_id.set(new.id), InvoiceItem.link_expires_at.set(new.expires_at)]
        else:
            actions += [InvoiceItem.link_id.remove(), InvoiceItem.link_expires_at.remove()]

        def op(tx: Transaction) -> None:
            tx.update(InvoiceItem(*header), actions=actions, condition=condition)

        self._add(
            op,
            Guard(
                header,
                FIRST,
                lambda: InvoiceNotPayableNow(f"invoice {invoice.invoice_id} changed meanwhile"),
                on_conflict=True,
            ),
        )
        for old_id in revoke[:MAX_LINKS_REVOKED_AT_ONCE]:

            def revoke_op(tx: Transaction, old_id: str = old_id) -> None:
                tx.update(
                    PaymentLinkItem(invoice_pk(invoice.invoice_id), link_sk(old_id)),
                    actions=[PaymentLinkItem.revoked_at.set(PaymentLinkItem.revoked_at | at)],
                    condition=TableItem.pk.exists(),
                )

            self._add(revoke_op)
            self._changed("payment_link", old_id, None)
        if new is not None:
            self.add_link(new)
