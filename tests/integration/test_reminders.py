"""Reminders and dunning against moto, with a frozen clock moved day by day (time-machine).

The daily run (SendRemindersFunction) and the worker (ReminderWorkerFunction) are the real handlers;
SQS is moto's (a failed record stays invisible for the queue's visibility timeout, like SQS), and the
mail is read back from moto's SES backend.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
import time_machine

from tests.integration.conftest import LambdaContext, load_function
from tests.support import payments as support

serialized_moto = support.serialized_moto  # fixture: DynamoDB's per-item atomicity under threads

SENDER = "billing@seller.test"
STEPS = "upcoming:-7,due:0,overdue:+3,final:+14"
BERLIN = ZoneInfo("Europe/Berlin")
LINE = {"description": "Consulting <b>March</b>", "quantity": "1.5", "unit_amount_cents": 10000}  # 150.00


def at_nine_berlin(day: date) -> datetime:
    """When the schedule fires: cron(0 9 * * ? *) in Europe/Berlin (07:00 or 08:00 UTC)."""
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=BERLIN).astimezone(UTC)


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "0",
                    "SenderId": "x",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:local-ReminderQueue",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


@dataclass
class Mail:
    to: str
    subject: str
    html: str
    sent_at: datetime  # the frozen instant of the run that sent it


@dataclass
class World:
    api: Any
    aws: Any
    queue_url: str
    scheduler: Any
    worker: Any
    seen: int = 0
    mails: list[Mail] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    # -- set-up through the API
    def customer(self, name: str, timezone: str, **extra: Any) -> dict[str, Any]:
        slug = re.sub(r"\W+", "-", name.lower()).strip("-")
        body = {"name": name, "email": f"ap@{slug}.test", "timezone": timezone, **extra}
        status, customer, _ = self.api("POST", "/customers", body)
        assert status == 201, customer
        return customer

    def invoice(self, customer: dict[str, Any], due: date, line: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {"customer_id": customer["id"], "lines": [line or LINE], "due_date": due.isoformat()}
        status, draft, _ = self.api("POST", "/invoices", body)
        assert status == 201, draft
        status, invoice, _ = self.api("POST", f"/invoices/{draft['id']}/finalize")
        assert status == 200, invoice
        return invoice

    # -- the schedule and the queue
    def run(self, when: datetime, *, drain: bool = True) -> dict[str, Any]:
        with time_machine.travel(when, tick=False):
            summary = self.scheduler({"source": "aws.scheduler"}, LambdaContext("SendRemindersFunction", 300))
            if drain:
                self.drain()
            self.collect(when)
        return summary

    def receive(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name="us-east-1")
        return sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])

    def work(self, messages: list[dict[str, Any]]) -> list[str]:
        """Run the worker on a batch and delete the records it did not report as failed (what the
        Lambda SQS integration does). Returns the failed message ids."""
        from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

        try:
            result = self.worker(sqs_event(messages), LambdaContext("ReminderWorkerFunction", 30))
            failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
        except BatchProcessingError:  # every record failed: the invocation fails, SQS keeps them all
            failed = [m["MessageId"] for m in messages]
        sqs = boto3.client("sqs", region_name="us-east-1")
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        self.failures += failed
        return failed

    def drain(self) -> None:
        while messages := self.receive():
            self.work(messages)

    def collect(self, when: datetime) -> list[Mail]:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
        new = [
            Mail(to=m.destinations["ToAddresses"][0], subject=m.subject, html=m.body, sent_at=when)
            for m in sent[self.seen :]
        ]
        self.seen = len(sent)
        self.mails += new
        return new

    def mails_of(self, invoice: dict[str, Any]) -> list[Mail]:
        # numbers run per customer (every customer has an INV-2026-00001): match the recipient too
        to = invoice["customer"]["email"]
        return [m for m in self.mails if m.to == to and invoice["invoice_number"] in m.subject]

    def reminders(self, invoice_id: str) -> list[dict[str, Any]]:
        status, body, _ = self.api("GET", f"/invoices/{invoice_id}/reminders")
        assert status == 200, body
        return body["data"]

    def get(self, invoice_id: str) -> dict[str, Any]:
        return self.api("GET", f"/invoices/{invoice_id}")[1]

    def events(self, invoice_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/invoices/{invoice_id}/events")[1]["data"]


def kind_of(mail: Mail) -> str:
    """The reminder kind, from its subject in English or in German (the de_DE customers' language)."""
    subject = mail.subject
    prefixes = (
        ("Final reminder", "final"),
        ("Letzte Mahnung", "final"),
        ("Overdue", "overdue"),
        ("Überfällig", "overdue"),
        ("Reminder:", "manual"),
        ("Zahlungserinnerung:", "manual"),
    )
    for prefix, kind in prefixes:
        if subject.startswith(prefix):
            return kind
    return "due" if subject.endswith(("is due today", "ist heute fällig")) else "upcoming"


def link_in(html: str) -> str | None:
    match = re.search(r'href="(https://pay\.example\.test/pay/[^"]+)"', html)
    return match.group(1) if match else None


@pytest.fixture
def world(api, aws, monkeypatch):
    from invoicing import root

    # boto3 clients live with the process's root; a module that ran against a moto SERVER leaves
    # clients bound to its (stopped) endpoint behind: start from fresh ones, bound to this moto
    root.reset()

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("-ReminderQueue"))
    boto3.client("sesv2", region_name="us-east-1").create_email_identity(EmailIdentity="seller.test")
    for key, value in {
        "REMINDER_QUEUE_URL": queue_url,
        "REMINDER_FROM_EMAIL": SENDER,
        "REMINDER_STEPS": STEPS,
        "SELLER_NAME": "Seller & Co",
    }.items():
        monkeypatch.setenv(key, value)
    root.reset()
    scheduler = load_function("send_reminders").handle_reminder_schedule
    worker = load_function("reminder_worker").handle_reminder_jobs
    return World(api=api, aws=aws, queue_url=queue_url, scheduler=scheduler, worker=worker)


# ---------------------------------------------------------------- the calendar
def test_each_reminder_once_on_the_customers_local_day_then_dunning(world, capsys):
    # Given three customers far apart in time zones, each with an invoice due on 2026-03-20, a paid
    # invoice, a voided one, a draft and a customer who turned reminders off
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    due = date(2026, 3, 20)
    with time_machine.travel(start, tick=False):
        rate = {"rate_to_usd": "1.08", "source": "ecb", "as_of": "2026-03-01T00:00:00Z"}
        assert world.api("PUT", "/exchange-rates/EUR", rate)[0] in (200, 201)
        zones = {"Pacific/Honolulu": None, "Europe/Berlin": None, "Pacific/Kiritimati": None}
        for tz in zones:
            zones[tz] = world.invoice(world.customer(f"Customer {tz}", tz, locale="de_DE", currency="EUR"), due)
        quiet = world.customer("No Reminders Ltd", "UTC", reminders_enabled=False)
        quiet_invoice = world.invoice(quiet, due)
        paid = world.invoice(world.customer("Paid Early", "UTC"), due)
        assert (
            world.api("POST", f"/invoices/{paid['id']}/payments", {"amount_cents": 15000, "method": "card"})[0] == 201
        )
        void = world.invoice(world.customer("Voided", "UTC"), due)
        assert world.api("POST", f"/invoices/{void['id']}/void")[0] == 200
        draft_status, draft, _ = world.api(
            "POST",
            "/invoices",
            {"customer_id": quiet["id"], "lines": [LINE], "due_date": due.isoformat()},
        )
        assert draft_status == 201
    # When the schedule runs every day at 09:00 Berlin time (across the DST change of 2026-03-29)
    day = start.date()
    while day <= date(2026, 4, 13):
        world.run(at_nine_berlin(day))
        day += timedelta(days=1)
    # Then each invoice got each kind exactly once, on the step's day in its customer's zone
    expected = {"upcoming": date(2026, 3, 13), "due": due, "overdue": date(2026, 3, 23), "final": date(2026, 4, 3)}
    for tz, invoice in zones.items():
        mails = world.mails_of(invoice)
        assert sorted(kind_of(m) for m in mails) == sorted(expected), (tz, [m.subject for m in mails])
        for mail in mails:
            assert mail.sent_at.astimezone(ZoneInfo(tz)).date() == expected[kind_of(mail)], (tz, mail.subject)
            assert mail.to == f"ap@customer-{tz.lower().replace('/', '-').replace('_', '-')}.test"
        ledger = world.reminders(invoice["id"])
        assert {r["kind"]: r["status"] for r in ledger} == dict.fromkeys(expected, "sent")
        assert all(r["message_id"] and r["attempts"] == 1 and r["actor"] == "system:reminders" for r in ledger)
        # and after the last step + 7 days the invoice was written off by dunning, on that local day
        inv = world.get(invoice["id"])
        assert inv["status"] == "uncollectible"
        dunned_at = datetime.fromisoformat(inv["marked_uncollectible_at"].replace("Z", "+00:00"))
        assert dunned_at.astimezone(ZoneInfo(tz)).date() == date(2026, 4, 10)
        event = next(e for e in world.events(invoice["id"]) if e["type"] == "invoice.marked_uncollectible")
        assert event["actor"] == "system:dunning" and event["data"]["reason"] == "dunning"
        assert [e["type"] for e in world.events(invoice["id"])].count("invoice.reminder_sent") == 4
    # the far-west customer gets each mail one UTC day later than the far-east one
    honolulu = {kind_of(m): m.sent_at.date() for m in world.mails_of(zones["Pacific/Honolulu"])}
    kiritimati = {kind_of(m): m.sent_at.date() for m in world.mails_of(zones["Pacific/Kiritimati"])}
    assert all(honolulu[k] == kiritimati[k] + timedelta(days=1) for k in expected)
    # no reminder to a customer who turned them off (dunning still applies), nor to paid, void, drafts
    assert world.mails_of(quiet_invoice) == [] and world.reminders(quiet_invoice["id"]) == []
    assert world.get(quiet_invoice["id"])["status"] == "uncollectible"
    assert world.mails_of(paid) == [] and world.get(paid["id"])["status"] == "paid"
    assert world.mails_of(void) == [] and world.get(void["id"])["status"] == "void"
    assert world.get(draft["id"])["status"] == "draft"
    assert len(world.mails) == 12 and world.failures == []
    # The mails: number, amount in the customer's locale, due date, links; tokens never in the logs
    berlin = {kind_of(m): m for m in world.mails_of(zones["Europe/Berlin"])}
    for mail in berlin.values():
        assert zones["Europe/Berlin"]["invoice_number"] in mail.html
        assert "150,00\xa0€" in mail.html and "20.03.2026" in mail.html
        assert "Seller &amp; Co" in mail.html
    # upcoming and due: the link sent with the invoice is still active, so no new link is issued;
    # overdue and final: a fresh link each, the older ones revoked
    assert link_in(berlin["upcoming"].html) is None and link_in(berlin["due"].html) is None
    overdue_link, final_link = link_in(berlin["overdue"].html), link_in(berlin["final"].html)
    assert overdue_link and final_link and overdue_link != final_link
    logs = capsys.readouterr()
    for link in (overdue_link, final_link):
        token = support.token_of(link)
        assert token not in logs.out and token not in logs.err
    issued = [e for e in world.events(zones["Europe/Berlin"]["id"]) if e["type"] == "invoice.payment_link_issued"]
    assert [e["actor"] for e in issued] == ["system:reminders", "system:reminders"]
    assert len(issued[1]["data"]["revoked_link_ids"]) == 1


def test_paying_stops_later_reminders(world):
    with time_machine.travel(datetime(2026, 5, 1, 10, 0, tzinfo=UTC), tick=False):
        invoice = world.invoice(world.customer("Pays After Due", "Europe/Berlin"), date(2026, 5, 15))
    day = date(2026, 5, 2)
    while day <= date(2026, 6, 10):
        if day == date(2026, 5, 16):  # the day after the `due` reminder, a partial then the full payment
            with time_machine.travel(at_nine_berlin(day) - timedelta(hours=1), tick=False):
                assert (
                    world.api("POST", f"/invoices/{invoice['id']}/payments", {"amount_cents": 5000, "method": "card"})[
                        0
                    ]
                    == 201
                )
                assert (
                    world.api("POST", f"/invoices/{invoice['id']}/payments", {"amount_cents": 10000, "method": "card"})[
                        0
                    ]
                    == 201
                )
        world.run(at_nine_berlin(day))
        day += timedelta(days=1)
    assert [kind_of(m) for m in world.mails_of(invoice)] == ["upcoming", "due"]
    assert world.get(invoice["id"])["status"] == "paid"  # never written off


def test_the_pdf_link_in_a_mail_lives_with_its_pay_link(world, aws):
    """A pre-signed S3 URL signed by the worker's role dies with the role's session (hours), whatever
    expiry it carries. A mail that brings a pay link links the PDF behind that link's token instead."""
    with time_machine.travel(datetime(2026, 4, 1, 10, 0, tzinfo=UTC), tick=False):
        customer = world.customer("Pdf Reader", "UTC")
        invoice = world.invoice(customer, date(2026, 4, 10))
    key = f"invoices/{customer['id']}/{invoice['invoice_number']}.pdf"
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=aws.bucket_name, Key=key, Body=b"%PDF-1.7")
    boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name).update_item(
        Key={"pk": f"INVOICE#{invoice['id']}", "sk": "INVOICE"},
        UpdateExpression="SET pdf_s3_key = :k, pdf_status = :s",
        ExpressionAttributeValues={":k": key, ":s": "rendered"},
    )
    # the due reminder: the finalize link is still active, so no new pay link, and a pre-signed PDF URL
    world.run(at_nine_berlin(date(2026, 4, 10)))
    # the overdue reminder issues a fresh pay link: the PDF link is that link's /pdf
    world.run(at_nine_berlin(date(2026, 4, 13)))
    due, overdue = world.mails_of(invoice)
    assert (kind_of(due), kind_of(overdue)) == ("due", "overdue")
    assert "X-Amz-Signature=" in due.html and "link valid for up to 7 days" in due.html
    pay_link = link_in(overdue.html)
    assert pay_link and f'href="{pay_link}/pdf"' in overdue.html
    assert "X-Amz-Signature=" not in overdue.html and "link valid for" not in overdue.html


def test_a_missed_week_sends_only_the_latest_due_step(world):
    with time_machine.travel(datetime(2026, 6, 1, 10, 0, tzinfo=UTC), tick=False):
        invoice = world.invoice(world.customer("Catch Up", "Europe/Berlin"), date(2026, 6, 20))
    for day in (date(2026, 6, 2), date(2026, 6, 12)):  # runs until the 12th, then nothing for 11 days
        world.run(at_nine_berlin(day))
    assert world.mails_of(invoice) == []
    # When the schedule comes back on the 24th (upcoming 13th, due 20th and overdue 23rd were missed)
    world.run(at_nine_berlin(date(2026, 6, 24)))
    # Then only the latest due step goes out, once
    assert [kind_of(m) for m in world.mails_of(invoice)] == ["overdue"]
    world.run(at_nine_berlin(date(2026, 6, 25)))
    assert [kind_of(m) for m in world.mails_of(invoice)] == ["overdue"]
    assert {r["kind"] for r in world.reminders(invoice["id"])} == {"overdue"}


# ---------------------------------------------------------------- concurrency and failures
def test_two_overlapping_runs_send_nothing_twice(world, serialized_moto):
    """Two runs at once (a retried schedule invocation, a manual fire) and their jobs worked by
    concurrent workers. moto's in-process DynamoDB is not atomic under threads, so `serialized_moto`
    puts a lock around moto's dispatch (what DynamoDB guarantees per item); everything else is real."""
    with time_machine.travel(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), tick=False):
        customers = [world.customer(f"Concurrent {i}", "Europe/Berlin") for i in range(3)]
        invoices = [world.invoice(c, date(2026, 7, 10)) for c in customers for _ in range(2)]
    when = at_nine_berlin(date(2026, 7, 10))  # every invoice: `due` today
    with time_machine.travel(when, tick=False):
        barrier = threading.Barrier(2)
        summaries: list[dict[str, Any]] = []

        def run() -> None:
            barrier.wait()
            summaries.append(world.scheduler({}, LambdaContext("SendRemindersFunction", 300)))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # How many of the six the second run still sees (and enqueues again) before the first moved
        # their due-index entries depends on thread timing. A run reads a date whole before it moves
        # anything, so one of them sees all six; every job must reach a worker.
        enqueued = [s["reminders_enqueued"] for s in summaries]
        assert 6 in enqueued and 6 <= sum(enqueued) <= 12, enqueued
        batches = []
        while messages := world.receive():
            batches.append(messages)
        assert sum(len(b) for b in batches) == sum(enqueued)
        workers = [threading.Thread(target=world.work, args=(b,)) for b in batches]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        world.collect(when)
    for invoice in invoices:
        assert [kind_of(m) for m in world.mails_of(invoice)] == ["due"]
    assert len(world.mails) == 6 and world.failures == []


class FlakySes:
    def __init__(self, real: Any, failures: int) -> None:
        self.real = real
        self.failures = failures
        self.calls = 0

    def send(self, mail: Any) -> str:
        from invoicing.adapters.email import EmailDeliveryFailed

        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise EmailDeliveryFailed("SES did not accept the mail (Throttling)", "Throttling")
        return self.real.send(mail)


def use_flaky_ses(failures: int) -> FlakySes:
    from invoicing.reminder_delivery import mailer
    from invoicing.root import get_services

    svc = get_services()
    flaky = FlakySes(mailer(svc), failures)
    svc.adapters["mailer"] = flaky
    return flaky


def test_ses_failure_leaves_a_retryable_claim_and_never_sends_twice(world):
    with time_machine.travel(datetime(2026, 8, 1, 10, 0, tzinfo=UTC), tick=False):
        invoice = world.invoice(world.customer("Flaky Mail", "Europe/Berlin"), date(2026, 8, 10))
    flaky = use_flaky_ses(failures=1)
    when = at_nine_berlin(date(2026, 8, 10))
    # When SES refuses the first attempt
    world.run(when)
    assert len(world.failures) == 1 and world.mails_of(invoice) == []
    (entry,) = world.reminders(invoice["id"])
    assert (entry["kind"], entry["status"], entry["attempts"], entry["last_error"]) == (
        "due",
        "sending",
        1,
        "Throttling",
    )
    # and a second copy of the job comes while the lease still runs (a duplicate run): nothing is sent
    with time_machine.travel(when + timedelta(seconds=30), tick=False):
        world.scheduler({}, LambdaContext("SendRemindersFunction", 300))
        world.drain()
    assert flaky.calls == 1 and world.reminders(invoice["id"])[0]["status"] == "sending"
    # Then SQS redelivers the failed job after its visibility timeout (180 s > the 120 s lease)
    with time_machine.travel(when + timedelta(seconds=200), tick=False):
        world.drain()
        world.collect(when)
    assert [kind_of(m) for m in world.mails_of(invoice)] == ["due"]
    (entry,) = world.reminders(invoice["id"])
    assert (entry["status"], entry["attempts"], entry["last_error"]) == ("sent", 2, None)
    # and nothing more, whatever runs again that day or later
    world.run(when + timedelta(hours=5))
    world.run(at_nine_berlin(date(2026, 8, 11)))
    assert [kind_of(m) for m in world.mails_of(invoice)] == ["due"]


def test_an_expired_claim_is_retried_by_the_next_run_only_after_its_lease_and_never_once_paid(world):
    with time_machine.travel(datetime(2026, 9, 1, 10, 0, tzinfo=UTC), tick=False):
        customer = world.customer("Crashy", "UTC")
        retried = world.invoice(customer, date(2026, 9, 10))
        paid_meanwhile = world.invoice(customer, date(2026, 9, 10))
    # Given sends that kept failing: the queue gave up on them (DLQ), the ledger says `sending`
    use_flaky_ses(failures=2)
    when = at_nine_berlin(date(2026, 9, 10))
    world.run(when)
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.purge_queue(QueueUrl=world.queue_url)  # what maxReceiveCount does: off to the DLQ
    assert {r["status"] for i in (retried, paid_meanwhile) for r in world.reminders(i["id"])} == {"sending"}
    with time_machine.travel(when + timedelta(minutes=1), tick=False):
        assert (
            world.api("POST", f"/invoices/{paid_meanwhile['id']}/payments", {"amount_cents": 15000, "method": "card"})[
                0
            ]
            == 201
        )
    # When a run happens before the lease ran out: nothing is retried yet
    summary = world.run(when + timedelta(seconds=60))
    assert summary["retries_enqueued"] == 0
    # When the next day's run comes: the expired claims are retried, the paid invoice's is cancelled
    summary = world.run(at_nine_berlin(date(2026, 9, 11)))
    assert summary["retries_enqueued"] == 2
    assert [kind_of(m) for m in world.mails_of(retried)] == ["due"]
    assert world.mails_of(paid_meanwhile) == []
    assert world.reminders(retried["id"])[0]["status"] == "sent"
    assert world.reminders(paid_meanwhile["id"])[0]["status"] == "cancelled"
    assert world.run(at_nine_berlin(date(2026, 9, 12)))["retries_enqueued"] == 0


def test_a_payment_between_the_run_and_the_worker_shows_the_current_amount(world):
    with time_machine.travel(datetime(2026, 10, 1, 10, 0, tzinfo=UTC), tick=False):
        invoice = world.invoice(world.customer("Part Payer", "UTC"), date(2026, 10, 20))
    when = at_nine_berlin(date(2026, 10, 20))
    world.run(when, drain=False)  # the job (with the amount the run read) waits on the queue
    with time_machine.travel(when + timedelta(seconds=5), tick=False):
        assert (
            world.api("POST", f"/invoices/{invoice['id']}/payments", {"amount_cents": 5000, "method": "card"})[0] == 201
        )
        world.drain()
        world.collect(when)
    (mail,) = world.mails_of(invoice)
    assert "$100.00" in mail.html and "$150.00" not in mail.html


def test_a_run_reads_only_the_invoices_it_acts_on_in_every_zone(world):
    # Given invoices due on 2026-03-20 for customers 24 hours apart, and one who turned reminders off
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    due = date(2026, 3, 20)
    with time_machine.travel(start, tick=False):
        zones = ("Pacific/Kiritimati", "Europe/Berlin", "Pacific/Honolulu")
        invoices = [world.invoice(world.customer(f"Reads {tz}", tz), due) for tz in zones]
        quiet = world.invoice(world.customer("Reads Quiet", "UTC", reminders_enabled=False), due)
    # When the schedule runs daily at 09:00 UTC, and once more five minutes later each day
    seen = acted = again = 0
    day = start.replace(hour=9) + timedelta(days=1)
    while day.date() <= date(2026, 4, 13):
        summary = world.run(day)
        seen += summary["invoices_seen"]
        acted += summary["reminders_enqueued"] + summary["dunning_enqueued"]
        again += world.run(day + timedelta(minutes=5))["invoices_seen"]
        day += timedelta(days=1)
    # Then every invoice got each step once and was written off
    steps = len(STEPS.split(","))
    for invoice in invoices:
        assert len(world.mails_of(invoice)) == steps
        assert world.get(invoice["id"])["status"] == "uncollectible"
    assert world.get(quiet["id"])["status"] == "uncollectible" and world.mails_of(quiet) == []
    # and the runs read each invoice only on the days something was due for it: its steps (the quiet
    # one's are read and skipped: its customer may turn reminders back on) and its dunning day
    assert acted == len(invoices) * (steps + 1) + 1
    assert seen == acted + steps
    assert again == 0  # a second run the same hour reads nothing: the first moved what it read


# ---------------------------------------------------------------- the API
def test_manual_reminders_and_the_listing(world, aws):
    with time_machine.travel(datetime(2026, 11, 2, 10, 0, tzinfo=UTC), tick=False):
        customer = world.customer("Manual Ltd", "Europe/Berlin", reminders_enabled=False)
        invoice = world.invoice(customer, date(2026, 11, 30))
        # a rendered PDF
        key = f"invoices/{customer['id']}/{invoice['invoice_number']}.pdf"
        boto3.client("s3", region_name="us-east-1").put_object(Bucket=aws.bucket_name, Key=key, Body=b"%PDF-1.7")
        table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name)
        table.update_item(
            Key={"pk": f"INVOICE#{invoice['id']}", "sk": "INVOICE"},
            UpdateExpression="SET pdf_s3_key = :k, pdf_status = :s",
            ExpressionAttributeValues={":k": key, ":s": "rendered"},
        )
        version_before = world.get(invoice["id"])["version"]
        # When a manual reminder is sent twice (allowed: each has its own ledger entry)
        first = world.api("POST", f"/invoices/{invoice['id']}/reminders", principal="clerk")
        second = world.api("POST", f"/invoices/{invoice['id']}/reminders", principal="clerk")
        world.collect(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    assert first[0] == 201 and second[0] == 201, (first, second)
    assert first[1]["kind"] == "manual" and first[1]["status"] == "sent" and first[1]["trigger"] == "manual"
    assert first[1]["actor"] == "api_key:clerk" and first[1]["key"] != second[1]["key"]
    assert first[1]["recipient"] == "ap@manual-ltd.test" and first[1]["message_id"]
    mails = world.mails_of(invoice)
    assert [kind_of(m) for m in mails] == ["manual", "manual"]  # sent even though scheduled ones are off
    links = [link_in(m.html) for m in mails]
    assert all(links) and links[0] != links[1]  # each with a fresh link, the earlier one revoked
    # the PDF behind each mail's own pay link (it lives with that link), not a pre-signed S3 URL
    assert all(f'href="{link}/pdf"' in m.html for link, m in zip(links, mails, strict=True))
    assert not any("X-Amz-Signature=" in m.html for m in mails)
    # Then the listing shows both, with when and to whom
    listed = world.reminders(invoice["id"])
    assert [r["key"] for r in listed] == [first[1]["key"], second[1]["key"]]
    assert all(r["sent_at"] and r["status"] == "sent" for r in listed)
    sent_events = [e for e in world.events(invoice["id"]) if e["type"] == "invoice.reminder_sent"]
    assert [e["actor"] for e in sent_events] == ["api_key:clerk", "api_key:clerk"]
    assert all("pay/" not in json.dumps(e) for e in world.events(invoice["id"]))  # no token in the trail
    # and each sent reminder is public (issue #17): `reminder.sent` carries the reminder as listed,
    # without its attempt count and last error, and leaves the invoice's version where it was
    for entry in listed:
        status, page, _ = world.api("GET", "/events", query={"object_id": entry["id"], "type": "reminder.sent"})
        assert status == 200, page
        [event] = page["data"]
        assert event["sequence"] == 100
        assert event["data"]["object"] == {k: v for k, v in entry.items() if k not in ("attempts", "last_error")} | {
            "invoice_id": invoice["id"]
        }
    assert {e["data"]["reminder_id"] for e in sent_events} == {r["id"] for r in listed}
    assert world.get(invoice["id"])["version"] == version_before


def test_manual_reminder_for_an_uncollectible_invoice_but_not_paid_void_or_draft(world):
    customer = world.customer("States Ltd", "UTC")
    written_off = world.invoice(customer, date(2030, 1, 1))
    assert world.api("POST", f"/invoices/{written_off['id']}/mark-uncollectible")[0] == 200
    status, body, _ = world.api("POST", f"/invoices/{written_off['id']}/reminders")
    assert status == 201 and body["status"] == "sent"
    paid = world.invoice(customer, date(2030, 1, 1))
    world.api("POST", f"/invoices/{paid['id']}/payments", {"amount_cents": 15000, "method": "card"})
    void = world.invoice(customer, date(2030, 1, 1))
    world.api("POST", f"/invoices/{void['id']}/void")
    _, draft, _ = world.api("POST", "/invoices", {"customer_id": customer["id"], "lines": [LINE]})
    for inv in (paid, void, draft):
        status, body, _ = world.api("POST", f"/invoices/{inv['id']}/reminders")
        assert status == 409 and body["error"]["code"] == "invoice_not_remindable", body
        assert world.reminders(inv["id"]) == []
    assert world.api("POST", "/invoices/in_nope/reminders")[0] == 404
    assert world.api("GET", "/invoices/in_nope/reminders")[0] == 404


def test_manual_reminder_when_ses_is_down_is_a_503_and_not_sent_later(world):
    invoice = world.invoice(world.customer("Down Ltd", "UTC"), date(2030, 1, 1))
    use_flaky_ses(failures=1)
    status, body, _ = world.api("POST", f"/invoices/{invoice['id']}/reminders")
    assert status == 503 and body["error"]["code"] == "email_unavailable"
    (entry,) = world.reminders(invoice["id"])
    assert entry["status"] == "failed" and entry["last_error"] == "Throttling"
    later = datetime.now(UTC) + timedelta(days=1)
    assert world.run(later)["retries_enqueued"] == 0


# ---------------------------------------------------------------- the sample events
def test_sample_events_drive_the_handlers(world):
    from tests.conftest import ROOT

    def event(name: str) -> dict[str, Any]:
        return json.loads((ROOT / "events" / name).read_text())

    # the schedule's event: an empty table gives an empty run
    summary = world.scheduler(event("schedule_daily_reminders.json"), LambdaContext("SendRemindersFunction", 300))
    assert summary["reminders_enqueued"] == 0 and summary["due_dates_queried"] > 0
    # a reminder job and a dunning job for invoices that do not exist: handled, nothing sent, no retry
    result = world.worker(event("sqs_reminder_job.json"), LambdaContext("ReminderWorkerFunction", 30))
    assert result == {"batchItemFailures": []}
    assert world.collect(datetime.now(UTC)) == []
    # the manual reminder's API event reaches the route (404: the sample invoice does not exist)
    api = load_function("api").handle_api_request
    response = api(event("api_send_reminder.json"), LambdaContext())
    assert response["statusCode"] == 404 and json.loads(response["body"])["error"]["code"] == "invoice_not_found"


# ---------------------------------------------------------------- the payment link, from the header
def test_reminders_decide_on_the_link_from_the_header_without_reading_the_links(world, monkeypatch):
    # Given an invoice finalized with its link, and the links store made to fail if it is read
    from invoicing.store.payments import PaymentStore

    with time_machine.travel(datetime(2026, 10, 1, 10, 0, tzinfo=UTC), tick=False):
        invoice = world.invoice(world.customer("Header Reader", "UTC"), date(2026, 10, 20))

    def no_read(self: Any, invoice_id: str) -> Any:
        raise AssertionError("the reminder read the payment links")

    monkeypatch.setattr(PaymentStore, "list_links", no_read)
    # When the upcoming and the due reminders go out: they refer to the link sent with the invoice
    world.run(at_nine_berlin(date(2026, 10, 13)))
    world.run(at_nine_berlin(date(2026, 10, 20)))
    # and the overdue one carries a fresh link, revoking the first: still without reading the links
    world.run(at_nine_berlin(date(2026, 10, 23)))
    assert [kind_of(m) for m in world.mails_of(invoice)] == ["upcoming", "due", "overdue"]
    assert [link_in(m.html) is not None for m in world.mails_of(invoice)] == [False, False, True]
    assert world.failures == []


def test_a_link_revoked_between_the_run_and_the_worker_gets_the_mail_a_fresh_one(world):
    # Given a due reminder queued while the invoice's link was active
    with time_machine.travel(datetime(2026, 10, 1, 10, 0, tzinfo=UTC), tick=False):
        invoice = world.invoice(world.customer("Late Revoker", "UTC"), date(2026, 10, 20))
    when = at_nine_berlin(date(2026, 10, 20))
    world.run(when, drain=False)
    # When the links are revoked before the worker sends it (the invoice's version does not change)
    with time_machine.travel(when + timedelta(seconds=5), tick=False):
        assert world.api("DELETE", f"/invoices/{invoice['id']}/payment-link")[0] == 204
        world.drain()
        world.collect(when)
    # Then the claim saw the header's link change, and the mail carries a new, working link
    (mail,) = world.mails_of(invoice)
    assert kind_of(mail) == "due" and link_in(mail.html) is not None
    assert [r["status"] for r in world.reminders(invoice["id"])] == ["sent"]
