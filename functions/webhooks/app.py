"""Outbound webhooks: the table's stream -> fan-out -> SQS -> signed deliveries (docs/webhooks.md).

- `handle_outbox_stream`: new outbox records (the stream's filter passes only those) are published to
  the EventBridge bus and fanned out to one queue message per subscribed endpoint. A record that
  fails is reported alone (ReportBatchItemFailures); the mapping retries it, then sends it to the DLQ.
- `handle_delivery_jobs`: one signed POST per message; retries are new delayed messages (the retry
  schedule), so a message fails only when the worker itself cannot work (then SQS retries, then DLQ).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from invoicing.observability import logger, metrics, tracer
from invoicing.root import get_services
from invoicing.use_cases import webhooks

stream_processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
queue_processor = BatchProcessor(event_type=EventType.SQS)


def handle_outbox_record(record: DynamoDBRecord) -> int:
    image = record.raw_event["dynamodb"].get("NewImage") or {}
    payload = json.loads(image["payload"]["S"])
    logger.append_keys(event_id=payload["id"], event_type=payload["type"])
    sent = webhooks.publish_event(get_services(), payload)
    metrics.add_metric(name="WebhookDeliveriesQueued", unit="Count", value=sent)
    return sent


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handle_outbox_stream(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=handle_outbox_record, processor=stream_processor, context=context
    )


def handle_delivery_job(record: SQSRecord) -> str:
    job = json.loads(record.body)  # ids and the attempt number only: no secret, no payload
    logger.append_keys(endpoint_id=job.get("endpoint_id"), delivery_id=job.get("delivery_id"))
    outcome = webhooks.deliver(get_services(), job)
    metrics.add_metric(name=f"WebhookDelivery_{outcome}", unit="Count", value=1)
    logger.info("webhook delivery", extra={"outcome": outcome, "attempt": job.get("attempt")})
    return outcome


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handle_delivery_jobs(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=handle_delivery_job, processor=queue_processor, context=context
    )
