"""/invoices/{id}/payments and /invoices/{id}/payment-link: record payments, issue and revoke links."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, Field

from invoicing.domain.payments import MAX_PAYMENT_CENTS, MAX_REFERENCE, Payment, PaymentMethod
from invoicing.http.actor import current_actor
from invoicing.observability import logger
from invoicing.root import get_services
from invoicing.use_cases import payments as uc
from schemas import Id, Instant, InvoiceOut, Strict, error_responses, invoice_out, json_int

router = Router()

Method = Literal["bank_transfer", "card", "cash", "other"]


class PaymentIn(Strict):
    amount_cents: Annotated[json_int(gt=0, le=MAX_PAYMENT_CENTS), Field(description="Minor units, > 0")]
    method: Method
    reference: Annotated[str, Field(max_length=MAX_REFERENCE)] = ""
    paid_at: Instant | None = Field(
        default=None, description="ISO timestamp with a time zone; not in the future. Default: now"
    )


class PaymentOut(BaseModel):
    id: str
    invoice_id: str
    amount_cents: int
    currency: str
    method: Method
    reference: str
    paid_at: str
    recorded_at: str
    actor: str
    source: Literal["api", "pay_link", "stripe"]
    provider_ref: str | None
    applied: bool = Field(description="False: received but not applied (invoice paid or void meanwhile); refund it")


class PaymentRecorded(BaseModel):
    payment: PaymentOut
    invoice: InvoiceOut


class PaymentList(BaseModel):
    data: list[PaymentOut]


class PaymentLinkOut(BaseModel):
    url: str = Field(description="Shown once: only a hash of its token is stored")
    expires_at: str
    link_id: str


def payment_out(p: Payment) -> PaymentOut:
    return PaymentOut(
        id=p.id,
        invoice_id=p.invoice_id,
        amount_cents=p.amount_cents,
        currency=p.currency,
        method=p.method.value,
        reference=p.reference,
        paid_at=p.paid_at,
        recorded_at=p.recorded_at,
        actor=p.actor,
        source=p.source.value,
        provider_ref=p.provider_ref,
        applied=p.applied,
    )


@router.post(
    "/invoices/<invoice_id>/payments",
    summary="Record a (partial) payment; the invoice becomes paid when nothing remains due",
    responses=error_responses(404, 409, 422, success=201),
)
def handle_record_payment(
    invoice_id: Annotated[Id, Path()], body: Annotated[PaymentIn, Body()]
) -> Response[PaymentRecorded]:
    logger.append_keys(invoice_id=invoice_id)
    cmd = uc.RecordPayment(
        amount_cents=body.amount_cents,
        method=PaymentMethod(body.method),
        reference=body.reference,
        paid_at=body.paid_at,
    )
    payment, invoice = uc.record_payment(get_services(), current_actor(router), invoice_id, cmd)
    return Response(
        status_code=201,
        body=PaymentRecorded(payment=payment_out(payment), invoice=invoice_out(invoice)),
        content_type="application/json",
    )


@router.get("/invoices/<invoice_id>/payments", summary="Payments of an invoice", responses=error_responses(404))
def handle_list_payments(invoice_id: Annotated[Id, Path()]) -> PaymentList:
    return PaymentList(data=[payment_out(p) for p in uc.list_payments(get_services(), invoice_id)])


@router.post(
    "/invoices/<invoice_id>/payment-link",
    summary="Issue a new payment link (revokes the earlier ones); the URL is shown once",
    responses=error_responses(404, 409, success=201),
)
def handle_issue_payment_link(invoice_id: Annotated[Id, Path()]) -> Response[PaymentLinkOut]:
    logger.append_keys(invoice_id=invoice_id)
    issued = uc.issue_payment_link(get_services(), current_actor(router), invoice_id)
    return Response(
        status_code=201,
        body=PaymentLinkOut(url=issued.url, expires_at=issued.link.expires_at, link_id=issued.link.id),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.delete(
    "/invoices/<invoice_id>/payment-link",
    summary="Revoke the invoice's payment links",
    responses=error_responses(404, 409, success=204),
)
def handle_revoke_payment_link(invoice_id: Annotated[Id, Path()]) -> Response[None]:
    logger.append_keys(invoice_id=invoice_id)
    uc.revoke_payment_links(get_services(), current_actor(router), invoice_id)
    return Response(status_code=204, body=None)
