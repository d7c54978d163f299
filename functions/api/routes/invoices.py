"""/invoices: drafts, lines, the lifecycle and the audit trail."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from invoicing.domain import money
from invoicing.errors import ValidationFailed
from invoicing.http.actor import current_actor
from invoicing.observability import logger
from invoicing.root import get_services
from invoicing.use_cases import finalize, lifecycle
from invoicing.use_cases import invoices as uc
from schemas import (
    EventList,
    Id,
    InvoiceCreate,
    InvoiceList,
    InvoiceOut,
    InvoiceUpdate,
    LineIn,
    LineUpdate,
    StartingAfter,
    Status,
    VoidRequest,
    error_responses,
    event_out,
    invoice_out,
)

router = Router()


def _line_input(line: LineIn, field_prefix: str = "") -> uc.LineInput:
    quantity = money.parse_quantity(line.quantity, field=f"{field_prefix}quantity")
    return uc.LineInput(
        description=line.description,
        quantity=quantity,
        unit_amount_cents=line.unit_amount_cents,
        tax_rate_id=line.tax_rate_id,
        unit_code=line.unit_code,
    )


@router.post(
    "/invoices",
    summary="Create a draft invoice (idempotent for billing runs)",
    responses=error_responses(404, 409, 422, success=(201, 200)),
)
def handle_create_invoice(body: Annotated[InvoiceCreate, Body()]) -> Response[InvoiceOut]:
    cmd = create_command(body)
    invoice, created = uc.create_invoice(get_services(), current_actor(router), cmd)
    logger.append_keys(invoice_id=invoice.id, customer_id=invoice.customer_id)
    return Response(status_code=201 if created else 200, body=invoice_out(invoice), content_type="application/json")


def create_command(body: InvoiceCreate) -> uc.CreateInvoice:
    """The create-draft command of a request body (also each draft of a billing run)."""
    lines = [_line_input(line, f"lines.{i}.") for i, line in enumerate(body.lines)]
    if body.period_start and body.period_end and body.period_end < body.period_start:
        raise ValidationFailed("period_end is before period_start", details={"field": "period_end"})
    return uc.CreateInvoice(
        customer_id=body.customer_id,
        currency=body.currency,
        lines=tuple(lines),
        subscription_id=body.subscription_id,
        period_start=body.period_start,
        period_end=body.period_end,
        due_date=body.due_date,
        days_until_due=body.days_until_due,
        memo=body.memo,
        metadata=body.metadata,
        purchase_order=body.purchase_order,
        custom_fields=tuple((field.key, field.value) for field in body.custom_fields),
    )


@router.get(
    "/invoices", summary="List invoices by customer and/or status, newest first", responses=error_responses(422)
)
def handle_list_invoices(
    customer_id: Annotated[Id | None, Query()] = None,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: StartingAfter = None,
) -> InvoiceList:
    page = uc.list_invoices(
        get_services(), customer_id=customer_id, status=status, limit=limit, starting_after=starting_after
    )
    return InvoiceList(
        data=[invoice_out(i, with_lines=False) for i in page.items],
        has_more=page.next_cursor is not None,
        next_cursor=page.next_cursor,
    )


@router.get(
    "/invoices/<invoice_id>", summary="Get an invoice with its lines and totals", responses=error_responses(404)
)
def handle_get_invoice(invoice_id: Annotated[Id, Path()]) -> InvoiceOut:
    return invoice_out(uc.get_invoice(get_services(), invoice_id))


@router.patch("/invoices/<invoice_id>", summary="Update a draft", responses=error_responses(404, 409, 422))
def handle_update_invoice(invoice_id: Annotated[Id, Path()], body: Annotated[InvoiceUpdate, Body()]) -> InvoiceOut:
    return invoice_out(
        uc.update_invoice(get_services(), current_actor(router), invoice_id, uc.UpdateInvoice(**body.changes()))
    )


@router.delete(
    "/invoices/<invoice_id>",
    summary="Delete a draft (issued invoices are never deleted)",
    responses=error_responses(404, 409, success=204),
)
def handle_delete_invoice(invoice_id: Annotated[Id, Path()]) -> Response[None]:
    uc.delete_invoice(get_services(), current_actor(router), invoice_id)
    return Response(status_code=204, body=None)


@router.post(
    "/invoices/<invoice_id>/lines",
    summary="Add a line to a draft",
    responses=error_responses(404, 409, 422, success=201),
)
def handle_add_line(invoice_id: Annotated[Id, Path()], body: Annotated[LineIn, Body()]) -> Response[InvoiceOut]:
    invoice = uc.add_line(get_services(), current_actor(router), invoice_id, _line_input(body))
    return Response(status_code=201, body=invoice_out(invoice), content_type="application/json")


@router.patch(
    "/invoices/<invoice_id>/lines/<line_id>", summary="Edit a line of a draft", responses=error_responses(404, 409, 422)
)
def handle_update_line(
    invoice_id: Annotated[Id, Path()], line_id: Annotated[Id, Path()], body: Annotated[LineUpdate, Body()]
) -> InvoiceOut:
    return invoice_out(
        uc.update_line(get_services(), current_actor(router), invoice_id, line_id, uc.UpdateLine(**body.changes()))
    )


@router.delete(
    "/invoices/<invoice_id>/lines/<line_id>", summary="Remove a line from a draft", responses=error_responses(404, 409)
)
def handle_delete_line(invoice_id: Annotated[Id, Path()], line_id: Annotated[Id, Path()]) -> InvoiceOut:
    return invoice_out(uc.delete_line(get_services(), current_actor(router), invoice_id, line_id))


@router.post(
    "/invoices/<invoice_id>/finalize",
    summary="Finalize: draft -> open, with the next number INV-YYYY-NNNNN for the customer",
    responses=error_responses(404, 409, 422, 503),
)
def handle_finalize_invoice(invoice_id: Annotated[Id, Path()]) -> InvoiceOut:
    logger.append_keys(invoice_id=invoice_id)
    finalized = finalize.finalize_invoice(get_services(), current_actor(router), invoice_id)
    out = invoice_out(finalized.invoice)
    out.payment_url = finalized.link.url if finalized.link else None
    return out


@router.post(
    "/invoices/<invoice_id>/void",
    summary="Void an open or uncollectible invoice; with reissue, `reissued_as` names the new corrected draft",
    responses=error_responses(404, 409, 422),
)
def handle_void_invoice(
    invoice_id: Annotated[Id, Path()], body: Annotated[VoidRequest | None, Body()] = None
) -> InvoiceOut:
    # the voided invoice itself, like every other transition; the reissued draft is read by its id
    voided, _copy = lifecycle.void_invoice(
        get_services(), current_actor(router), invoice_id, reissue=bool(body and body.reissue)
    )
    return invoice_out(voided)


@router.post(
    "/invoices/<invoice_id>/mark-uncollectible",
    summary="Mark an open invoice as bad debt",
    responses=error_responses(404, 409),
)
def handle_mark_uncollectible(invoice_id: Annotated[Id, Path()]) -> InvoiceOut:
    return invoice_out(lifecycle.mark_uncollectible(get_services(), current_actor(router), invoice_id))


@router.get("/invoices/<invoice_id>/events", summary="The audit trail of an invoice", responses=error_responses(404))
def handle_list_events(invoice_id: Annotated[Id, Path()]) -> EventList:
    return EventList(data=[event_out(e) for e in uc.list_events(get_services(), invoice_id)])
