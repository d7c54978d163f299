"""The billing-run starter: reads an uploaded run's JSONL (a message of the start queue names the run
and the line to go on from), validates each line with the API's own draft schema (`parse_line`), and
queues the drafts for the worker in chunks, with a checkpoint per chunk (use_cases/billing_runs.py
`read_upload`). It shares the API's code, so an uploaded line means exactly what a POSTed draft does.

One message per invocation (BatchSize 1). A read longer than the function's time hands on to a next
message of the same queue, from its checkpoint.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from invoicing.observability import logger, metrics, tracer
from invoicing.root import get_services
from invoicing.use_cases import billing_runs
from routes.billing_runs import parse_line

processor = BatchProcessor(event_type=EventType.SQS)


def handle_start(record: SQSRecord, lambda_context: LambdaContext) -> str:
    message = billing_runs.StartMessage.from_body(json.loads(record.body))
    logger.append_keys(run_id=message.run_id, line=message.line)
    outcome = billing_runs.read_upload(
        get_services(), message, parse_line, time_left_ms=lambda_context.get_remaining_time_in_millis
    )
    metrics.add_metric(name=f"BillingRunStart_{outcome}", unit="Count", value=1)
    return outcome


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handle_billing_run_starts(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=handle_start, processor=processor, context=context)
