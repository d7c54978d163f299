"""The public pay page (no admin auth; the token is the capability).

open_pay_page / pay_with_link — Unknown, expired, revoked and used tokens, and invoices that no
  longer take payments, all give None: one neutral answer, no hint which case it was. Paying through
  the link (local provider) marks the link used and the invoice paid in ONE transaction, conditioned
  on the link being active and on the remainder being the amount the payer saw: any number of
  concurrent uses pay once.
pdf_for_token — the invoice's PDF for a holder of an active link.
allow_pay_request — the per-client fixed-window limit of the pay pages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from pynamodb.exceptions import PynamoDBException

from invoicing import clock
from invoicing.adapters.payments import CheckoutRequest, PayAction
from invoicing.adapters.public_url import pay_url
from invoicing.domain.events import Actor
from invoicing.domain.invoice import Invoice
from invoicing.domain.payments import (
    PAYABLE_STATUSES,
    Payment,
    PaymentLink,
    PaymentLinkInactive,
    PaymentMethod,
    PaymentSource,
    hash_token,
    looks_like_token,
)
from invoicing.errors import InvoicingError, NotFound
from invoicing.ids import new_id
from invoicing.observability import logger, metrics
from invoicing.services import Services
from invoicing.settlement import settle
from invoicing.store.writes.payments import LinkUse


def _pay_url(svc: Services, token: str) -> str:
    return pay_url(svc.settings.public_base_url, svc.settings.public_base_url_param, token)


# ---------------------------------------------------------------- the public pay page
@dataclass(frozen=True)
class PayPage:
    invoice: Invoice
    link: PaymentLink
    amount_due_cents: int
    pay_action: PayAction
    pdf_url: str | None = None
    form_action_origins: tuple[str, ...] = ()


def _find_active_link(svc: Services, token: str, now_iso: str) -> PaymentLink | None:
    if not looks_like_token(token):
        return None
    link = svc.payment_store.find_link(hash_token(token))
    if link is None or not link.is_active(now_iso):
        return None
    return link


def open_pay_page(svc: Services, token: str, *, with_pdf: bool = True) -> PayPage | None:
    """The payable invoice behind an active token, or None (one neutral answer for every other case)."""
    link = _find_active_link(svc, token, clock.iso(clock.now()))
    if link is None:
        return None
    try:
        invoice = svc.repo.get_invoice(link.invoice_id)
    except NotFound:
        return None
    if invoice.status not in PAYABLE_STATUSES or invoice.amount_remaining_cents <= 0:
        return None
    pdf_url = None
    if with_pdf and invoice.pdf_s3_key:
        pdf_url = svc.documents.presigned_get(invoice.pdf_s3_key, svc.settings.pdf_url_ttl_seconds)
    provider = svc.payment_provider()
    return PayPage(
        invoice=invoice,
        link=link,
        amount_due_cents=invoice.amount_remaining_cents,
        pay_action=provider.pay_action,
        pdf_url=pdf_url,
        form_action_origins=provider.form_action_origins(),
    )


def pdf_for_token(svc: Services, token: str) -> str | None:
    """GET /pay/{token}/pdf: a fresh short-lived download URL of the invoice's PDF, or None (the
    neutral answer). Mails link here rather than to a pre-signed S3 URL: a URL signed with a Lambda
    role's session credentials dies with the session (hours), whatever expiry it was given."""
    if not looks_like_token(token):
        return None
    link = svc.payment_store.find_link(hash_token(token))
    if link is None or not link.opens_document(clock.iso(clock.now())):
        return None
    try:
        invoice = svc.repo.get_invoice_header(link.invoice_id)
    except NotFound:
        return None
    if not invoice.pdf_s3_key:
        return None
    return svc.documents.presigned_get(invoice.pdf_s3_key, svc.settings.pdf_url_ttl_seconds)


@dataclass(frozen=True)
class PayOutcome:
    """paid: settled now (local provider). redirect: go to the provider's checkout. page: show the
    page again (manual provider, or `amount_changed` when the amount due moved since it was shown)."""

    kind: Literal["paid", "redirect", "page"]
    page: PayPage | None = None
    invoice: Invoice | None = None
    redirect_url: str | None = None
    amount_changed: bool = False
    payment: Payment | None = field(default=None, repr=False)


def pay_with_link(svc: Services, token: str, expected_amount_cents: int | None) -> PayOutcome | None:
    """The Pay button. None: the neutral answer (inactive link or nothing left to pay)."""
    page = open_pay_page(svc, token, with_pdf=False)
    if page is None:
        return None
    if expected_amount_cents != page.amount_due_cents:
        # the payer saw another amount (a partial payment landed meanwhile): show the current one
        return PayOutcome(kind="page", page=open_pay_page(svc, token), amount_changed=True)
    provider = svc.payment_provider()
    if provider.pay_action == "checkout":
        invoice = page.invoice
        session = provider.start_checkout(
            CheckoutRequest(
                invoice_id=invoice.id,
                link_id=page.link.id,
                invoice_number=invoice.invoice_number or invoice.id,
                amount_cents=page.amount_due_cents,
                currency=invoice.currency,
                customer_email=invoice.customer.email if invoice.customer else "",
                success_url=f"{_pay_url(svc, token)}?checkout=success",
                cancel_url=_pay_url(svc, token),
            )
        )
        logger.info("checkout started", extra={"invoice_id": invoice.id, "link_id": page.link.id})
        return PayOutcome(kind="redirect", redirect_url=session.url)
    if provider.pay_action != "complete":
        return PayOutcome(kind="page", page=open_pay_page(svc, token))
    return _pay_now(svc, token, page)


def _pay_now(svc: Services, token: str, page: PayPage) -> PayOutcome | None:
    link_id = page.link.id
    actor = Actor(principal=f"pay_link:{link_id}")
    now = clock.iso(clock.now())
    amount = page.amount_due_cents
    first_read = [page.invoice]

    def read() -> Invoice:
        # the first attempt uses the page's own read; a retry re-reads
        return first_read.pop() if first_read else svc.repo.get_invoice_header(page.invoice.id)

    def make(invoice: Invoice) -> Payment:
        if invoice.amount_remaining_cents != amount:
            raise _AmountMoved
        return Payment(
            id=new_id("pay"),
            invoice_id=invoice.id,
            amount_cents=amount,
            currency=invoice.currency,
            method=PaymentMethod.CARD,
            reference=f"payment link {link_id}",
            paid_at=now,
            recorded_at=now,
            actor=actor.principal,
            source=PaymentSource.PAY_LINK,
            link_id=link_id,
        )

    try:
        payment, invoice = settle(
            svc, actor, page.invoice.id, make, lambda: LinkUse(link_id=link_id, at=now, strict=True), read=read
        )
    except (PaymentLinkInactive, _AmountMoved, InvoicingError):
        # used by a concurrent click, revoked, expired, paid or voided meanwhile, or the amount moved:
        # nothing was charged; show whatever is true now
        again = open_pay_page(svc, token)
        return PayOutcome(kind="page", page=again, amount_changed=True) if again else None
    return PayOutcome(kind="paid", invoice=invoice, payment=payment)


class _AmountMoved(Exception):
    pass


# ---------------------------------------------------------------- abuse throttling
RATE_WINDOW_SECONDS = 60


def allow_pay_request(svc: Services, client_ip: str) -> bool:
    """Fixed one-minute window per client IP (stored as a hash). Fails open: if the counter cannot be
    written, API Gateway's own route throttling still bounds the traffic."""
    now = int(clock.now().timestamp())
    window = now // RATE_WINDOW_SECONDS
    client_key = hashlib.sha256(client_ip.encode()).hexdigest()[:32]
    try:
        allowed = svc.payment_store.take_rate_limit_slot(
            client_key,
            window,
            svc.settings.pay_rate_limit_per_minute,
            expires_epoch=(window + 2) * RATE_WINDOW_SECONDS,
        )
    except PynamoDBException:
        logger.warning("rate limit counter unavailable; request allowed")
        return True
    if not allowed:
        metrics.add_metric(name="PayRequestsRateLimited", unit="Count", value=1)
    return allowed
