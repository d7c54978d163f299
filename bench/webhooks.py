"""Section 7: webhooks (issue #17).

- **worker throughput**: events delivered per second by ONE delivery worker (one process handling
  SQS batches of 10 one after another, as one Lambda instance would): each delivery reads the
  endpoint, the delivery and the event, opens the sealed secrets (KMS), signs, POSTs to a receiver on
  127.0.0.1 and records the attempt. In-process on moto, so it measures our code and the local HTTP
  round trip, not AWS latencies. Baseline in the same run: the bare signed POST (sign + POST only).
- **commit to delivery** on the local stack (`python -m local`, what `make dev` runs, DynamoDB Local):
  from the finalize response (the commit) to the receiver getting the event, through the table's
  stream, the fan-out, SQS and the worker. The local pollers wait 0.2 s between empty polls, so this
  is dominated by polling, not by the code.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.runner import Report, Row

SECTION = "7 webhooks"
ROOT = Path(__file__).resolve().parent.parent


class _Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.objects: dict[str, str] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                now = time.perf_counter()
                event_id = self.headers.get("webhook-id", "")
                receiver.arrived.setdefault(event_id, now)
                with contextlib.suppress(ValueError, KeyError):
                    receiver.objects[json.loads(body)["data"]["object"]["id"]] = event_id
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run(report: Report, quick: bool) -> None:
    _worker_throughput(report, quick)
    _commit_to_delivery(report, quick)


def _worker_throughput(report: Report, quick: bool) -> None:
    from moto import mock_aws

    events = 100 if quick else 400
    receiver = _Receiver()
    try:
        with mock_aws():
            import boto3

            from invoicing import root
            from invoicing.adapters.webhooks import new_secret, post, signed_headers
            from invoicing.domain.events import Actor
            from invoicing.domain.webhooks import OutboxEvent
            from invoicing.ids import new_id
            from invoicing.root import get_services
            from invoicing.use_cases import webhooks
            from tests.support.aws import create_template_resources

            physical = create_template_resources(ROOT / "template.yaml")
            os.environ.update(
                {
                    "TABLE_NAME": physical["InvoicesTable"],
                    "STAGE": "local",
                    "WEBHOOK_SECRETS_KEY_ID": physical["WebhookSecretsKey"],
                    "WEBHOOK_QUEUE_URL": physical["WebhookQueue"],
                }
            )
            root.reset()
            svc = get_services()
            webhooks.create_endpoint(svc, Actor("api_key:bench"), url=receiver.url, events=["*"])
            outbox = []
            for i in range(events):
                now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                event = OutboxEvent(
                    new_id("evt"), "invoice.finalized", "invoice", f"in_{i}", now, 100, {"id": f"in_{i}"}
                )
                with svc.uow() as tx:
                    tx.add_outbox(event)
                outbox.append(event)
            webhooks.fan_out(svc, outbox)
            sqs = boto3.client("sqs", region_name="us-east-1")
            messages = []
            while len(messages) < events:
                got = sqs.receive_message(QueueUrl=physical["WebhookQueue"], MaxNumberOfMessages=10).get("Messages", [])
                if not got:
                    break
                messages += got
            started = time.perf_counter()
            outcomes = [webhooks.deliver(svc, json.loads(m["Body"])) for m in messages]
            took = time.perf_counter() - started
            delivered = outcomes.count("succeeded")
            # the floor: sign + POST only, same receiver, same count
            secret = new_secret()
            body = json.dumps(outbox[0].payload())
            floor_started = time.perf_counter()
            for event in outbox[: len(messages)]:
                post(receiver.url, body, signed_headers([secret], event.id, datetime.now(UTC), body), stage="local")
            floor = time.perf_counter() - floor_started
    finally:
        receiver.close()
    per_s = delivered / took if took else 0.0
    floor_per_s = len(messages) / floor if floor else 0.0
    report.add(Row(SECTION, "floor: sign + POST only", floor_per_s, None, "events/s", len(messages)))
    report.add(
        Row(
            SECTION,
            "one delivery worker (moto, receiver on 127.0.0.1)",
            per_s,
            None,
            "events/s",
            delivered,
            baseline="floor: sign + POST only",
            ratio=(floor_per_s / per_s) if per_s else None,
            note=f"{delivered}/{len(messages)} delivered in {took:.1f} s; ratio = floor / worker",
        )
    )


def _commit_to_delivery(report: Report, quick: bool) -> None:
    import requests

    from local.testing import free_port, start_local_stack

    count = 20 if quick else 60
    receiver = _Receiver()
    try:
        stack = start_local_stack(["--no-schedules", "--log-level", "WARNING"], port=free_port(), timeout=90)
    except RuntimeError as exc:
        report.note(f"webhooks: local stack did not start: {str(exc)[-300:]}")
        receiver.close()
        return
    try:
        base = stack.api_url.rstrip("/")
        s = requests.Session()
        s.headers.update({"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"})
        s.post(
            f"{base}/webhook-endpoints", json={"url": receiver.url, "events": ["invoice.finalized"]}, timeout=30
        ).raise_for_status()
        customer = s.post(f"{base}/customers", json={"name": "Bench", "email": "b@example.test"}, timeout=30).json()[
            "id"
        ]
        line = [{"description": "Seat", "quantity": "1", "unit_amount_cents": 1000}]
        committed: dict[str, float] = {}
        for i in range(count + 3):  # the first 3 warm the fan-out and worker functions up
            draft = s.post(f"{base}/invoices", json={"customer_id": customer, "lines": line}, timeout=30).json()["id"]
            s.post(f"{base}/invoices/{draft}/finalize", timeout=30).raise_for_status()
            if i >= 3:
                committed[draft] = time.perf_counter()
            time.sleep(0.05)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(d in receiver.objects for d in committed):
            time.sleep(0.1)
        samples = [receiver.arrived[receiver.objects[d]] - t for d, t in committed.items() if d in receiver.objects]
    finally:
        stack.stop()
        receiver.close()
    missing = len(committed) - len(samples)
    report.add(
        Row.timed(
            SECTION,
            "commit -> delivery, local stack (stream, fan-out, SQS, worker)",
            samples,
            note=f"{len(samples)} events, {missing} missing; pollers idle 0.2 s between empty polls",
        )
    )
