"""/invoices/{id}/reminders: what was sent and when, and a manual reminder now."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, Field

from invoicing.domain.reminders import ReminderRecord
from invoicing.http.actor import current_actor
from invoicing.observability import logger
from invoicing.root import get_services
from invoicing.use_cases import reminders as uc
from schemas import Id, error_responses

router = Router()


class ReminderOut(BaseModel):
    key: str = Field(description="The kind for scheduled reminders; manual#<id> for manual ones")
    kind: str
    status: Literal["sending", "sent", "failed", "cancelled"]
    trigger: Literal["schedule", "manual"]
    actor: str
    step_date: str | None = Field(description="The day (customer's time zone) the step fell due")
    recipient: str | None
    sent_at: str | None
    message_id: str | None = Field(description="SES message id")
    attempts: int
    last_error: str | None
    payment_link_id: str | None = Field(description="The payment link issued for this mail, if any")
    claimed_at: str


class ReminderList(BaseModel):
    data: list[ReminderOut]


def reminder_out(r: ReminderRecord) -> ReminderOut:
    return ReminderOut(
        key=r.key,
        kind=r.kind,
        status=r.status,  # type: ignore[arg-type]
        trigger=r.trigger,  # type: ignore[arg-type]
        actor=r.actor,
        step_date=r.step_date,
        recipient=r.recipient,
        sent_at=r.sent_at,
        message_id=r.message_id,
        attempts=r.attempts,
        last_error=r.last_error,
        payment_link_id=r.payment_link_id,
        claimed_at=r.claimed_at,
    )


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
