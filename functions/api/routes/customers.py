"""/customers: who is billed."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from invoicing.root import get_services
from invoicing.use_cases import customers
from schemas import CustomerCreate, CustomerOut, CustomerUpdate, Id, customer_out, error_responses

router = Router()


@router.post(
    "/customers",
    summary="Create a customer",
    responses=error_responses(422, success=201),
    response_description="The customer",
)
def handle_create_customer(body: Annotated[CustomerCreate, Body()]) -> Response[CustomerOut]:
    created = customers.create_customer(
        get_services(),
        name=body.name,
        email=body.email,
        address=body.address.model_dump() if body.address else None,
        currency=body.currency,
        locale=body.locale,
        timezone=body.timezone,
        tax_id=body.tax_id,
        reminders_enabled=body.reminders_enabled,
        metadata=body.metadata,
        einvoice_format=body.einvoice_format,
        vat_id=body.vat_id,
        electronic_address=body.electronic_address.identifier if body.electronic_address else "",
        electronic_address_scheme=body.electronic_address.scheme if body.electronic_address else "",
        buyer_reference=body.buyer_reference,
    )
    return Response(status_code=201, body=customer_out(created), content_type="application/json")


@router.get("/customers/<customer_id>", summary="Get a customer", responses=error_responses(404))
def handle_get_customer(customer_id: Annotated[Id, Path()]) -> CustomerOut:
    return customer_out(customers.get_customer(get_services(), customer_id))


@router.patch(
    "/customers/<customer_id>",
    summary="Update a customer (issued invoices keep their snapshot)",
    responses=error_responses(404, 422),
)
def handle_update_customer(customer_id: Annotated[Id, Path()], body: Annotated[CustomerUpdate, Body()]) -> CustomerOut:
    return customer_out(
        customers.update_customer(get_services(), customer_id, customers.UpdateCustomer(**body.changes()))
    )
