"""Section "reminders": the daily reminder run at 10,000 and 100,000 open invoices, of which a fixed 200
are due around today. Measures DynamoDB ITEMS READ per reminder sent (target <= 2) and run time.

Items read are counted from the responses of every DynamoDB read, whoever made it (PynamoDB's own
botocore session or boto3's): Query and Scan add `ScannedCount` (what DynamoDB bills; >= Count), GetItem
adds 1 when an item came back, BatchGetItem the items returned. Scans are counted separately and must
stay 0: the run reads the sparse due index by date, so its cost follows the invoices due around today,
not the table.

Set-up (said in the notes too): the table is seeded straight into moto's in-process backend (no
HTTP, no signing), which is what keeps 100,000 invoices feasible. The 200 invoices around today are
complete headers on the due index with their customer and one active payment link each (what
finalize writes); the other invoices are open headers due 30 to 395 days ahead, seeded with only their
key and index attributes (moto's item sizing is quadratic in the attributes). One customer per due
invoice: the worst case for the customer reads. The clock is `invoicing.clock.now`, moved per day;
the first run has no cursor (it looks back REMINDER_LOOKBACK_DAYS), the next days are the steady state.
moto evaluates an index query by walking the whole table, so run TIMES grow with the table here while
items read do not; DynamoDB's time follows the items read. moto also deep-copies every table for each
transaction, so the worker phase runs with the invoices due 30+ days ahead parked out of the table
(`parked`; the worker only reads one invoice's partition by key, whatever the table holds) and
without moto's per-action table backup (`no_transaction_backup`).

`run(quick) -> list[dict]` (rows for `bench.runner.Row.from_dict`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

SECTION = "4 reminders"
DUE_AROUND_TODAY = 200
FIRST_RUN = datetime(2026, 3, 16, 8, 0, tzinfo=UTC)  # 09:00 in Berlin, the default schedule
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")
TARGET = 2.0


class ItemsRead:
    """Items read and calls made per DynamoDB operation, from the responses (every botocore client)."""

    def __init__(self) -> None:
        self.items: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        # items read per invoice they serve: its own items (any read by key, or the due index) and its
        # customer's (one customer per due invoice here); "" for the rest (the cursor, other indexes)
        self.by_invoice: Counter[str] = Counter()
        self._original: Any = None

    def __enter__(self) -> ItemsRead:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        items, calls, by_invoice = self.items, self.calls, self.by_invoice

        def counting(client: Any, operation: str, params: Any) -> Any:
            response = original(client, operation, params)
            if client.meta.service_model.service_name == "dynamodb":
                calls[operation] += 1
                if operation in ("Query", "Scan"):
                    items[operation] += int(response.get("ScannedCount", response.get("Count", 0)))
                    mine = operation == "Query" and params.get("IndexName") in (None, "due")
                    for item in response.get("Items", []):
                        by_invoice[_served(item) if mine else ""] += 1
                elif operation == "GetItem":
                    items[operation] += 1 if response.get("Item") else 0
                    if response.get("Item"):
                        by_invoice[_served(response["Item"])] += 1
                elif operation == "BatchGetItem":
                    items[operation] += sum(len(v) for v in response.get("Responses", {}).values())
                    for got in response.get("Responses", {}).values():
                        for item in got:
                            by_invoice[_served(item)] += 1
                elif operation == "TransactGetItems":
                    items[operation] += sum(1 for r in response.get("Responses", []) if r.get("Item"))
            return response

        self._original = original
        BaseClient._make_api_call = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from botocore.client import BaseClient

        BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    def snapshot(self) -> tuple[Counter[str], Counter[str]]:
        return Counter(self.items), Counter(self.calls)


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    from invoicing import clock

    original = clock.now
    clock.now = lambda: at  # type: ignore[assignment]
    try:
        yield
    finally:
        clock.now = original  # type: ignore[assignment]


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _moto_table(svc: Any) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(svc.settings.table_name)


@contextmanager
def parked(table: Any, keys: list[Any]) -> Iterator[None]:
    """Take items out of moto's table for a while (dict moves, no copies). moto deep-copies every table
    for each transaction (its rollback), which at 100,000 items exhausts memory; the worker's reads are
    key lookups on one invoice's partition, independent of the table's size."""
    held = {key: table.items.pop(key) for key in keys if key in table.items}
    try:
        yield
    finally:
        table.items.update(held)


def _served(item: dict[str, Any]) -> str:
    """The invoice an item read serves: its own partition's, or the invoice of a bench customer."""
    pk = str(item.get("pk", {}).get("S", ""))
    if pk.startswith("INVOICE#"):
        return pk.removeprefix("INVOICE#")
    if pk.startswith("CUSTOMER#cus_bench"):
        return f"in_bench{int(pk.removeprefix('CUSTOMER#cus_bench')):07d}"
    return ""


@contextmanager
def no_transaction_backup() -> Iterator[None]:
    """moto backs up a table with a deep copy for EVERY action of a transaction (for its rollback):
    about 0.3 s per action at a thousand items, which would make this bench measure copying. Here it
    keeps the table itself. That is safe for what the bench runs: in each of those transactions the
    conditions that can fail come before any write (condition check first, or one conditional write
    first), so a cancelled transaction has changed nothing."""
    import copy
    import types

    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    def deepcopy(obj: Any, memo: Any = None) -> Any:
        return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)

    original = models.copy
    models.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)  # type: ignore[assignment]
    try:
        yield
    finally:
        models.copy = original


def _seed(svc: Any, open_invoices: int) -> list[Any]:
    """Straight into moto's backend: customers, the 200 due invoices with a payment link, the rest.
    Returns the moto keys of the rest (the invoices due 30+ days ahead)."""
    from invoicing import clock
    from invoicing.domain.reminders import local_date, next_action_at
    from invoicing.reminder_policy import reminder_policy
    from invoicing.store import keys

    table = _moto_table(svc)
    today = FIRST_RUN.date()
    issued_dt = FIRST_RUN - timedelta(days=30)
    issued = clock.iso(issued_dt)
    policy = reminder_policy(svc.settings)

    def due_index(iid: str, due: date, zone: str) -> dict[str, Any]:
        """Where finalize put it: its first action after its issue day, in its customer's zone."""
        at = next_action_at(policy, due, after=local_date(issued_dt, zone), timezone=zone)
        assert at is not None
        pk, sk = keys.due_keys(at, iid)
        return {"due_pk": _s(pk), "due_sk": _s(sk)}

    def link_expiry(due: date) -> str:
        return clock.iso(datetime.combine(due + timedelta(days=30), datetime.min.time(), UTC))

    def invoice(i: int, customer_id: str, due: date, number: str, zone: str) -> dict[str, Any]:
        iid = f"in_bench{i:07d}"
        return {
            "pk": _s(f"INVOICE#{iid}"),
            "sk": _s("INVOICE"),
            "type": _s("Invoice"),
            "invoice_id": _s(iid),
            "customer_id": _s(customer_id),
            "status": _s("open"),
            "currency": _s("USD"),
            "version": _n(2),
            "created_at": _s(issued),
            "updated_at": _s(issued),
            "finalized_at": _s(issued),
            "invoice_number": _s(number),
            "due_date": _s(due.isoformat()),
            "days_until_due": _n(30),
            "subtotal_cents": _n(125000),
            "tax_cents": _n(23750),
            "total_cents": _n(148750),
            "amount_paid_cents": _n(0),
            "amount_remaining_cents": _n(148750),
            "line_count": _n(3),
            "customer_snapshot": {"M": {"name": _s("Contoso Retail AG"), "email": _s("ap@contoso.example")}},
            "gsi1pk": _s(f"CUSTOMER#{customer_id}"),
            "gsi1sk": _s(f"INVOICE#{issued}#{iid}"),
            "gsi2pk": _s(keys.status_pk("open", iid)),
            "gsi2sk": _s(f"{issued}#{iid}"),
            **due_index(iid, due, zone),
            # the link finalize issued, named on the header (Invoice.links_tracked)
            "links_tracked": {"BOOL": True},
            "link_id": _s(f"plink_bench{i:05d}"),
            "link_expires_at": _s(link_expiry(due)),
        }

    def line(iid: str, n: int) -> dict[str, Any]:
        return {
            "pk": _s(f"INVOICE#{iid}"),
            "sk": _s(keys.line_sk(f"li_bench{n}")),
            "type": _s("InvoiceLine"),
            "invoice_id": _s(iid),
            "line_id": _s(f"li_bench{n}"),
            "description": _s(f"Subscription, seat {n}"),
            "quantity": _s("1.0000"),
            "unit_amount_cents": _n(41667 if n < 2 else 41666),
            "amount_cents": _n(41667 if n < 2 else 41666),
            "created_at": _s(issued),
        }

    for i in range(DUE_AROUND_TODAY):
        cid = f"cus_bench{i:05d}"
        table.put_item(
            {
                "pk": _s(f"CUSTOMER#{cid}"),
                "sk": _s("CUSTOMER"),
                "type": _s("Customer"),
                "customer_id": _s(cid),
                "name": _s(f"Customer {i}"),
                "email": _s(f"ap{i}@customer.example"),
                "currency": _s("USD"),
                "locale": _s("en_US"),
                "timezone": _s(ZONES[i % len(ZONES)]),
                "reminders_enabled": {"BOOL": True},
                "created_at": _s(issued),
                "updated_at": _s(issued),
            }
        )
        due = today + timedelta(days=i % 20 - 9)  # 10 invoices on each of today-9 ... today+10
        table.put_item(invoice(i, cid, due, f"INV-2026-{i + 1:05d}", ZONES[i % len(ZONES)]))
        for n in range(3):  # its line_count: dunning reads them (invoice.marked_uncollectible carries them)
            table.put_item(line(f"in_bench{i:07d}", n))
        link = f"plink_bench{i:05d}"
        table.put_item(
            {
                "pk": _s(f"INVOICE#in_bench{i:07d}"),
                "sk": _s(f"PAYLINK#{link}"),
                "type": _s("InvoicePaymentLink"),
                "invoice_id": _s(f"in_bench{i:07d}"),
                "link_id": _s(link),
                "token_hash": _s(f"{i:064x}"),
                "created_at": _s(issued),
                "expires_at": _s(link_expiry(due)),
                "gsi1pk": _s(f"PAYTOKEN#{i:064x}"),
                "gsi1sk": _s("PAYLINK"),
            }
        )
    before = set(table.items)
    for i in range(DUE_AROUND_TODAY, open_invoices):
        # only the attributes that place them on the indexes: moto re-sizes an item on every attribute
        # set (quadratic), and these are never read by the run, only walked past by moto
        due = (today + timedelta(days=30 + i % 366)).isoformat()
        iid = f"in_bench{i:07d}"
        table.put_item(
            {
                "pk": _s(f"INVOICE#{iid}"),
                "sk": _s("INVOICE"),
                "type": _s("Invoice"),
                "status": _s("open"),
                "due_date": _s(due),
                "gsi2pk": _s(keys.status_pk("open", iid)),
                "gsi2sk": _s(f"{issued}#{iid}"),
                **due_index(iid, date.fromisoformat(due), "UTC"),
            }
        )
    return [key for key in table.items if key not in before]


def _drain(
    svc: Any, queue_url: str, counter: ItemsRead, acted: dict[str, str]
) -> tuple[Counter[str], float, dict[str, Counter[str]]]:
    """Runs every queued job; returns the outcomes, the time spent and the items read per job kind.
    `acted` gets each invoice's outcome (sent, marked_uncollectible, ...)."""
    import boto3

    from invoicing.use_cases.reminders import process_reminder_job

    sqs = boto3.client("sqs", region_name="us-east-1")
    outcomes: Counter[str] = Counter()
    by_job: dict[str, Counter[str]] = {}
    spent = 0.0
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            job = json.loads(m["Body"])
            before, _ = counter.snapshot()
            started = time.perf_counter()
            outcome = process_reminder_job(svc, job)
            outcomes[outcome] += 1
            acted[str(job["invoice_id"])] = outcome
            spent += time.perf_counter() - started
            by_job.setdefault(str(job.get("job")), Counter()).update(counter.items - before)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return outcomes, spent, by_job


def _breakdown(items: Counter[str]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(items.items()) if n) or "none"


def _measure(open_invoices: int, steady_days: int) -> list[dict[str, Any]]:
    import boto3

    from bench.fixtures import moto_account, quiet_metrics
    from invoicing.use_cases.reminders import run_reminder_schedule

    rows: list[dict[str, Any]] = []
    label = f"{open_invoices:,} open, {DUE_AROUND_TODAY} due around today"
    with moto_account() as svc:
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("-ReminderQueue"))
        boto3.client("sesv2", region_name="us-east-1").create_email_identity(EmailIdentity="bench.example")
        svc.settings = svc.settings.model_copy(
            update={"reminder_queue_url": queue_url, "reminder_from_email": "billing@bench.example"}
        )
        started = time.perf_counter()
        later = _seed(svc, open_invoices)
        seed_s = time.perf_counter() - started
        table = _moto_table(svc)
        phases: list[dict[str, Any]] = []
        with ItemsRead() as counter:
            for day in range(steady_days + 1):
                now = FIRST_RUN + timedelta(days=day)
                with frozen(now):
                    before_items, before_calls = counter.snapshot()
                    before_served = Counter(counter.by_invoice)
                    acted: dict[str, str] = {}
                    started = time.perf_counter()
                    with no_transaction_backup():  # the run's moves are one conditional write each
                        summary = run_reminder_schedule(svc)
                    run_s = time.perf_counter() - started
                    run_items = counter.items - before_items
                    run_calls = counter.calls - before_calls
                    mid_items, _ = counter.snapshot()
                    with parked(table, later), no_transaction_backup():
                        outcomes, work_s, by_job = _drain(svc, queue_url, counter, acted)
                    served = counter.by_invoice - before_served
                    work_items = counter.items - mid_items
                phases.append(
                    {
                        "day": day,
                        "run_items": run_items,
                        "run_calls": run_calls,
                        "work_items": work_items,
                        "by_job": by_job,
                        "for_reminders": sum(n for i, n in served.items() if acted.get(i) == "sent"),
                        "for_dunning": sum(n for i, n in served.items() if acted.get(i) == "marked_uncollectible"),
                        "sent": outcomes["sent"],
                        "dunned": outcomes["marked_uncollectible"],
                        "run_s": run_s,
                        "work_s": work_s,
                        "queried": summary.due_dates_queried,
                        "seen": summary.invoices_seen,
                    }
                )
        quiet_metrics()

    def per_sent(selected: list[dict[str, Any]], key: str) -> tuple[float, int, Counter[str]]:
        total: Counter[str] = Counter()
        for p in selected:
            total.update(p[key])
        sent = sum(p["sent"] for p in selected)
        return (sum(total.values()) / sent if sent else float("nan")), sent, total

    first, steady = phases[:1], phases[1:]
    scans = sum(p["run_calls"]["Scan"] for p in phases)
    for name, selected in (("first run", first), (f"steady state, days 1-{steady_days}", steady)):
        if not selected:
            continue
        run_per, sent, run_items = per_sent(selected, "run_items")
        work_per, _, work_items = per_sent(selected, "work_items")
        total = run_per + work_per
        by_job: dict[str, Counter[str]] = {}
        for p in selected:
            for job, items in p["by_job"].items():
                by_job.setdefault(job, Counter()).update(items)
        for_reminders = sum(p["for_reminders"] for p in selected)
        dunned = sum(p["dunned"] for p in selected)
        for_dunning = sum(p["for_dunning"] for p in selected)
        everything = sum(run_items.values()) + sum(work_items.values())
        rows.append(
            {
                "section": SECTION,
                "case": f"{label}: items read for a reminder, per reminder sent, run + worker ({name})",
                "median": for_reminders / sent if sent else float("nan"),
                "unit": "items",
                "n": sent,
                "target": f"<= {TARGET:g}",
                "met": sent > 0 and for_reminders / sent <= TARGET,
                "note": f"the reads that served the {sent} invoices reminded (their due-index entry, their "
                f"customer, anything the worker read of them); of all {everything} items read: "
                f"{for_dunning} for {dunned} invoices dunned "
                f"({for_dunning / dunned if dunned else 0:.2f} each: entry, customer, the invoice with its lines), "
                f"{everything - for_reminders - for_dunning} for neither (the cursor; a first run's oldest open "
                "invoice per shard; invoices read and skipped)",
            }
        )
        rows.append(
            {
                "section": SECTION,
                "case": f"{label}: daily run, all items read per reminder sent ({name})",
                "median": run_per,
                "unit": "items",
                "n": sent,
                "note": f"due index + customers + cursor: {_breakdown(run_items)}; "
                f"{sum(p['queried'] for p in selected)} due dates queried, {sum(p['seen'] for p in selected)} "
                f"invoices read, {sent} reminders sent, {sum(p['dunned'] for p in selected)} invoices dunned; "
                f"Scan calls {scans}",
            }
        )
        rows.append(
            {
                "section": SECTION,
                "case": f"{label}: run + worker, all items read per reminder sent ({name})",
                "median": total,
                "unit": "items",
                "n": sent,
                "note": f"worker reads: reminder jobs {_breakdown(by_job.get('reminder', Counter()))} (the job "
                "carries the header and the customer; reminder.sent carries the reminder, not the invoice), "
                f"dunning jobs {_breakdown(by_job.get('dunning', Counter()))} (the invoice with its lines, "
                "which invoice.marked_uncollectible carries)",
            }
        )
    rows.append(
        {
            "section": SECTION,
            "case": f"{label}: daily run time (first run, moto)",
            "median_ms": phases[0]["run_s"] * 1000,
            "n": 1,
            "note": f"{phases[0]['queried']} due-index queries; seeding took {seed_s:.1f} s (straight into moto)",
        }
    )
    if steady:
        run_ms = sorted(p["run_s"] * 1000 for p in steady)
        rows.append(
            {
                "section": SECTION,
                "case": f"{label}: daily run time (steady state, moto)",
                "median_ms": run_ms[len(run_ms) // 2],
                "p95": run_ms[-1],
                "unit": "ms",
                "n": len(run_ms),
                "note": "moto walks the whole table per index query; DynamoDB's time follows the items read",
            }
        )
    sent_all = sum(p["sent"] for p in phases)
    rows.append(
        {
            "section": SECTION,
            "case": f"{label}: worker time per reminder sent (moto)",
            "median_ms": sum(p["work_s"] for p in phases) * 1000 / max(1, sent_all),
            "n": sent_all,
            "note": "claim transaction, payment link, render, SES (moto), sent transaction",
        }
    )
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    sizes = (10_000,) if quick else (10_000, 100_000)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        rows += _measure(size, steady_days=2 if quick else 3)
    return rows


if __name__ == "__main__":
    import os
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sys.path[:0] = [str(root / "shared"), str(root)]
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    for row in run(quick=os.environ.get("QUICK", "") not in ("", "0")):
        print(json.dumps(row, default=str))
