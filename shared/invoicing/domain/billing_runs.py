"""Bulk billing runs: the run, each draft's outcome, and the counters an SQS batch adds. Pure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

MAX_INLINE_DRAFTS = 1000  # POST /billing-runs; larger runs go through an uploaded JSONL object
MAX_UPLOAD_DRAFTS = 100_000
FAILURES_SHOWN = 100  # GET /billing-runs/{id} shows the first failures; the results export has them all


class Outcome(StrEnum):
    CREATED = "created"  # a draft (the run does not finalize)
    FINALIZED = "finalized"
    SKIPPED_DUPLICATE = "skipped_duplicate"  # its billing-run key (customer, subscription, period) was taken
    FAILED = "failed"


class RunStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    STARTING = "starting"  # an uploaded run being read: its lines validated and queued in chunks
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"


@dataclass(frozen=True)
class DraftResult:
    index: int
    outcome: Outcome
    customer_id: str | None = None
    subscription_id: str | None = None
    period_start: str | None = None
    period_end: str | None = None
    invoice_id: str | None = None
    number: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class RunCounts:
    processed: int = 0
    created: int = 0
    finalized: int = 0
    skipped_duplicates: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "processed": self.processed,
            "created": self.created,
            "finalized": self.finalized,
            "skipped_duplicates": self.skipped_duplicates,
            "failed": self.failed,
        }


def counts_of(results: list[DraftResult]) -> RunCounts:
    """What one batch of outcomes adds to the run's counters. A finalized draft was also created."""
    by = Counter(r.outcome for r in results)
    return RunCounts(
        processed=len(results),
        # a draft created and then refused by finalization is a failure that left a draft behind
        created=by[Outcome.CREATED]
        + by[Outcome.FINALIZED]
        + sum(1 for r in results if r.outcome is Outcome.FAILED and r.invoice_id),
        finalized=by[Outcome.FINALIZED],
        skipped_duplicates=by[Outcome.SKIPPED_DUPLICATE],
        failed=by[Outcome.FAILED],
    )


@dataclass(frozen=True)
class BillingRun:
    id: str
    source: str  # inline | upload
    finalize: bool
    total: int  # drafts in the run (valid or not)
    queued: int  # drafts sent to the queue
    counts: RunCounts
    created_at: str
    started_at: str | None = None
    upload_expires_at: str | None = None
    reading: bool = False  # an uploaded run whose lines are still being read (by the starter)
    next_line: int = 0  # the starter's checkpoint: lines before it are counted in total and queued

    @property
    def status(self) -> RunStatus:
        if self.started_at is None:
            return RunStatus.AWAITING_UPLOAD
        if self.reading:
            return RunStatus.STARTING
        if self.counts.processed == 0 and self.total > 0:
            return RunStatus.QUEUED
        if self.counts.processed < self.total:
            return RunStatus.RUNNING
        return RunStatus.COMPLETED_WITH_FAILURES if self.counts.failed else RunStatus.COMPLETED
