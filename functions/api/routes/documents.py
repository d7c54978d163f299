"""/invoices/{id}/pdf: download link and re-render."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel

from invoicing.http.actor import current_actor
from invoicing.root import get_services
from invoicing.use_cases import documents
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
