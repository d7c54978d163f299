"""/invoices/{id}/pdf: download link and re-render; /invoices/{id}/einvoice and
/credit-notes/{id}/einvoice: the EN 16931 XML (docs/einvoicing.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel

from invoicing.einvoice import MEDIA_TYPE
from invoicing.einvoice.model import Syntax
from invoicing.http.actor import current_actor
from invoicing.root import get_services
from invoicing.use_cases import documents, einvoices
from schemas import Id, error_responses

router = Router()


class PdfLink(BaseModel):
    url: str
    expires_at: str


class PdfStatus(BaseModel):
    invoice_id: str
    pdf_status: str | None


@router.get(
    "/invoices/<invoice_id>/pdf",
    summary="A short-lived download link to the invoice PDF",
    responses=error_responses(404, 409),
)
def handle_get_invoice_pdf(invoice_id: Annotated[Id, Path()]) -> PdfLink:
    url, expires_at = documents.pdf_download(get_services(), invoice_id)
    return PdfLink(url=url, expires_at=expires_at)


@router.post(
    "/invoices/<invoice_id>/pdf",
    summary="Re-render the PDF (e.g. after a template change)",
    responses=error_responses(404, success=202),
)
def handle_render_invoice_pdf(invoice_id: Annotated[Id, Path()]) -> Response[PdfStatus]:
    invoice = documents.request_render(get_services(), current_actor(router), invoice_id)
    return Response(
        status_code=202,
        body=PdfStatus(invoice_id=invoice.id, pdf_status=invoice.pdf_status),
        content_type="application/json",
    )


EInvoiceFormat = Annotated[
    Literal["ubl", "cii", "xrechnung"],
    Query(
        description="ubl: UBL 2.1 Peppol BIS Billing 3.0; cii: UN/CEFACT CII D16B (EN 16931, the Factur-X XML); "
        "xrechnung: UBL 2.1 XRechnung 3.0"
    ),
]


def _xml_responses() -> dict[int, dict[str, Any]]:
    responses = error_responses(404, 409, 422)
    responses[200] = {
        "description": "The e-invoice (EN 16931 XML)",
        "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
    }
    return responses


@router.get(
    "/invoices/<invoice_id>/einvoice",
    summary="The invoice as an EN 16931 e-invoice (UBL Peppol BIS 3, CII or XRechnung)",
    description="Open, paid, void or uncollectible invoices (a draft is 409). 422 einvoice_terms_missing lists "
    "every business term the format needs that the seller settings, the customer or the tax rates lack.",
    responses=_xml_responses(),
)
def handle_get_invoice_einvoice(invoice_id: Annotated[Id, Path()], format: EInvoiceFormat) -> Response[str]:
    xml = einvoices.get_invoice_einvoice(get_services(), invoice_id, Syntax(format))
    return Response(status_code=200, body=xml.decode("utf-8"), content_type=MEDIA_TYPE)


@router.get(
    "/credit-notes/<credit_note_id>/einvoice",
    summary="The credit note as an EN 16931 e-invoice (381, referencing its invoice)",
    description="422 einvoice_terms_missing lists every business term the format needs that is missing.",
    responses=_xml_responses(),
)
def handle_get_credit_note_einvoice(credit_note_id: Annotated[Id, Path()], format: EInvoiceFormat) -> Response[str]:
    xml = einvoices.get_credit_note_einvoice(get_services(), credit_note_id, Syntax(format))
    return Response(status_code=200, body=xml.decode("utf-8"), content_type=MEDIA_TYPE)
