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
open_pay_page / pay_with_link — the public pay page (no admin auth; the token is the capability).
  Unknown, expired, revoked and used tokens, and invoices that no longer take payments, all give
  None: one neutral answer, no hint which case it was. Paying through the link (local provider)
  marks the link used and the invoice paid in ONE transaction, conditioned on the link being active
  and on the remainder being the amount the payer saw: any number of concurrent uses pay once.
record_provider_payment — the provider's confirmation (Stripe `checkout.session.completed`, verified
  and dispatched by the pay function): the payment id is derived from the checkout session, put with
  `attribute_not_exists` inside the payment transaction, so a redelivered event records nothing twice.
  Money that arrives for an invoice that can no longer take it is kept as an unapplied payment (for a
  refund), never dropped. Stripe's `refund.*` events go to use_cases/refunds.apply_refund_notice.
allow_pay_request — the per-client fixed-window limit of the pay pages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pynamodb.exceptions import PynamoDBException

from invoicing import clock, payment_links
from invoicing.adapters.payments import CheckoutRequest, ConfirmedPayment, PayAction
from invoicing.adapters.public_url import pay_url
from invoicing.domain.events import Actor, InvoiceEvent, new_event
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.domain.payments import (
    PAYABLE_STATUSES,
    IssuedLink,
    Payment,
    PaymentAlreadyRecorded,
    PaymentApplication,
    PaymentLink,
    PaymentLinkInactive,
    PaymentMethod,
    PaymentSource,
    apply_payment,
    check_amount,
    check_paid_at,
    check_reference,
    hash_token,
    looks_like_token,
)
from invoicing.errors import ConcurrentModification, Conflict, InvoicingError, NotFound, ValidationFailed
from invoicing.ids import new_id
from invoicing.observability import logger, metrics
from invoicing.services import Services
from invoicing.store.retry import SHORT, retry
from invoicing.store.writes.payments import InvoiceNotPayableNow, LinkUse

MAX_ATTEMPTS = 5


def _payment_event(
    invoice: Invoice, payment: Payment, application: PaymentApplication, actor: Actor, at: str
) -> InvoiceEvent:
    return new_event(
        invoice.id,
        "invoice.payment_recorded",
        actor,
        at,
        from_status=application.from_status.value if application.becomes_paid else None,
        to_status=InvoiceStatus.PAID.value if application.becomes_paid else None,
        data={
            "payment_id": payment.id,
            "amount_cents": payment.amount_cents,
            "currency": payment.currency,
            "method": payment.method.value,
            "source": payment.source.value,
            "amount_paid_cents": application.paid_after,
            "amount_remaining_cents": application.remaining_after,
        },
    )


def _settle(
    svc: Services,
    actor: Actor,
    invoice_id: str,
    make_payment: Callable[[Invoice], Payment],
    link: Callable[[], LinkUse | None] = lambda: None,
    *,
    read: Callable[[], Invoice] | None = None,
) -> tuple[Payment, Invoice]:
    """Read, decide with the domain rules, write conditionally; re-read and re-decide on a lost race."""

    def attempt() -> tuple[Payment, PaymentApplication]:
        invoice = read() if read else svc.repo.get_invoice_header(invoice_id)
        payment = make_payment(invoice)
        application = apply_payment(invoice, payment.amount_cents)
        event = _payment_event(invoice, payment, application, actor, payment.recorded_at)
        with svc.uow() as tx:
            tx.record_payment(invoice, payment, application, link())
            tx.add_events(event)
        return payment, application

    payment, application = retry(
        attempt,
        on=(InvoiceNotPayableNow,),
        attempts=MAX_ATTEMPTS,
        exhausted=lambda: ConcurrentModification(f"invoice {invoice_id} kept changing; retry the payment"),
        backoff=SHORT,
        on_retry=lambda n, exc: metrics.add_metric(name="PaymentRetries", unit="Count", value=1),
    )
    metrics.add_metric(name="PaymentsRecorded", unit="Count", value=1)
    logger.info(
        "payment recorded",
        extra={
            "invoice_id": invoice_id,
            "payment_id": payment.id,
            "amount_cents": payment.amount_cents,
            "source": payment.source.value,
            "invoice_paid": application.becomes_paid,
        },
    )
    return payment, svc.repo.get_invoice(invoice_id)


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

    return _settle(svc, actor, invoice_id, make)


def list_payments(svc: Services, invoice_id: str) -> list[Payment]:
    svc.repo.get_invoice_header(invoice_id)  # 404 for an unknown invoice
    return svc.payment_store.list_payments(invoice_id)


def payments_paid_since(svc: Services, since: str) -> tuple[list[Payment], bool]:
    """Every payment paid at or after ``since`` (reports: collected per month, by payment date, partial
    payments included). Bounded: 4 shards, at most 5 Queries of 100 each; the flag says all were read."""
    return svc.payment_store.payments_paid_since(since)


# ---------------------------------------------------------------- payment links
def _pay_url(svc: Services, token: str) -> str:
    return pay_url(svc.settings.public_base_url, svc.settings.public_base_url_param, token)


def issue_payment_link(svc: Services, actor: Actor, invoice_id: str) -> IssuedLink:
    issued, _ = payment_links.replace_links(svc, actor, invoice_id, issue=True)
    assert issued is not None
    return issued


def revoke_payment_links(svc: Services, actor: Actor, invoice_id: str) -> int:
    """Revokes every active link of the invoice; returns how many were revoked."""
    _, count = payment_links.replace_links(svc, actor, invoice_id, issue=False)
    return count


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
        payment, invoice = _settle(
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
            _settle(svc, WEBHOOK_ACTOR, confirmed.invoice_id, make, link)
        except PaymentLinkInactive:
            link_id[0] = None  # the link named in the metadata does not exist: record without it
            _settle(svc, WEBHOOK_ACTOR, confirmed.invoice_id, make, link)
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
