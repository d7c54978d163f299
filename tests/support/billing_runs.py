"""Billing runs in tests: drafts of a run, and a driver that drains the FIFO queue into the worker
exactly as Lambda's event source mapping would (batches of up to 10, partial batch failures)."""

from __future__ import annotations

from typing import Any

from local.sqs import sqs_record


def run_draft(
    customer_id: str, subscription: str, *, amount_cents: int = 1000, month: int = 11, **extra: Any
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "subscription_id": subscription,
        "period_start": f"2026-{month:02d}-01",
        "period_end": f"2026-{month:02d}-28",
        "lines": [{"description": "Subscription", "quantity": "1", "unit_amount_cents": amount_cents}],
        **extra,
    }


def drain(
    worker: Any, queue_url: str, context: Any, *, max_batches: int = 10_000, handler: str = "handle_billing_run_jobs"
) -> int:
    """Deliver every message of the queue to `worker.<handler>` (the worker's by default; the
    starter's is `handle_billing_run_starts`); returns the batches run."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    batches = 0
    while batches < max_batches:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0
        ).get("Messages", [])
        if not messages:
            return batches
        batches += 1
        event = {"Records": [sqs_record(m, arn, "us-east-1") for m in messages]}
        result = getattr(worker, handler)(event, context)
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
    raise AssertionError(f"the queue did not drain in {max_batches} batches")
