"""The daily reminder run (EventBridge Scheduler): finds the invoices a reminder or dunning is due for
on the sparse due index and puts one job per invoice on the reminder queue. Never a Scan."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invoicing.observability import logger, metrics, tracer
from invoicing.root import get_services
from invoicing.use_cases.reminders import run_reminder_schedule


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handle_reminder_schedule(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_reminder_schedule(get_services()).as_dict()
