"""Reminder jobs from SQS: one reminder mail (SES) or one dunning write-off per record. Partial batch
failures: only the failed records return to the queue (and reach the DLQ after maxReceiveCount)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from invoicing.observability import logger, metrics, tracer
from invoicing.root import get_services
from invoicing.use_cases.reminders import process_reminder_job

processor = BatchProcessor(event_type=EventType.SQS)


def handle_reminder_job(record: SQSRecord) -> str:
    job = json.loads(record.body)  # holds the customer's address: never log the body
    logger.append_keys(invoice_id=job.get("invoice_id"), reminder_job=job.get("job"), reminder_kind=job.get("kind"))
    outcome = process_reminder_job(get_services(), job)
    metrics.add_metric(name=f"ReminderJob_{outcome}", unit="Count", value=1)
    return outcome


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handle_reminder_jobs(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=handle_reminder_job, processor=processor, context=context
    )
