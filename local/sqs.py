"""SQS event source mappings: poll a queue, invoke the function with SQS batch events.

As in Lambda: successful batches are deleted; a raised exception fails the whole batch; with
``FunctionResponseTypes: [ReportBatchItemFailures]`` only the ``batchItemFailures`` stay. Failed
messages become visible again after the queue's visibility timeout (capped locally, see
``visibility_timeout_cap``) and moto moves them to the dead-letter queue once they have been received
``maxReceiveCount`` times.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .functions import FunctionError
from .polling import Poller


@dataclass
class SqsSource:
    function_id: str
    event_id: str
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    enabled: bool = True
    max_batching_window: float = 0.0


def _attribute_value(value: dict[str, Any]) -> dict[str, Any]:
    def b64(data: Any) -> str:
        return base64.b64encode(data if isinstance(data, bytes) else str(data).encode()).decode()

    out: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [b64(v) for v in value.get("BinaryListValues") or []],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = b64(value["BinaryValue"])
    return out


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS event, from a ReceiveMessage result."""
    body = message.get("Body", "")
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {k: _attribute_value(v) for k, v in (message.get("MessageAttributes") or {}).items()},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class SqsPoller(Poller):
    """One thread per event source mapping."""

    kind = "sqs"

    def __init__(
        self,
        source: SqsSource,
        sqs_client: Any,
        invoke: Callable[[str, Any], Any],
        *,
        region: str = "us-east-1",
        visibility_timeout_cap: float | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        super().__init__(source.function_id, source.event_id, poll_interval)
        self.source = source
        self.sqs = sqs_client
        self.invoke = invoke
        self.region = region
        self.cap = visibility_timeout_cap
        self._queue_visibility: int | None = None

    def _receive(self, count: int) -> list[dict[str, Any]]:
        return list(
            self.sqs.receive_message(
                QueueUrl=self.source.queue_url,
                MaxNumberOfMessages=max(1, min(10, count)),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        )

    def poll_once(self) -> int:
        """Receive up to BatchSize messages, invoke once, settle the batch. Returns the batch size."""
        if not self.source.enabled:
            return 0
        messages = self._receive(self.source.batch_size)
        while messages and len(messages) < self.source.batch_size:
            more = self._receive(self.source.batch_size - len(messages))
            if not more:
                break
            messages.extend(more)
        if not messages:
            return 0
        self.batches += 1
        event = {"Records": [sqs_record(m, self.source.queue_arn, self.region) for m in messages]}
        by_id = {m["MessageId"]: m for m in messages}
        failed: set[str]
        try:
            result = self.invoke(self.source.function_id, event)
            failed = self._failures(result, set(by_id))
        except FunctionError:
            failed = set(by_id)
        done = [m for mid, m in by_id.items() if mid not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.source.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        if failed:
            self._return_to_queue([by_id[mid] for mid in failed])
        return len(messages)

    def _failures(self, result: Any, ids: set[str]) -> set[str]:
        if not self.source.report_batch_item_failures:
            return set()
        if result is None or (isinstance(result, dict) and not result.get("batchItemFailures")):
            return set()
        if not isinstance(result, dict) or not isinstance(result.get("batchItemFailures"), list):
            return set(ids)  # an unreadable response fails the whole batch, as in Lambda
        failed = set()
        for item in result["batchItemFailures"]:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not identifier or identifier not in ids:
                return set(ids)
            failed.add(identifier)
        return failed

    def _visibility_timeout(self) -> int:
        if self._queue_visibility is None:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.source.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            self._queue_visibility = int(attributes.get("VisibilityTimeout", 30))
        return self._queue_visibility

    def _return_to_queue(self, messages: list[dict[str, Any]]) -> None:
        if self.cap is None or self._visibility_timeout() <= self.cap:
            return  # visible again after the queue's own visibility timeout
        timeout = max(0, int(self.cap))
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.source.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": timeout}
                    for i, m in enumerate(chunk)
                ],
            )
