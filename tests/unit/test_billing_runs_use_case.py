"""Billing runs, the use cases, on the in-memory unit of work (no moto): what a submit writes and
sends, each draft's outcome, and one counter update per SQS batch."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from invoicing.domain.billing_runs import BillingRun, DraftResult, Outcome, RunCounts, RunStatus, counts_of
from invoicing.domain.events import Actor, new_event
from invoicing.errors import NotFound, ServiceUnavailable, WriteConflict
from invoicing.use_cases import billing_runs as uc
from invoicing.use_cases.invoices import CreateInvoice, LineInput, create_invoice
from tests.support.fakes import customer, draft, fake_services

ACTOR = Actor("api_key:admin")


class RecordingFifo:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def send_all(self, messages: list[tuple[str, str, dict[str, Any]]]) -> int:
        self.sent += messages
        return len(messages)


class RecordingInputs:
    def __init__(self) -> None:
        self.objects: dict[str, list[str]] = {}

    def put(self, key: str, lines: list[str]) -> None:
        self.objects[key] = lines


@pytest.fixture
def svc():  # type: ignore[no-untyped-def]
    svc = fake_services()
    svc.memory.put_customer(customer("cus_1"))
    svc.memory.put_customer(customer("cus_2"))
    svc.adapters["billing_run_queue"] = RecordingFifo()
    svc.adapters["run_inputs"] = RecordingInputs()
    return svc


def command(customer_id: str = "cus_1", sub: str = "sub_1") -> CreateInvoice:
    return CreateInvoice(
        customer_id=customer_id,
        lines=(LineInput("Plan", quantity=Decimal("2.5"), unit_amount_cents=1000),),
        subscription_id=sub,
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
    )


def test_submit_stores_the_input_writes_the_run_and_groups_messages_by_customer(svc) -> None:  # type: ignore[no-untyped-def]
    # Given three drafts of two customers
    drafts = [command("cus_1", "a"), command("cus_2", "b"), command("cus_1", "c")]
    # When they are submitted
    run = uc.submit_billing_run(svc, ACTOR, drafts, finalize=True)
    # Then the run is queued with its counts, in one unit of work
    assert run.status is RunStatus.QUEUED and run.total == run.queued == 3
    ((kind, written),) = svc.memory.commits[0]
    assert kind == "create_billing_run" and written == run
    # and the input object holds the normalized drafts, one per line
    (lines,) = svc.adapters["run_inputs"].objects.values()
    assert len(lines) == 3 and '"quantity": "2.5"' in lines[0]
    # and each message is grouped by its customer and deduplicated by run and index
    sent = svc.adapters["billing_run_queue"].sent
    assert [(g, d) for g, d, _ in sent] == [
        ("cus_1", f"{run.id}-0"),
        ("cus_2", f"{run.id}-1"),
        ("cus_1", f"{run.id}-2"),
    ]
    assert CreateInvoice.from_message(sent[0][2]["draft"]) == drafts[0]


def _job(index: int = 0, finalize: bool = False, cmd: CreateInvoice | None = None) -> uc.Job:
    return uc.Job("br_1", index, finalize, (cmd or command()).to_message())


def test_a_new_draft_is_created_through_the_create_use_case(svc) -> None:  # type: ignore[no-untyped-def]
    job = _job()
    result = uc.process_draft(svc, job, command(), create=create_invoice, finalize=_no_finalize)
    assert result.outcome is Outcome.CREATED and result.invoice_id
    assert result.customer_id == "cus_1" and result.subscription_id == "sub_1" and result.period_start == "2026-11-01"
    # its audit event names the run and the draft
    (event,) = [e for kind, e in svc.memory.commits[0] if kind == "add_event"]
    assert event.actor == "billing_run:br_1" and event.request_id == "br_1#0"


def _no_finalize(*_args: Any) -> Any:
    raise AssertionError("a run without finalize finalizes nothing")


def test_a_taken_billing_run_key_is_a_skipped_duplicate(svc) -> None:  # type: ignore[no-untyped-def]
    # Given the subscription's period already invoiced by someone else
    existing = draft("in_old", "cus_1")
    svc.memory.put_invoice(existing)

    def create(_svc: Any, _actor: Actor, _cmd: Any) -> tuple[Any, bool]:
        return existing, False

    result = uc.process_draft(svc, _job(finalize=True), command(), create=create, finalize=_no_finalize)
    assert result.outcome is Outcome.SKIPPED_DUPLICATE and result.invoice_id == "in_old"


def test_a_redelivered_draft_recognizes_its_own_invoice_and_finalizes_it(svc) -> None:  # type: ignore[no-untyped-def]
    # Given the draft's earlier delivery created the invoice (its results were never recorded)
    own = draft("in_own", "cus_1")
    svc.memory.put_invoice(own)
    svc.memory.events.append(new_event("in_own", "invoice.created", Actor("billing_run:br_1", "br_1#4"), "t"))
    finalized: list[str] = []

    def finalize(_svc: Any, _actor: Actor, invoice_id: str) -> Any:
        finalized.append(invoice_id)
        return type("F", (), {"invoice": draft(invoice_id, "cus_1", invoice_number="INV-2026-00001")})()

    result = uc.process_draft(svc, _job(4, finalize=True), command(), create=lambda *_: (own, False), finalize=finalize)
    # Then it counts as created and finalized, not as a duplicate
    assert result.outcome is Outcome.FINALIZED and result.number == "INV-2026-00001" and finalized == ["in_own"]


def test_a_domain_error_is_a_failure_with_its_code_and_a_transient_one_is_raised(svc) -> None:  # type: ignore[no-untyped-def]
    def missing(*_args: Any) -> Any:
        raise NotFound("customer cus_9 not found", code="customer_not_found")

    failed = uc.process_draft(svc, _job(7), command(), create=missing, finalize=_no_finalize)
    assert failed.outcome is Outcome.FAILED and failed.index == 7
    assert failed.error_code == "customer_not_found" and failed.invoice_id is None
    for transient in (ServiceUnavailable("tax down"), WriteConflict("busy")):

        def flaky(*_args: Any, exc: Exception = transient) -> Any:
            raise exc

        with pytest.raises(type(transient)):
            uc.process_draft(svc, _job(), command(), create=flaky, finalize=_no_finalize)


def test_a_batch_is_recorded_with_one_counter_update_per_run(svc) -> None:  # type: ignore[no-untyped-def]
    a = [DraftResult(0, Outcome.FINALIZED, invoice_id="in_1"), DraftResult(1, Outcome.FAILED, error_code="x")]
    b = [DraftResult(0, Outcome.SKIPPED_DUPLICATE, invoice_id="in_2")]
    uc.record_results(svc, {"br_a": a, "br_b": b, "br_c": []})
    assert [c[0] for c in svc.memory.commits] == [
        ("record_billing_run_results", ("br_a", a)),
        ("record_billing_run_results", ("br_b", b)),
    ]


def test_counts_and_status() -> None:
    results = [
        DraftResult(0, Outcome.CREATED, invoice_id="in_1"),
        DraftResult(1, Outcome.FINALIZED, invoice_id="in_2"),
        DraftResult(2, Outcome.SKIPPED_DUPLICATE, invoice_id="in_3"),
        DraftResult(3, Outcome.FAILED),
        DraftResult(4, Outcome.FAILED, invoice_id="in_5"),  # created, then refused by finalization
    ]
    assert counts_of(results) == RunCounts(processed=5, created=3, finalized=1, skipped_duplicates=1, failed=2)
    run = BillingRun("br_1", "inline", True, 5, 5, RunCounts(), "t", started_at="t")
    assert run.status is RunStatus.QUEUED
    assert BillingRun("br_1", "inline", True, 5, 5, RunCounts(processed=2), "t", "t").status is RunStatus.RUNNING
    assert (
        BillingRun("br_1", "inline", True, 5, 5, counts_of(results), "t", "t").status
        is RunStatus.COMPLETED_WITH_FAILURES
    )
    assert BillingRun("br_1", "upload", True, 0, 0, RunCounts(), "t").status is RunStatus.AWAITING_UPLOAD


def test_the_same_draft_in_a_second_run_creates_nothing(svc) -> None:  # type: ignore[no-untyped-def]
    first = uc.process_draft(svc, _job(0), command(), create=create_invoice, finalize=_no_finalize)
    again = uc.Job("br_2", 0, False, command().to_message())
    second = uc.process_draft(svc, again, command(), create=create_invoice, finalize=_no_finalize)
    assert first.outcome is Outcome.CREATED
    assert second.outcome is Outcome.SKIPPED_DUPLICATE and second.invoice_id == first.invoice_id
    assert len(svc.memory.invoices) == 1


# ---------------------------------------------------------------- an uploaded run, read by the starter
class UploadedLines:
    def __init__(self, lines: list[str]) -> None:
        self.lines_read = lines

    def lines(self, key: str, max_bytes: int) -> Any:
        return iter(self.lines_read)


class StartQueue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, body: dict[str, Any]) -> str:
        self.sent.append(body)
        return "m"


class MemoryRuns:
    def __init__(self, memory: Any) -> None:
        self.memory = memory

    def get(self, run_id: str) -> BillingRun:
        return self.memory.billing_runs[run_id]  # type: ignore[no-any-return]


def _parse(line: str) -> CreateInvoice:
    import json

    from invoicing.errors import ValidationFailed

    try:
        body = json.loads(line)
    except ValueError:
        raise ValidationFailed("not JSON", details={"field": "line"}) from None
    return command(body["customer_id"], body["sub"])


@pytest.fixture
def upload(svc):  # type: ignore[no-untyped-def]
    """A started upload of 25 lines (blank lines skipped): lines 3 and 17 are not JSON."""
    import json

    lines = [json.dumps({"customer_id": "cus_1", "sub": f"sub_{i}"}) for i in range(25)]
    lines[3] = lines[17] = "{oops"
    lines.insert(10, "   ")
    svc.memory.billing_runs["br_u"] = BillingRun(
        "br_u", "upload", True, 0, 0, RunCounts(), "t", started_at="t", reading=True, next_line=0
    )
    svc.billing_runs = MemoryRuns(svc.memory)
    svc.adapters["run_inputs"] = UploadedLines(lines)
    svc.adapters["billing_run_starts"] = StartQueue()
    return svc


def test_an_upload_is_read_in_chunks_with_a_checkpoint_each(upload) -> None:  # type: ignore[no-untyped-def]
    # When the starter reads it in chunks of 10 lines with plenty of time
    outcome = uc.read_upload(upload, uc.StartMessage("br_u", 0), _parse, time_left_ms=lambda: 900_000, chunk_lines=10)
    # Then every line is counted once: 23 queued, 2 failed with their indexes, and the run is read
    assert outcome == "done"
    run = upload.memory.billing_runs["br_u"]
    assert (run.total, run.queued, run.counts.failed, run.reading) == (25, 23, 2, False)
    assert run.status is RunStatus.RUNNING  # the 2 failures are processed; the 23 drafts wait for the worker
    sent = upload.adapters["billing_run_queue"].sent
    assert sorted(int(dedup.split("-")[-1]) for _, dedup, _ in sent) == [i for i in range(25) if i not in (3, 17)]
    advances = [w[1] for c in upload.memory.commits for w in c if w[0] == "advance_billing_run_start"]
    assert [(a[1], a[2]) for a in advances] == [(0, 10), (10, 20), (20, 25)]
    assert [[f.index for f in a[4]] for a in advances] == [[3], [17], []]
    assert upload.adapters["billing_run_starts"].sent == []


def test_a_read_short_of_time_hands_on_to_its_next_message(upload) -> None:  # type: ignore[no-untyped-def]
    # When the function's time runs short after the first chunk
    first = uc.read_upload(upload, uc.StartMessage("br_u", 0), _parse, time_left_ms=lambda: 1_000, chunk_lines=10)
    # Then it checkpoints line 10 and sends itself the message to go on from there
    assert first == "continued"
    assert upload.adapters["billing_run_starts"].sent == [{"run_id": "br_u", "line": 10}]
    assert upload.memory.billing_runs["br_u"].status is RunStatus.STARTING
    # and the next message goes on from line 10, skipping what was read
    again = uc.read_upload(upload, uc.StartMessage("br_u", 10), _parse, time_left_ms=lambda: 900_000, chunk_lines=10)
    assert again == "done"
    run = upload.memory.billing_runs["br_u"]
    assert (run.total, run.queued, run.counts.failed) == (25, 23, 2)
    assert len(upload.adapters["billing_run_queue"].sent) == 23


def test_a_redelivered_start_message_counts_nothing_twice(upload) -> None:  # type: ignore[no-untyped-def]
    uc.read_upload(upload, uc.StartMessage("br_u", 0), _parse, time_left_ms=lambda: 900_000, chunk_lines=10)
    before = upload.memory.billing_runs["br_u"]
    # a redelivery of the first message (behind the checkpoint), and of a continuation
    assert uc.read_upload(upload, uc.StartMessage("br_u", 0), _parse, time_left_ms=lambda: 900_000) == "stale"
    assert uc.read_upload(upload, uc.StartMessage("br_u", 10), _parse, time_left_ms=lambda: 900_000) == "stale"
    assert upload.memory.billing_runs["br_u"] == before


def test_a_second_reader_of_the_same_chunk_stops_at_the_checkpoint(upload) -> None:  # type: ignore[no-untyped-def]
    # Given the checkpoint moved on while this delivery was reading its chunk (another delivery won)
    real_get = upload.billing_runs.get
    stale = real_get("br_u")
    upload.memory.billing_runs["br_u"] = replace(stale, next_line=10, total=10)
    upload.billing_runs.get = lambda run_id: stale  # this delivery read the run before that
    # Then its checkpoint is refused, and it stops without counting
    assert uc.read_upload(upload, uc.StartMessage("br_u", 0), _parse, time_left_ms=lambda: 900_000) == "stale"
    assert upload.memory.billing_runs["br_u"].total == 10


def test_lines_past_the_limit_end_the_read_with_one_failure(upload, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(uc, "MAX_UPLOAD_DRAFTS", 20)
    assert uc.read_upload(upload, uc.StartMessage("br_u", 0), _parse, time_left_ms=lambda: 900_000) == "done"
    run = upload.memory.billing_runs["br_u"]
    assert (run.total, run.queued, run.counts.failed) == (21, 18, 3)
    last = [w[1] for c in upload.memory.commits for w in c if w[0] == "advance_billing_run_start"][-1]
    assert last[4][-1].error_code == "too_many_lines" and last[4][-1].index == 20


def test_starting_status() -> None:
    started = BillingRun("br_1", "upload", True, 0, 0, RunCounts(), "t", started_at="t", reading=True)
    assert started.status is RunStatus.STARTING


# ---------------------------------------------------------------- create reads the rates once (issue #20)
class CountingRates:
    """A tax-rate store that counts its reads (the BatchGetItem calls)."""

    def __init__(self, *rates: Any) -> None:
        self.rates = {r.id: r for r in rates}
        self.reads: list[list[str]] = []

    def get_many(self, ids: list[str]) -> dict[str, Any]:
        self.reads.append(list(ids))
        return {i: self.rates[i] for i in ids if i in self.rates}


def _rate(rate_id: str, pct: str, active: bool = True) -> Any:
    from invoicing.store.tax_rates import TaxRate

    return TaxRate(
        id=rate_id,
        display_name="VAT",
        percentage=Decimal(pct),
        inclusive=False,
        country="DE",
        jurisdiction=None,
        description=None,
        active=active,
        used=False,
        created_at="2026-01-01T00:00:00.000Z",
        archived_at=None,
    )


def test_create_reads_the_rates_once_and_previews_the_tax_from_them(svc) -> None:  # type: ignore[no-untyped-def]
    from invoicing.adapters.tax import TaxRateService

    rates = CountingRates(_rate("txr_19", "19"), _rate("txr_7", "7"))
    svc.tax_rates = rates
    svc.tax = TaxRateService(rates)  # type: ignore[arg-type]
    lines = (
        LineInput("Plan", quantity=Decimal("1"), unit_amount_cents=10000, tax_rate_id="txr_19"),
        LineInput("Book", quantity=Decimal("2"), unit_amount_cents=1000, tax_rate_id="txr_7"),
    )
    invoice, _ = create_invoice(svc, ACTOR, CreateInvoice(customer_id="cus_1", lines=lines))
    assert rates.reads == [["txr_19", "txr_7"]]  # checked once, and the preview used what was read
    assert [ln.tax.tax_cents for ln in invoice.lines] == [1900, 140]
    assert invoice.tax_cents == 2040
