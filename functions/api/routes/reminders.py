"""/invoices/{id}/reminders: what was sent and when, and a manual reminder now."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel

from invoicing.http.actor import current_actor
from invoicing.observability import logger
from invoicing.root import get_services
from invoicing.schemas.objects import ReminderOut, reminder_out
from invoicing.use_cases import reminders as uc
from schemas import Id, error_responses

router = Router()


class ReminderList(BaseModel):
    data: list[ReminderOut]


@router.get(
    "/invoices/<invoice_id>/reminders",
    summary="Reminders of an invoice: what was sent, when, to whom",
    responses=error_responses(404),
)
def handle_list_reminders(invoice_id: Annotated[Id, Path()]) -> ReminderList:
    return ReminderList(data=[reminder_out(r) for r in uc.list_reminders(get_services(), invoice_id)])


@router.post(
    "/invoices/<invoice_id>/reminders",
    summary="Send a reminder now (kind manual, with a fresh payment link); open or uncollectible invoices",
    responses=error_responses(404, 409, 503, success=201),
)
def handle_send_reminder(invoice_id: Annotated[Id, Path()]) -> Response[ReminderOut]:
    logger.append_keys(invoice_id=invoice_id)
    record = uc.send_manual_reminder(get_services(), current_actor(router), invoice_id)
    return Response(status_code=201, body=reminder_out(record), content_type="application/json")
