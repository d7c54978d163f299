"""Payments and payment links.

record_payment — who: invoices:write. Open or uncollectible invoices only (a draft is
  `invoice_not_open`, paid/void `invalid_transition`, 409). amount_cents > 0 and at most the amount
  due (else 409 `payment_exceeds_amount_due`); paid_at optional, not in the future. One transaction:
  the Payment item, the invoice's amounts (and `paid` + paid_at when the remainder reaches zero, off
  the due index), the `invoice.payment_recorded` event. The invoice write is conditioned on its status
  and remainder, so concurrent payments can never overpay; a lost race is re-read and re-decided.
list_payments — who: invoices:read.
issue_payment_link / revoke_payment_links — who: invoices:write. Open or uncollectible invoices only
  (409 otherwise). Issuing revokes every earlier link in the same transaction.
open_pay_page / pay_with_link / allow_pay_request — the public pay page: use_cases/pay_page.py.
record_provider_payment — the provider's confirmation (Stripe `checkout.session.completed`, verified
  and dispatched by the pay function): the payment id is derived from the checkout session, put with
  `attribute_not_exists` inside the payment transaction, so a redelivered event records nothing twice.
  Money that arrives for an invoice that can no longer take it is kept as an unapplied payment (for a
  refund), never dropped. Stripe's `refund.*` events go to use_cases/refunds.apply_refund_notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from invoicing import clock, payment_links
from invoicing.adapters.payments import ConfirmedPayment
from invoicing.domain.events import Actor, new_event
from invoicing.domain.invoice import Invoice
from invoicing.domain.payments import (
    IssuedLink,
    Payment,
    PaymentAlreadyRecorded,
    PaymentLinkInactive,
    PaymentMethod,
    PaymentSource,
    check_amount,
    check_paid_at,
    check_reference,
)
from invoicing.errors import ConcurrentModification, Conflict, NotFound, ValidationFailed
from invoicing.ids import new_id
from invoicing.observability import logger, metrics
from invoicing.services import Services
from invoicing.settlement import settle
from invoicing.store.writes.payments import LinkUse


# ---------------------------------------------------------------- admin: record and list
@dataclass(frozen=True)
class RecordPayment:
    amount_cents: int
    method: PaymentMethod
    reference: str = ""
    paid_at: datetime | None = None


def record_payment(svc: Services, actor: Actor, invoice_id: str, cmd: RecordPayment) -> tuple[Payment, Invoice]:
    """See the module docstring."""
    check_amount(cmd.amount_cents)
    reference = check_reference(cmd.reference)
    now_dt = clock.now()
    now = clock.iso(now_dt)
    paid_at = clock.iso(check_paid_at(cmd.paid_at, now_dt)) if cmd.paid_at is not None else now
    payment_id = new_id("pay")

    def make(invoice: Invoice) -> Payment:
        return Payment(
            id=payment_id,
            invoice_id=invoice.id,
            amount_cents=cmd.amount_cents,
            currency=invoice.currency,
            method=cmd.method,
            reference=reference,
            paid_at=paid_at,
            recorded_at=now,
            actor=actor.principal,
            source=PaymentSource.API,
        )

    return settle(svc, actor, invoice_id, make)


def list_payments(svc: Services, invoice_id: str) -> list[Payment]:
    svc.repo.get_invoice_header(invoice_id)  # 404 for an unknown invoice
    return svc.payment_store.list_payments(invoice_id)


def payments_paid_since(svc: Services, since: str) -> tuple[list[Payment], bool]:
    """Every payment paid at or after ``since`` (reports: collected per month, by payment date, partial
    payments included). Bounded: 4 shards, at most 5 Queries of 100 each; the flag says all were read."""
    return svc.payment_store.payments_paid_since(since)


# ---------------------------------------------------------------- payment links
def issue_payment_link(svc: Services, actor: Actor, invoice_id: str) -> IssuedLink:
    issued, _ = payment_links.replace_links(svc, actor, invoice_id, issue=True)
    assert issued is not None
    return issued


def revoke_payment_links(svc: Services, actor: Actor, invoice_id: str) -> int:
    """Revokes every active link of the invoice; returns how many were revoked."""
    _, count = payment_links.replace_links(svc, actor, invoice_id, issue=False)
    return count


# ---------------------------------------------------------------- provider webhooks
@dataclass(frozen=True)
class WebhookOutcome:
    status: Literal["ignored", "recorded", "duplicate", "unapplied", "refund_updated"]


WEBHOOK_ACTOR = Actor(principal="system:stripe_webhook")


def record_provider_payment(svc: Services, confirmed: ConfirmedPayment) -> WebhookOutcome:
    """See the module docstring. The event was verified by the provider adapter (verify_webhook)."""
    logger.append_keys(invoice_id=confirmed.invoice_id, provider_event_id=confirmed.event_id)
    try:
        svc.repo.get_invoice_header(confirmed.invoice_id)
    except NotFound:
        logger.warning("webhook for an unknown invoice ignored")
        return WebhookOutcome("ignored")
    now = clock.iso(clock.now())
    payment_id = f"pay_stripe_{confirmed.session_id}"
    link_id = [confirmed.link_id]

    def make(invoice: Invoice) -> Payment:
        if invoice.currency != confirmed.currency:
            raise _Unapplicable("currency_mismatch")
        return _provider_payment(payment_id, invoice.id, confirmed, now, link_id[0])

    def link() -> LinkUse | None:
        return LinkUse(link_id=link_id[0], at=now, strict=False) if link_id[0] else None

    try:
        try:
            settle(svc, WEBHOOK_ACTOR, confirmed.invoice_id, make, link)
        except PaymentLinkInactive:
            link_id[0] = None  # the link named in the metadata does not exist: record without it
            settle(svc, WEBHOOK_ACTOR, confirmed.invoice_id, make, link)
    except PaymentAlreadyRecorded:
        return WebhookOutcome("duplicate")
    except ConcurrentModification:
        raise  # a 5xx: the provider redelivers, and the payment id keeps it to one payment
    except (_Unapplicable, Conflict, ValidationFailed) as exc:
        reason = exc.reason if isinstance(exc, _Unapplicable) else exc.code
        return _record_unapplied(svc, payment_id, confirmed, now, reason)
    return WebhookOutcome("recorded")


class _Unapplicable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _provider_payment(
    payment_id: str, invoice_id: str, confirmed: ConfirmedPayment, now: str, link_id: str | None, applied: bool = True
) -> Payment:
    return Payment(
        id=payment_id,
        invoice_id=invoice_id,
        amount_cents=confirmed.amount_cents,
        currency=confirmed.currency,
        method=PaymentMethod.CARD,
        reference=confirmed.payment_reference,
        paid_at=now,
        recorded_at=now,
        actor=WEBHOOK_ACTOR.principal,
        source=PaymentSource.STRIPE,
        link_id=link_id,
        provider_ref=confirmed.session_id,
        applied=applied,
    )


def _record_unapplied(
    svc: Services, payment_id: str, confirmed: ConfirmedPayment, now: str, reason: str
) -> WebhookOutcome:
    payment = _provider_payment(payment_id, confirmed.invoice_id, confirmed, now, confirmed.link_id, applied=False)
    event = new_event(
        confirmed.invoice_id,
        "invoice.payment_unapplied",
        WEBHOOK_ACTOR,
        now,
        data={
            "payment_id": payment_id,
            "amount_cents": confirmed.amount_cents,
            "currency": confirmed.currency,
            "reason": reason,
            "provider_ref": confirmed.session_id,
        },
    )
    try:
        with svc.uow() as tx:
            tx.record_unapplied_payment(payment)
            tx.add_events(event)
    except PaymentAlreadyRecorded:
        return WebhookOutcome("duplicate")
    # money arrived that the invoice cannot take: finance must refund it
    logger.warning("provider payment could not be applied", extra={"reason": reason, "payment_id": payment_id})
    metrics.add_metric(name="PaymentsUnapplied", unit="Count", value=1)
    return WebhookOutcome("unapplied")
