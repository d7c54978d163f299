"""Fault injection: every failure ends in a known, recoverable state, and nothing is done twice.

(a) The PDF worker (RenderPdfFunction, real Chromium) under S3 put failures, a Chromium process killed
    between jobs and during a render, and renders that time out. The jobs go through moto's SQS with
    the template's RedrivePolicy: a failed record becomes visible again (what its visibility timeout
    does) and moto moves it to RenderDLQ once maxReceiveCount is exceeded. Every job ends rendered
    or in the DLQ; none is lost.
(b) DynamoDB TransactionCanceledException (TransactionConflict) injected into finalize's
    TransactWriteItems at the wire (moto's botocore stub): finalize retries and succeeds; when every
    attempt conflicts it gives up with 409 and leaves no trace (still a draft, no number, no event).
(c) SES refusing the reminder mail (TooManyRequests at the wire): the ledger keeps a retryable
    `sending` entry, a duplicate delivery while the lease runs sends nothing, the redelivery after the
    lease sends once.

Figures are printed (run with -s): faults injected, jobs rendered / dead-lettered / lost, attempts.
Run alone: .venv/bin/python -m pytest tests/integration/test_faults.py -s
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.integration.conftest import LambdaContext, load_function
from tests.support.builders import create_draft


# ---------------------------------------------------------------- wire-level fault injection
class WireFaults:
    """Answers chosen AWS requests with an error instead of letting moto serve them.

    moto serves every botocore request through BotocoreStubber.process_request; a rule here sees the
    prepared request first and may return a fabricated error response. botocore then parses it like a
    real AWS error, so the code under test meets the same exception (and cancellation reasons)."""

    def __init__(self) -> None:
        self.rules: list[Callable[[Any], Any]] = []
        self.injected: Counter[str] = Counter()

    def __call__(self, request: Any) -> Any:
        for rule in self.rules:
            response = rule(request)
            if response is not None:
                return response
        return None


def aws_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, dict, str]:
    """(status, headers, body), what moto's handlers answer."""
    all_headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault", **(headers or {})}
    return status, all_headers, json.dumps(body)


@pytest.fixture
def wire(aws, monkeypatch) -> Iterator[WireFaults]:  # type: ignore[no-untyped-def]
    from moto.core.botocore_stubber import BotocoreStubber

    faults = WireFaults()
    original = BotocoreStubber.process_request

    def process(self: Any, request: Any) -> Any:
        return faults(request) or original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process)
    yield faults


def _target(request: Any) -> str:
    value = request.headers.get("X-Amz-Target") or ""
    return value.decode() if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------- (a) the PDF worker
RENDER_TIMEOUT_S = 3.0
PLANS = ("ok", "s3 once", "s3 always", "crash once", "timeout once", "timeout always")
ALWAYS = {"s3 always", "timeout always"}


def sqs_event(messages: list[dict[str, Any]], source: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m["Attributes"]["ApproximateReceiveCount"],
                    "SentTimestamp": m["Attributes"]["SentTimestamp"],
                    "SenderId": "x",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{source}",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def run_queue(queue_url: str, worker: Any, batch_size: int, after_batch: Callable[[int], None] = lambda n: None) -> int:
    """What the Lambda SQS integration does, with the visibility timeout elapsing at once: receive a
    batch, invoke, delete what succeeded, make the failed records visible again. Returns invocations."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    invocations = 0
    while messages := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=batch_size, AttributeNames=["All"]
    ).get("Messages", []):
        from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

        invocations += 1
        try:
            result = worker(sqs_event(messages, queue_url.rsplit("/", 1)[1]), LambdaContext("Worker", 60))
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        except BatchProcessingError:  # every record failed: the invocation fails, SQS keeps them all
            failed = {m["MessageId"] for m in messages}
        for m in messages:
            if m["MessageId"] in failed:
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        after_batch(invocations)
        assert invocations < 100, "the queue never drained"
    return invocations


@pytest.fixture
def chromium_ready() -> None:
    from invoicing.adapters.chromium import chromium_available

    if not chromium_available():
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing: run `make chromium`")
        pytest.skip("Chromium is missing: run `make chromium`")


@pytest.mark.chromium
def test_every_render_job_ends_rendered_or_in_the_dlq(api, aws, customer, monkeypatch, chromium_ready):
    from invoicing.adapters import chromium
    from invoicing.root import get_services
    from local.cfn import Template
    from tests.conftest import ROOT

    # Given one finalized invoice per fault plan (finalize puts one render job on the queue)
    plan_of: dict[str, str] = {}
    invoices: dict[str, dict[str, Any]] = {}
    for plan in PLANS:
        line = {"description": f"Job {plan}", "quantity": "1", "unit_amount_cents": 1000}
        _, draft, _ = api("POST", "/invoices", {"customer_id": customer["id"], "lines": [line]})
        status, invoice, _ = api("POST", f"/invoices/{draft['id']}/finalize")
        assert status == 200, invoice
        plan_of[invoice["invoice_number"]] = plan
        invoices[plan] = invoice
    tpl = Template(ROOT / "template.yaml", stage="test")
    dlq_url = str(tpl.ref("RenderDLQ"))
    max_receives = int(tpl.resolved_properties("RenderQueue")["RedrivePolicy"]["maxReceiveCount"])
    batch_size = int(
        tpl.resources["RenderPdfFunction"]["Properties"]["Events"]["RenderJobs"]["Properties"]["BatchSize"]
    )
    attempts: Counter[str] = Counter()
    faults: Counter[str] = Counter()

    def plan_for(text: str) -> tuple[str, str]:
        number = next(n for n in plan_of if n in text)
        return number, plan_of[number]

    # S3 refuses puts
    store = get_services().documents
    real_put = store.put_pdf

    def put_pdf(key: str, body: bytes, filename: str) -> None:
        number, plan = plan_for(key)
        if plan == "s3 always" or (plan == "s3 once" and attempts[number] == 1):
            faults["s3 put failure"] += 1
            raise RuntimeError("S3 is unavailable")
        real_put(key, body, filename)

    monkeypatch.setattr(store, "put_pdf", put_pdf)

    # Chromium dies during a render, or a render hangs past the render timeout
    real_print = chromium._print

    async def print_page(page: Any, html: str, footer_text: str) -> bytes:
        number, plan = plan_for(footer_text)
        attempts[number] += 1
        if plan == "crash once" and attempts[number] == 1:
            faults["chromium killed during a render"] += 1
            process = chromium.browser_process()
            assert process is not None
            process.kill()
            await asyncio.sleep(0.2)
        if plan == "timeout always" or (plan == "timeout once" and attempts[number] == 1):
            faults["render timeout"] += 1
            await asyncio.sleep(RENDER_TIMEOUT_S + 1)
        return await real_print(page, html, footer_text)

    monkeypatch.setattr(chromium, "_print", print_page)
    real_render = chromium.render_pdf
    monkeypatch.setattr(
        chromium,
        "render_pdf",
        lambda html, *, timeout_s=30, footer_text="": real_render(
            html, timeout_s=RENDER_TIMEOUT_S, footer_text=footer_text
        ),
    )

    # and between two invocations the browser process is killed (a crashed container-level browser)
    def kill_between(invocation: int) -> None:
        process = chromium.browser_process()
        if invocation == 1 and process is not None:
            faults["chromium killed between jobs"] += 1
            process.kill()
            process.wait(5)

    launches_before = chromium.browser_launches()
    # When the worker drains the queue
    worker = load_function("render_pdf").handle_render_jobs
    invocations = run_queue(aws.render_queue_url, worker, batch_size, kill_between)

    # Then every job is either rendered (once) or dead-lettered after maxReceiveCount receives
    sqs = boto3.client("sqs", region_name="us-east-1")
    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
    dead_ids = [json.loads(m["Body"])["invoice_id"] for m in dead]
    assert all(int(m["Attributes"]["ApproximateReceiveCount"]) > max_receives for m in dead)
    rendered = []
    for plan, invoice in invoices.items():
        _, current, _ = api("GET", f"/invoices/{invoice['id']}")
        _, events, _ = api("GET", f"/invoices/{invoice['id']}/events")
        renders = [e for e in events["data"] if e["type"] == "invoice.pdf_rendered"]
        if plan in ALWAYS:
            assert invoice["id"] in dead_ids and current["pdf_status"] == "pending" and renders == [], plan
            assert attempts[invoice["invoice_number"]] == max_receives, plan
        else:
            assert current["pdf_status"] == "rendered" and len(renders) == 1, (plan, current["pdf_status"])
            assert invoice["id"] not in dead_ids
            rendered.append(invoice["id"])
    lost = len(PLANS) - len(rendered) - len(dead_ids)
    assert lost == 0 and len(dead_ids) == len(ALWAYS)
    # the killed browsers were replaced, one launch each
    relaunches = chromium.browser_launches() - launches_before
    assert relaunches >= faults["chromium killed during a render"] + faults["chromium killed between jobs"]
    # and a job reaching the DLQ raises an alarm
    alarms = [tpl.resolved_properties(a) for a in tpl.of_type("AWS::CloudWatch::Alarm")]
    assert any(
        a["Namespace"] == "AWS/SQS"
        and a["Dimensions"][0]["Value"] == tpl.resolve({"Fn::GetAtt": ["RenderDLQ", "QueueName"]})
        for a in alarms
    )
    print(
        f"\nPDF worker faults: jobs={len(PLANS)} faults injected={sum(faults.values())} ({dict(faults)}); "
        f"invocations={invocations} rendered={len(rendered)} dead-lettered={len(dead_ids)} lost={lost} "
        f"browser launches={relaunches}"
    )


# ---------------------------------------------------------------- (b) finalize under transaction conflicts
def conflict_rule(wire: WireFaults, invoice_id: str, *, on: str, times: int) -> Callable[[Any], Any]:
    """Cancel the next `times` finalize transactions of `invoice_id` with TransactionConflict on the
    invoice header (`on="invoice"`) or on the number counter (`on="sequence"`)."""

    def rule(request: Any) -> Any:
        if not _target(request).endswith("TransactWriteItems") or wire.injected["conflict"] >= times:
            return None
        items = json.loads(request.body)["TransactItems"]
        keys = [next(iter(item.values())).get("Key") or next(iter(item.values())).get("Item") for item in items]
        is_finalize = any(k["pk"]["S"] == f"INVOICE#{invoice_id}" and k["sk"]["S"] == "INVOICE" for k in keys) and any(
            k["sk"]["S"].startswith("SEQ#INV#") for k in keys
        )
        if not is_finalize:
            return None
        wire.injected["conflict"] += 1
        hit = (lambda k: k["sk"]["S"] == "INVOICE") if on == "invoice" else (lambda k: k["sk"]["S"].startswith("SEQ#"))
        reasons = [
            {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
            if hit(k)
            else {"Code": "None"}
            for k in keys
        ]
        codes = ", ".join(r["Code"] for r in reasons)
        return aws_error(
            400,
            {
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                "CancellationReasons": reasons,
            },
        )

    return rule


def collection(table: str, invoice_id: str) -> list[str]:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    items = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"INVOICE#{invoice_id}"}},
        ConsistentRead=True,
    )["Items"]
    return sorted(i["sk"]["S"] for i in items)


@pytest.fixture
def draft(api, customer) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return create_draft(api, customer, {"description": "Seat", "quantity": "2", "unit_amount_cents": 1250})


@pytest.mark.parametrize("on", ["sequence", "invoice"])
def test_finalize_retries_transaction_conflicts(api, aws, wire, draft, on):
    from invoicing.root import get_services

    # Given the first two finalize transactions are cancelled with TransactionConflict
    wire.rules.append(conflict_rule(wire, draft["id"], on=on, times=2))
    # When the invoice is finalized
    status, invoice, _ = api("POST", f"/invoices/{draft['id']}/finalize")
    # Then the third attempt commits: the first number, one finalized event
    assert status == 200, invoice
    assert invoice["status"] == "open" and invoice["invoice_number"].endswith("-00001")
    _, events, _ = api("GET", f"/invoices/{draft['id']}/events")
    assert [e["type"] for e in events["data"]].count("invoice.finalized") == 1
    year = int(invoice["invoice_number"].split("-")[1])
    assert get_services().repo.get_sequence(draft["customer_id"], "INV", year) == 2
    print(f"\nfinalize, conflict on the {on}: faults injected={wire.injected['conflict']} -> committed on attempt 3")


@pytest.mark.parametrize("on", ["sequence", "invoice"])
def test_finalize_gives_up_after_max_attempts_and_leaves_no_trace(api, aws, wire, draft, on, monkeypatch):
    from invoicing import clock, root
    from invoicing.root import get_services

    monkeypatch.setenv("FINALIZE_MAX_ATTEMPTS", "3")
    root.reset()
    before = collection(aws.table_name, draft["id"])
    # Given every finalize transaction conflicts
    wire.rules.append(conflict_rule(wire, draft["id"], on=on, times=10**6))
    # When the invoice is finalized
    status, body, _ = api("POST", f"/invoices/{draft['id']}/finalize")
    # Then after the max attempts the caller gets a retryable 409
    assert status == 409 and body["error"]["code"] == "concurrent_modification", body
    assert wire.injected["conflict"] == 3
    # and nothing was written: still the same draft, no number consumed, no event, no payment link
    wire.rules.clear()
    assert collection(aws.table_name, draft["id"]) == before
    _, current, _ = api("GET", f"/invoices/{draft['id']}")
    assert current["status"] == "draft" and current["invoice_number"] is None
    assert current["version"] == draft["version"]
    assert get_services().repo.get_sequence(draft["customer_id"], "INV", clock.now().year) == 1
    # and a later finalize takes the first number
    status, invoice, _ = api("POST", f"/invoices/{draft['id']}/finalize")
    assert status == 200 and invoice["invoice_number"].endswith("-00001")
    print(f"\nfinalize, conflict on the {on} every time: faults injected=3 -> 409, items written=0")


# ---------------------------------------------------------------- (c) SES failures in reminders
def ses_throttle_rule(wire: WireFaults, times: int) -> Callable[[Any], Any]:
    def rule(request: Any) -> Any:
        if "/v2/email/outbound-emails" not in request.url or wire.injected["ses"] >= times:
            return None
        wire.injected["ses"] += 1
        return aws_error(
            429,
            {"message": "Maximum sending rate exceeded."},
            {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"},
        )

    return rule


def sent_mails() -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def test_ses_failure_leaves_a_retryable_ledger_entry_and_never_sends_twice(api, aws, wire, customer, monkeypatch):
    import time_machine

    from invoicing import root
    from invoicing.reminder_delivery import reminder_job
    from invoicing.reminder_policy import reminder_policy
    from invoicing.root import get_services

    boto3.client("sesv2", region_name="us-east-1").create_email_identity(EmailIdentity="seller.test")
    monkeypatch.setenv("REMINDER_FROM_EMAIL", "billing@seller.test")
    root.reset()
    start = datetime(2026, 8, 1, 10, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        line = {"description": "Seat", "quantity": "1", "unit_amount_cents": 5000}
        _, draft, _ = api(
            "POST", "/invoices", {"customer_id": customer["id"], "lines": [line], "due_date": "2026-08-10"}
        )
        status, invoice, _ = api("POST", f"/invoices/{draft['id']}/finalize")
        assert status == 200
    svc = get_services()
    step = reminder_policy(svc.settings).step("due")
    assert step is not None
    job = reminder_job(svc.repo.get_invoice_header(invoice["id"]), svc.repo.get_customer(customer["id"]), step)
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": json.dumps(job),
        "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
    }
    worker = load_function("reminder_worker").handle_reminder_jobs
    lease = svc.settings.reminder_lease_seconds

    def deliver(at: datetime) -> list[str]:
        from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

        with time_machine.travel(at, tick=False):
            try:
                result = worker(
                    sqs_event([message], "local-ReminderQueue"), LambdaContext("ReminderWorkerFunction", 30)
                )
            except BatchProcessingError:
                return ["m-1"]
        return [f["itemIdentifier"] for f in result["batchItemFailures"]]

    def ledger() -> list[dict[str, Any]]:
        return api("GET", f"/invoices/{invoice['id']}/reminders")[1]["data"]

    # Given SES refuses the first send
    wire.rules.append(ses_throttle_rule(wire, times=1))
    due_day = datetime(2026, 8, 10, 8, 0, tzinfo=UTC)
    # When the job runs: it fails (the record goes back to the queue) and the ledger says `sending`
    assert deliver(due_day) == ["m-1"]
    (entry,) = ledger()
    assert (entry["status"], entry["attempts"], entry["sent_at"]) == ("sending", 1, None)
    assert entry["last_error"] == "TooManyRequestsException"
    assert sent_mails() == []
    # and a duplicate delivery while the lease runs sends nothing
    assert deliver(due_day + timedelta(seconds=lease // 2)) == []
    assert sent_mails() == [] and ledger()[0]["status"] == "sending"
    # Then the redelivery after the lease sends the mail once
    assert deliver(due_day + timedelta(seconds=lease + 60)) == []
    (entry,) = ledger()
    assert (entry["status"], entry["attempts"]) == ("sent", 2) and entry["message_id"]
    assert len(sent_mails()) == 1
    # and any later delivery of the same job sends nothing more
    assert deliver(due_day + timedelta(seconds=2 * lease + 120)) == []
    assert deliver(due_day + timedelta(days=1)) == []
    assert len(sent_mails()) == 1
    _, events, _ = api("GET", f"/invoices/{invoice['id']}/events")
    assert [e["type"] for e in events["data"]].count("invoice.reminder_sent") == 1
    print(f"\nreminder, SES throttled once: faults injected={wire.injected['ses']} deliveries=4 mails sent=1")
