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


def start_uploaded_run(svc: Services, actor: Actor, run_id: str, parse: Callable[[str], Command]) -> BillingRun:
    """Streams the uploaded JSONL: each non-blank line `parse`s into a draft (ValidationFailed: that
    line becomes a failure of the run, with its index, and the run goes on), valid drafts are queued
    ten at a time as they are read. Once only (409 `billing_run_started`); 409
    `billing_run_upload_missing` while nothing was uploaded."""
    run = svc.billing_runs.get(run_id)
    if run.started_at is not None:
        raise Conflict(f"billing run {run_id} was already started", code="billing_run_started")
    lines = svc.run_inputs().lines(keys.billing_run_input_object(run_id), MAX_UPLOAD_BYTES)
    if lines is None:
        raise Conflict(
            "nothing was uploaded for this billing run yet; PUT the JSONL to its upload_url first",
            code="billing_run_upload_missing",
        )
    total, queued, failed = _queue_lines(svc, run, lines, parse)
    started = BillingRun(**{**run.__dict__, "started_at": clock.iso(clock.now())})
    with svc.uow() as tx:  # the failures' items in chunks: one transaction holds 100 items at most
        tx.start_billing_run(started, total=total, queued=queued, failed=failed[:FAILURES_PER_COMMIT])
    for start in range(FAILURES_PER_COMMIT, len(failed), FAILURES_PER_COMMIT):
        with svc.uow() as tx:
            tx.record_billing_run_results(run_id, failed[start : start + FAILURES_PER_COMMIT])
    logger.info("billing run started", extra={"run_id": run_id, "drafts": total, "failed": len(failed)})
    return svc.billing_runs.get(run_id)


def _queue_lines(
    svc: Services, run: BillingRun, lines: Iterable[str], parse: Callable[[str], Command]
) -> tuple[int, int, list[DraftResult]]:
    total = queued = 0
    failed: list[DraftResult] = []
    pending: list[Job] = []
    for index, line in enumerate(_numbered(lines)):
        if index >= MAX_UPLOAD_DRAFTS:
            raise ValidationFailed(
                f"an uploaded run has at most {MAX_UPLOAD_DRAFTS} lines", details={"field": "upload"}
            )
        total += 1
        try:
            command = parse(line)
        except ValidationFailed as exc:
            failed.append(DraftResult(index, Outcome.FAILED, error_code=exc.code, error_message=exc.message))
            continue
        pending.append(Job(run.id, index, run.finalize, command.to_message()))
        if len(pending) == 10:
            queued += _send(svc, pending)
            pending = []
    queued += _send(svc, pending)
    return total, queued, failed


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
