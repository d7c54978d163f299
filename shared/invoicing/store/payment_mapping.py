"""Payments and payment links <-> items (one mapper per entity, keys from keys.py)."""

from __future__ import annotations

from invoicing.domain.payments import Payment, PaymentLink, PaymentMethod, PaymentSource
from invoicing.store.keys import invoice_pk, payment_feed_pk, payment_feed_sk, payment_sk
from invoicing.store.models import PaymentItem, PaymentLinkItem


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
        gsi2pk=payment_feed_pk(p.id),  # the payments feed by paid_at (reports' "collected")
        gsi2sk=payment_feed_sk(p.paid_at, p.id),
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
