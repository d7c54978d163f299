"""SQS fan-out in batches (SendMessageBatch, 10 per call): the daily reminder run puts one job per
invoice on the reminder queue. Bodies may hold a customer's address: never log them."""

from __future__ import annotations

import json
from typing import Any

from invoicing.adapters.aws import JobQueue, aws_client

SQS_BATCH = 10


class JobsNotEnqueued(RuntimeError):
    """Some jobs were refused twice; the caller fails, and the whole run is done again later."""


class BatchJobQueue(JobQueue):
    def send_batch(self, bodies: list[dict[str, Any]]) -> int:
        """Send every body; entries SQS refused are retried once. Returns how many were sent."""
        client = aws_client("sqs", self.region)
        sent = 0
        for start in range(0, len(bodies), SQS_BATCH):
            chunk = {str(i): json.dumps(body) for i, body in enumerate(bodies[start : start + SQS_BATCH])}
            for _ in range(2):
                response = client.send_message_batch(
                    QueueUrl=self.queue_url, Entries=[{"Id": k, "MessageBody": v} for k, v in chunk.items()]
                )
                for ok in response.get("Successful", []):
                    chunk.pop(ok["Id"], None)
                    sent += 1
                if not chunk:
                    break
            if chunk:
                raise JobsNotEnqueued(f"{len(chunk)} reminder jobs were not accepted by SQS")
        return sent
