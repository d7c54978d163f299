"""A local webhook receiver on 127.0.0.1 that verifies every delivery with the official
`standardwebhooks` package, and a pump that runs the pipeline in-process: the table's stream (through
the local runtime's own stream poller) -> the fan-out handler -> the delivery queue -> the worker."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    verified_with: list[str]


@dataclass
class Receiver:
    """Answers each POST with `answer(n)` (n: 1-based count of requests so far) -> (status, headers)."""

    secrets: list[str] = field(default_factory=list)
    answer: Callable[[int], tuple[int, dict[str, str]]] = lambda n: (200, {})
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = []
                for secret in receiver.secrets:
                    try:
                        Webhook(secret).verify(body, headers)
                        verified.append(secret)
                    except WebhookVerificationError:
                        pass
                with lock:
                    receiver.received.append(Received(headers, body, verified))
                    n = len(receiver.received)
                status, extra = receiver.answer(n)
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Pipeline:
    """The stream -> fan-out -> queue -> worker path, run by hand until nothing moves."""

    def __init__(self, table_name: str, queue_url: str, load_function: Callable[..., Any], context: Any) -> None:
        from local.cfn import Template
        from local.streams import StreamPoller, StreamSource
        from tests.conftest import ROOT

        self.handlers = load_function("webhooks")
        self.context = context
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.queue_url = queue_url
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        stream_arn = ddb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        event = Template(ROOT / "template.yaml", stage="local").resources["WebhookFanoutFunction"]["Properties"][
            "Events"
        ]
        props = event["Outbox"]["Properties"]
        source = StreamSource(
            function_id="WebhookFanoutFunction",
            event_id="Outbox",
            stream_arn=stream_arn,
            batch_size=int(props["BatchSize"]),
            starting_position=props["StartingPosition"],
            filters=[json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]],
            report_batch_item_failures=True,
            maximum_retry_attempts=int(props["MaximumRetryAttempts"]),
        )
        self.stream = StreamPoller(
            source,
            # moto's in-process mock answers DescribeStream only at the explicit regional endpoint
            boto3.client(
                "dynamodbstreams",
                region_name="us-east-1",
                endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or "https://streams.dynamodb.us-east-1.amazonaws.com",
            ),
            self._invoke_fanout,
        )

    def _invoke_fanout(self, function_id: str, event: Any) -> Any:
        return self.handlers.handle_outbox_stream(json.loads(json.dumps(event)), self.context)

    def run(self, *, until: Callable[[], bool] = lambda: False, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        idle = 0
        while time.monotonic() < deadline:
            moved = self.stream.poll_once()
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if messages:
                records = [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": {},
                        "messageAttributes": {},
                        "md5OfBody": "",
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:WebhookQueue",
                        "awsRegion": "us-east-1",
                    }
                    for m in messages
                ]
                result = self.handlers.handle_delivery_jobs({"Records": records}, self.context)
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
                assert not failed, f"the delivery worker failed: {failed}"
                for m in messages:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
            if until():
                return
            if moved or messages:
                idle = 0
            else:
                idle += 1
                if idle > 20 and until is None:
                    return
                time.sleep(0.05)
        raise AssertionError("the pipeline did not get there in time")

    def drain(self, timeout: float = 30.0) -> None:
        """Run until the stream holds nothing new and the queue nothing at all (visible, in flight or
        delayed): every event committed so far has been delivered, retried to the end, or dropped."""

        def empty() -> bool:
            if self.stream.poll_once():
                return False
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            return all(int(v) == 0 for v in attributes.values())

        self.run(until=empty, timeout=timeout)
