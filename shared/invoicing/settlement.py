"""Settling a payment on an invoice: read, decide with the domain rules, write in one unit of work,
and re-read and re-decide on a lost race. Shared by the admin's recorded payments, Stripe's
confirmations (use_cases/payments) and the pay page's local provider (use_cases/pay_page), so that
no use case imports another. Not a use case itself.
"""

from __future__ import annotations

from collections.abc import Callable

from invoicing.domain.events import Actor, InvoiceEvent, new_event
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.domain.payments import (
    Payment,
    PaymentApplication,
    apply_payment,
)
from invoicing.errors import ConcurrentModification
from invoicing.observability import logger, metrics
from invoicing.services import Services
from invoicing.store.retry import SHORT, retry
from invoicing.store.writes.payments import InvoiceNotPayableNow, LinkUse

MAX_ATTEMPTS = 5


def payment_event(
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


def settle(
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
        event = payment_event(invoice, payment, application, actor, payment.recorded_at)
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
