"""SQS render jobs -> PDF in S3. Partial batch failures: only the failed records return to the queue
(and reach the DLQ after maxReceiveCount). One warm Chromium per container serves every job."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from invoicing.observability import logger, metrics, tracer
from invoicing.root import get_services
from invoicing.use_cases.documents import render_invoice_pdf

processor = BatchProcessor(event_type=EventType.SQS)


def handle_render_job(record: SQSRecord) -> str:
    job = json.loads(record.body)  # the body may hold a payment URL: never log it
    logger.append_keys(invoice_id=job.get("invoice_id"))
    outcome = render_invoice_pdf(get_services(), job)
    metrics.add_metric(name="PdfJobs", unit="Count", value=1)
    return outcome


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handle_render_jobs(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=handle_render_job, processor=processor, context=context)
