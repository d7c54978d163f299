"""Section 2: DynamoDB round trips per use case, counted (not guessed) against moto in-process.

Every botocore call is counted by operation name (see fixtures.CallCounter). A sanity case first
proves the counter sees PynamoDB's own session and boto3's alike. Counts do not depend on the
machine, so n = 1.
"""

from __future__ import annotations

import importlib.util
import math
from collections import Counter
from typing import Any

from bench.fixtures import (
    CallCounter,
    actor,
    create_draft,
    describe_calls,
    finalize,
    make_customer,
    make_rates,
    moto_account,
    quiet_metrics,
)
from bench.runner import Report, Row

SECTION = "2 dynamodb"
LINE_COUNTS = (1, 10, 95, 100)
READ_OPS = ("Query", "GetItem", "BatchGetItem", "Scan")


def _row(case: str, calls: Counter[str], *, target: str = "", met: bool | None = None, extra: str = "") -> Row:
    detail = describe_calls(calls)
    if extra:
        detail = f"{detail}; {extra}" if detail else extra
    return Row(SECTION, case, float(sum(calls.values())), None, "calls", 1, target=target, met=met, note=detail)


# issue #20: the draft, one batch for everything else, one transaction
FINALIZE_CALLS = Counter({"Query": 1, "BatchGetItem": 1, "TransactWriteItems": 1})
FINALIZE_TARGET = "= 3 calls: Query, BatchGetItem, TransactWriteItems"


def _reads(calls: Counter[str]) -> int:
    return sum(calls[op] for op in READ_OPS)


def _sanity(counter: CallCounter, svc: Any) -> Row:
    """One PynamoDB GetItem (its own botocore session) and one boto3 Query must count as exactly those two."""
    import boto3

    table = svc.settings.table_name
    with counter.span() as calls:
        assert svc.repo.get_api_key("no-such-key") is None  # ApiKeyItem.get: one GetItem through PynamoDB
        boto3.client("dynamodb", region_name="us-east-1").query(
            TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "SANITY#1"}}
        )
    ok = calls == Counter({"GetItem": 1, "Query": 1})
    return _row("sanity: 1 PynamoDB GetItem + 1 boto3 Query", calls, target="= 2 (GetItem 1, Query 1)", met=ok)


def run(report: Report, quick: bool) -> None:
    from invoicing.use_cases.invoices import add_line, get_invoice, list_invoices
    from invoicing.use_cases.lifecycle import void_invoice

    with moto_account() as svc, CallCounter() as counter:
        report.add(_sanity(counter, svc))
        customer = make_customer(svc)
        rates = make_rates(svc)

        # -- create
        create_counts: dict[int, Counter[str]] = {}
        drafts: dict[int, Any] = {}
        for lines in (1, 10, 95):
            with counter.span() as calls:
                drafts[lines] = create_draft(svc, customer.id, rates, lines)
            create_counts[lines] = calls
        for lines in (1, 10, 95):
            same = create_counts[lines] == create_counts[1]
            report.add(
                _row(f"create draft, {lines} line(s)", create_counts[lines], target="= create with 1 line", met=same)
            )
        with counter.span() as calls:
            drafts[100] = create_draft(svc, customer.id, rates, 100)
        probe = create_draft(svc, customer.id, rates, 1)
        with counter.span() as add_one:
            add_line(svc, actor(), probe.id, _one_line(rates))
        report.add(
            _row(
                "create draft, 100 lines (create 95 + 5 add-line)",
                calls,
                extra="more than 95 lines cannot share one 100-action transaction",
            )
        )
        report.add(
            _row(
                "add line (to a draft)", add_one, target="1 TransactWriteItems", met=add_one["TransactWriteItems"] == 1
            )
        )

        # -- get with lines
        get_counts = {}
        for lines in LINE_COUNTS:
            with counter.span() as calls:
                invoice = get_invoice(svc, drafts[lines].id)
            assert len(invoice.lines) == lines, (len(invoice.lines), lines)
            get_counts[lines] = calls
            report.add(
                _row(
                    f"get with lines, {lines} line(s)",
                    calls,
                    target="= 1 Query",
                    met=calls == Counter({"Query": 1}),
                )
            )

        # -- finalize
        fin_counts = {}
        for lines in LINE_COUNTS:
            with counter.span() as calls:
                finalize(svc, drafts[lines].id)
            quiet_metrics()
            fin_counts[lines] = calls
            report.add(
                _row(
                    f"finalize, {lines} line(s) (+ payment link)",
                    calls,
                    target=FINALIZE_TARGET,
                    met=calls == FINALIZE_CALLS,
                    extra=f"{_reads(calls)} reads",
                )
            )
        constant = all(fin_counts[n] == fin_counts[10] for n in LINE_COUNTS[1:])
        report.note(
            "dynamodb: finalize is "
            + ("constant" if constant else "NOT constant")
            + " in the number of lines ("
            + ", ".join(f"{n} lines: {sum(fin_counts[n].values())} calls" for n in LINE_COUNTS)
            + "). Calls: the draft with its lines (Query); the customer, its sequence item, the tax rates and "
            "(not USD) the exchange rate in one strongly consistent BatchGetItem; the TransactWriteItems, which "
            "marks a rate used only on its first use (conditioned on the terms the tax was computed from). The "
            "response is the invoice as committed, built in memory. A lost number race adds one GetItem of the "
            "sequence item."
        )
        eur_customer = make_customer(svc, currency="EUR")
        from datetime import UTC, datetime

        from invoicing.use_cases.rates import put_exchange_rate

        put_exchange_rate(svc, "EUR", rate_to_usd="1.08", source="bench", as_of=datetime.now(UTC))
        eur_draft = create_draft(svc, eur_customer.id, rates, 10)
        with counter.span() as calls:
            finalize(svc, eur_draft.id)
        quiet_metrics()
        report.add(
            _row(
                "finalize, 10 lines, EUR (+ FX rate)",
                calls,
                target=FINALIZE_TARGET,
                met=calls == FINALIZE_CALLS,
                extra=f"{_reads(calls)} reads",
            )
        )

        # -- item sizes: what one write of the header costs, in the table and in each GSI with projection ALL
        for lines in (10, 95):
            size = header_size(svc, drafts[lines].id)
            report.add(
                Row(
                    SECTION,
                    f"finalized header item size, {lines} lines",
                    size / 1024,
                    None,
                    "KB",
                    1,
                    note=f"~{math.ceil(size / 1024)} WCU per write of the header, and again per GSI that projects it "
                    "(gsi1, gsi2, due: ALL)",
                )
            )

        # -- list a page (the customer now has 6 invoices; make it > 1 page of 20)
        for _ in range(20):
            create_draft(svc, customer.id, rates, 1)
        with counter.span() as calls:
            page = list_invoices(svc, customer_id=customer.id, status=None, limit=20, starting_after=None)
        report.add(
            _row(
                "list a page (20 of 26, by customer)",
                calls,
                target="= 1 Query",
                met=calls == Counter({"Query": 1}) and len(page.items) == 20,
            )
        )
        with counter.span() as calls:
            list_invoices(svc, customer_id=None, status="open", limit=20, starting_after=None)
        # a status listing is sharded (issue #20): one Query per shard of STATUS#open, merged in order
        shards = svc.settings.index_shards
        report.add(
            _row(
                "list a page (status=open)",
                calls,
                target=f"= 1 Query per shard ({shards})",
                met=calls == Counter({"Query": shards}),
            )
        )

        # -- payment
        if importlib.util.find_spec("invoicing.use_cases.payments") is not None:
            from invoicing.domain.payments import PaymentMethod
            from invoicing.use_cases.payments import RecordPayment, record_payment

            opened = drafts[10].id
            with counter.span() as calls:
                record_payment(
                    svc, actor(), opened, RecordPayment(amount_cents=100_00, method=PaymentMethod.BANK_TRANSFER)
                )
            quiet_metrics()
            report.add(
                _row(
                    "record a payment (partial)",
                    calls,
                    target="1 TransactWriteItems",
                    met=calls["TransactWriteItems"] == 1,
                    extra=f"{_reads(calls)} reads",
                )
            )
        else:
            report.note("dynamodb: record a payment skipped: invoicing.use_cases.payments does not exist yet")

        # -- void
        with counter.span() as calls:
            void_invoice(svc, actor(), drafts[1].id)
        report.add(
            _row(
                "void",
                calls,
                target="1 TransactWriteItems",
                met=calls["TransactWriteItems"] == 1,
                extra=f"{_reads(calls)} reads",
            )
        )

        # -- credit note
        if importlib.util.find_spec("invoicing.use_cases.credit_notes") is None:
            report.note("dynamodb: issue a credit note skipped: invoicing.use_cases.credit_notes does not exist yet")
        else:
            report.note(
                "dynamodb: invoicing.use_cases.credit_notes exists, but bench/dynamo.py has no case for it yet: add one"
            )

        # -- the finance console's pages (bench/console_pages.py)
        from bench import console_pages

        console_pages.run(report, svc, counter, make_customer(svc).id)


def item_size(value: dict[str, Any]) -> int:
    """DynamoDB's item size (attribute names + values, as documented), for a low-level item."""

    def size(v: dict[str, Any]) -> int:
        (kind, inner), *_ = v.items()
        if kind == "S":
            return len(inner.encode())
        if kind == "N":
            return len(inner.lstrip("-").replace(".", "")) // 2 + 1 + 1
        if kind == "B":
            return len(inner)
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + size(x) + 1 for k, x in inner.items())
        if kind == "L":
            return 3 + sum(size(x) + 1 for x in inner)
        return sum(len(str(x)) for x in inner)  # sets

    return sum(len(name.encode()) + size(v) for name, v in value.items())


def header_size(svc: Any, invoice_id: str) -> int:
    import boto3

    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=svc.settings.table_name, Key={"pk": {"S": f"INVOICE#{invoice_id}"}, "sk": {"S": "INVOICE"}}
    )["Item"]
    return item_size(item)


def _one_line(rates: dict[str, str]) -> Any:
    from bench.fixtures import line_inputs

    return line_inputs(1, rates, start=3)[0]
