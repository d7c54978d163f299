"""Bulk billing runs: submit a run, hand out an upload URL and start an uploaded run, process each
draft on the FIFO queue, read a run's progress and results.

Who: submitting and starting need the `billing_runs:write` scope (checked by the API), reading
`invoices:read`.

Submit (inline, at most 1,000 drafts, validated whole by the API before anything is written): the
normalized drafts go to S3 (billing-runs/{id}/input.jsonl, the run's record of its input), the run
item and its listing row are written in one unit of work, then every draft is sent to the FIFO queue
with MessageGroupId = customer id (one customer's drafts in order, customers in parallel) and
MessageDeduplicationId = "{run id}-{index}".

Process (`process_draft`, called by the worker for each SQS message): the SAME create-draft use case
(idempotent by the billing-run key: customer, subscription, period) and, if the run finalizes, the
SAME finalize use case, passed in by the worker (use cases never import each other). Each draft ends
as one outcome: created, finalized, skipped_duplicate (its billing-run key was already taken by
another run or by another draft of this run) or failed (a domain error: its code and message). A
transient error (throttling, a transaction conflict, a 5xx from a service) is raised instead, and SQS
delivers the message again. `record_results` then writes a whole SQS batch's outcomes with ONE atomic
ADD to the run's counters, in one unit of work; a result already recorded (a redelivery) is not
counted again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from invoicing import clock
from invoicing.domain.billing_runs import (
    FAILURES_SHOWN,
    MAX_UPLOAD_DRAFTS,
    BillingRun,
    DraftResult,
    Outcome,
    RunCounts,
)
from invoicing.domain.events import Actor
from invoicing.errors import ConcurrentModification, Conflict, InvoicingError, ValidationFailed
from invoicing.ids import new_id
from invoicing.observability import logger
from invoicing.services import Services
from invoicing.store import keys
from invoicing.store.billing_runs import ResultPage
from invoicing.store.cursor import parse_position, position_cursor

MAX_UPLOAD_BYTES = 256 * 1024 * 1024
FAILURES_PER_COMMIT = 40  # 2 items each (RESULT#, FAILURE#) + the run's update
READ_CHUNK_LINES = 1000  # lines of an upload per checkpoint (100 SendMessageBatch calls)
READ_MARGIN_MS = 60_000  # the starter hands on to its next message with this much time left


class Command(Protocol):
    """The create-draft command (use_cases/invoices.CreateInvoice), as a billing run sees it."""

    customer_id: str

    def to_message(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class Job:
    """One queued draft: the body of one SQS message."""

    run_id: str
    index: int
    finalize: bool
    draft: dict[str, Any]  # CreateInvoice.to_message()

    def body(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "index": self.index, "finalize": self.finalize, "draft": self.draft}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Job:
        return cls(str(body["run_id"]), int(body["index"]), bool(body["finalize"]), dict(body["draft"]))

    def message(self) -> tuple[str, str, dict[str, Any]]:
        return (str(self.draft["customer_id"]), f"{self.run_id}-{self.index}", self.body())

    def actor(self) -> Actor:
        # the request id names the draft: a redelivered message recognizes the invoice it created itself
        return Actor(principal=f"billing_run:{self.run_id}", request_id=f"{self.run_id}#{self.index}")


def _send(svc: Services, jobs: list[Job]) -> int:
    return svc.billing_run_queue().send_all([job.message() for job in jobs]) if jobs else 0


# ---------------------------------------------------------------- submit
def submit_billing_run(svc: Services, actor: Actor, drafts: list[Command], *, finalize: bool) -> BillingRun:
    """An inline run: `drafts` are already valid (the API refuses the whole body otherwise)."""
    if not drafts:
        raise ValidationFailed("a billing run has at least one invoice", details={"field": "invoices"})
    now = clock.iso(clock.now())
    run_id = new_id("br")
    jobs = [Job(run_id, i, finalize, d.to_message()) for i, d in enumerate(drafts)]
    run = BillingRun(
        id=run_id,
        source="inline",
        finalize=finalize,
        total=len(jobs),
        queued=len(jobs),
        counts=RunCounts(),
        created_at=now,
        started_at=now,
    )
    # input first: a run item always has its input; an input without a run item is never read
    svc.run_inputs().put(keys.billing_run_input_object(run_id), [json.dumps(j.draft) for j in jobs])
    with svc.uow() as tx:
        tx.create_billing_run(run)
    _send(svc, jobs)
    logger.info("billing run queued", extra={"run_id": run_id, "drafts": len(jobs), "actor": actor.principal})
    return run


def create_upload(svc: Services, actor: Actor, *, finalize: bool) -> tuple[BillingRun, str]:
    """A run waiting for its JSONL object: the pre-signed PUT URL (returned once) and its expiry."""
    now = clock.now()
    ttl = svc.settings.billing_run_upload_ttl_seconds
    run = BillingRun(
        id=new_id("br"),
        source="upload",
        finalize=finalize,
        total=0,
        queued=0,
        counts=RunCounts(),
        created_at=clock.iso(now),
        upload_expires_at=clock.iso(now + timedelta(seconds=ttl)),
    )
    with svc.uow() as tx:
        tx.create_billing_run(run)
    url = svc.run_inputs().presigned_put(keys.billing_run_input_object(run.id), ttl)
    logger.info("billing run upload issued", extra={"run_id": run.id, "actor": actor.principal})
    return run, url


def start_uploaded_run(svc: Services, actor: Actor, run_id: str) -> BillingRun:
    """Starts an uploaded run: it becomes `starting`, and ONE message asks the starter to read it
    (`read_upload`), so the request's time never grows with the upload. Once only (409
    `billing_run_started`); 409 `billing_run_upload_missing` while nothing was uploaded."""
    run = svc.billing_runs.get(run_id)
    if run.started_at is not None:
        raise Conflict(f"billing run {run_id} was already started", code="billing_run_started")
    size = svc.run_inputs().size(keys.billing_run_input_object(run_id))
    if size is None:
        raise Conflict(
            "nothing was uploaded for this billing run yet; PUT the JSONL to its upload_url first",
            code="billing_run_upload_missing",
        )
    if size > MAX_UPLOAD_BYTES:
        raise ValidationFailed(
            f"the uploaded object has {size} bytes; an upload has at most {MAX_UPLOAD_BYTES}",
            details={"field": "upload"},
        )
    with svc.uow() as tx:
        tx.begin_billing_run_start(run_id, clock.iso(clock.now()))
    try:
        svc.billing_run_starts().send(StartMessage(run_id, 0).body())
    except Exception:
        with svc.uow() as tx:  # the run waits for its start again
            tx.undo_billing_run_start(run_id)
        raise
    logger.info("billing run starting", extra={"run_id": run_id, "bytes": size, "actor": actor.principal})
    return svc.billing_runs.get(run_id)


@dataclass(frozen=True)
class StartMessage:
    """The starter's work: read the run's upload from `line` on (a message of the start queue)."""

    run_id: str
    line: int

    def body(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "line": self.line}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> StartMessage:
        return cls(str(body["run_id"]), int(body["line"]))


def read_upload(
    svc: Services,
    message: StartMessage,
    parse: Callable[[str], Command],
    *,
    time_left_ms: Callable[[], int],
    chunk_lines: int | None = None,
) -> str:
    """The starter: reads an uploaded run from its checkpoint in chunks. Each chunk's valid drafts are
    queued (ten to a batch), then ONE transaction moves the checkpoint and adds the chunk to the run's
    total, queued and failure counts (a bad line is a failure with its index, and the run goes on).
    With less than `READ_MARGIN_MS` left it sends itself the next line and stops.

    Returns what happened: `done`, `continued` or `stale` (the message is behind the checkpoint: a
    redelivery, or the run is not being read). A chunk queued twice (a crash between sending and the
    checkpoint) is harmless: the FIFO queue drops a repeated deduplication id for 5 minutes, and the
    worker creates a draft once per billing-run key and counts each index once."""
    run = svc.billing_runs.get(message.run_id)
    if not run.reading or run.next_line != message.line:
        logger.info("stale billing-run start message", extra={"run_id": run.id, "line": message.line})
        return "stale"
    lines = svc.run_inputs().lines(keys.billing_run_input_object(run.id), MAX_UPLOAD_BYTES)
    numbered = enumerate(_numbered(lines or ()))
    for _ in range(message.line):  # the lines before the checkpoint were read by an earlier message
        next(numbered, None)
    line = message.line
    while True:
        chunk = _read_chunk(run, line, numbered, parse, chunk_lines or READ_CHUNK_LINES)
        queued = _send(svc, chunk.jobs)
        try:
            with svc.uow() as tx:
                tx.advance_billing_run_start(
                    run.id, from_line=line, to_line=chunk.end, queued=queued, failed=chunk.failed, done=chunk.last
                )
        except Conflict as exc:
            if exc.code != "billing_run_read_ahead":
                raise
            logger.info("billing-run chunk read by another delivery", extra={"run_id": run.id, "line": line})
            return "stale"
        line = chunk.end
        if chunk.last:
            logger.info("billing run read", extra={"run_id": run.id, "lines": line})
            return "done"
        if time_left_ms() < READ_MARGIN_MS:
            svc.billing_run_starts().send(StartMessage(run.id, line).body())
            logger.info("billing run read continues", extra={"run_id": run.id, "line": line})
            return "continued"


@dataclass
class _Chunk:
    end: int  # the line after the chunk
    jobs: list[Job]
    failed: list[DraftResult]
    last: bool


def _read_chunk(
    run: BillingRun, start: int, numbered: Iterator[tuple[int, str]], parse: Callable[[str], Command], size: int
) -> _Chunk:
    """Up to `size` lines (fewer once FAILURES_PER_COMMIT lines failed: their items share the
    checkpoint's transaction). Past MAX_UPLOAD_DRAFTS lines the read ends with one failure saying so."""
    jobs: list[Job] = []
    failed: list[DraftResult] = []
    end = start
    for index, line in numbered:
        end = index + 1
        if index >= MAX_UPLOAD_DRAFTS:
            failed.append(
                DraftResult(
                    index,
                    Outcome.FAILED,
                    error_code="too_many_lines",
                    error_message=f"an uploaded run has at most {MAX_UPLOAD_DRAFTS} lines; the rest was not read",
                )
            )
            return _Chunk(end, jobs, failed, last=True)
        try:
            jobs.append(Job(run.id, index, run.finalize, parse(line).to_message()))
        except ValidationFailed as exc:
            failed.append(DraftResult(index, Outcome.FAILED, error_code=exc.code, error_message=exc.message))
        if len(jobs) + len(failed) >= size or len(failed) >= FAILURES_PER_COMMIT:
            return _Chunk(end, jobs, failed, last=False)
    return _Chunk(end, jobs, failed, last=True)


def _numbered(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        if line.strip():
            yield line


# ---------------------------------------------------------------- process (the worker)
CreateDraft = Callable[[Services, Actor, Any], tuple[Any, bool]]
FinalizeDraft = Callable[[Services, Actor, str], Any]


def _transient(exc: InvoicingError) -> bool:
    return exc.http_status >= 500 or isinstance(exc, ConcurrentModification)


def process_draft(
    svc: Services, job: Job, command: Any, *, create: CreateDraft, finalize: FinalizeDraft
) -> DraftResult:
    """One draft of a run: create (idempotently), then finalize if the run does. See the module docstring."""
    actor = job.actor()
    draft = job.draft
    base: dict[str, Any] = {
        "index": job.index,
        "customer_id": draft.get("customer_id"),
        "subscription_id": draft.get("subscription_id"),
        "period_start": draft.get("period_start"),
        "period_end": draft.get("period_end"),
    }
    invoice_id: str | None = None
    try:
        invoice, created = create(svc, actor, command)
        if not created and not _created_by(svc, invoice.id, actor.request_id):
            return DraftResult(
                outcome=Outcome.SKIPPED_DUPLICATE, invoice_id=invoice.id, number=invoice.invoice_number, **base
            )
        invoice_id = invoice.id
        if not job.finalize:
            return DraftResult(outcome=Outcome.CREATED, invoice_id=invoice.id, **base)
        if invoice.status.value == "draft":
            invoice = finalize(svc, actor, invoice.id).invoice
        return DraftResult(outcome=Outcome.FINALIZED, invoice_id=invoice.id, number=invoice.invoice_number, **base)
    except InvoicingError as exc:
        if _transient(exc):
            raise
        return DraftResult(
            outcome=Outcome.FAILED, invoice_id=invoice_id, error_code=exc.code, error_message=exc.message, **base
        )


def _created_by(svc: Services, invoice_id: str, request_id: str) -> bool:
    """Whether this draft's own earlier delivery created the invoice (its batch's results were then
    not recorded): read only when the billing-run key was taken, which is rare."""
    return any(e.type == "invoice.created" and e.request_id == request_id for e in svc.repo.list_events(invoice_id))


def unrecorded(svc: Services, jobs: list[Job]) -> list[Job]:
    """The jobs of a batch whose outcome is not recorded yet (a redelivery after the record commit
    skips them: nothing is created, finalized or counted twice)."""
    by_run: dict[str, list[Job]] = {}
    for job in jobs:
        by_run.setdefault(job.run_id, []).append(job)
    done: set[tuple[str, int]] = set()
    for run_id, run_jobs in by_run.items():
        done |= {(run_id, i) for i in svc.billing_runs.recorded(run_id, [j.index for j in run_jobs])}
    return [j for j in jobs if (j.run_id, j.index) not in done]


def record_results(svc: Services, results: dict[str, list[DraftResult]]) -> None:
    """One SQS batch's outcomes, per run: the result items and one ADD to the run's counters, one unit
    of work per run in the batch (a batch holds 10 messages at most: at most 21 items)."""
    for run_id, run_results in results.items():
        if not run_results:
            continue
        with svc.uow() as tx:
            tx.record_billing_run_results(run_id, run_results)


# ---------------------------------------------------------------- read
def get_billing_run(svc: Services, run_id: str) -> tuple[BillingRun, list[DraftResult], bool]:
    """The run, its first failures, and whether there are more (the results export has them all)."""
    run = svc.billing_runs.get(run_id)
    page = svc.billing_runs.failures(run_id, FAILURES_SHOWN)
    return run, page.items, page.next_index is not None


def list_billing_runs(svc: Services, *, limit: int, starting_after: str | None) -> tuple[list[BillingRun], str | None]:
    if not 1 <= limit <= 100:
        raise ValidationFailed("limit must be between 1 and 100", details={"field": "limit"})
    position = parse_position(starting_after)
    runs, more = svc.billing_runs.list_runs(limit, keys.billing_run_listing_key(*position)[1] if position else None)
    return runs, (position_cursor(runs[-1].created_at, runs[-1].id) if more and runs else None)


def list_results(svc: Services, run_id: str, *, start: int, limit: int) -> ResultPage:
    svc.billing_runs.get(run_id)  # 404 for an unknown run, not an empty page
    if not 1 <= limit <= 1000:
        raise ValidationFailed("limit must be between 1 and 1000", details={"field": "limit"})
    if start < 0:
        raise ValidationFailed("starting_at is at least 0", details={"field": "starting_at"})
    return svc.billing_runs.results(run_id, start, limit)
