"""The API's representation of bulk billing runs (GET/POST /billing-runs...)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from invoicing.domain.billing_runs import BillingRun, DraftResult

RunStatusName = Literal["awaiting_upload", "starting", "queued", "running", "completed", "completed_with_failures"]
OutcomeName = Literal["created", "finalized", "skipped_duplicate", "failed"]


class BillingRunCounts(BaseModel):
    total: int = Field(description="Drafts in the run (for an upload: lines read, valid or not)")
    queued: int = Field(description="Drafts sent to the queue")
    processed: int = Field(description="Drafts with an outcome; the run is complete when processed = total")
    created: int
    finalized: int
    skipped_duplicates: int = Field(description="Drafts whose subscription and period already had an invoice")
    failed: int


class BillingRunFailure(BaseModel):
    index: int = Field(description="The draft's position in the run (0-based; for an upload, its non-blank line)")
    code: str
    message: str
    customer_id: str | None = None
    subscription_id: str | None = None
    invoice_id: str | None = Field(default=None, description="The draft left behind when finalization refused it")


class BillingRunOut(BaseModel):
    id: str
    object: Literal["billing_run"] = "billing_run"
    status: RunStatusName
    source: Literal["inline", "upload"]
    finalize: bool
    created_at: str
    started_at: str | None = None
    counts: BillingRunCounts
    failures: list[BillingRunFailure] = Field(description="The first 100 failures; the results export has all")
    has_more_failures: bool = False
    upload_url: str | None = Field(default=None, description="Pre-signed S3 PUT URL; returned once, on creation")
    upload_expires_at: str | None = None


class BillingRunList(BaseModel):
    data: list[BillingRunOut]
    has_more: bool
    next_cursor: str | None = None


class BillingRunResultOut(BaseModel):
    index: int
    outcome: OutcomeName
    invoice_id: str | None = None
    number: str | None = None
    customer_id: str | None = None
    subscription_id: str | None = None
    period_start: str | None = None
    period_end: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class BillingRunResultList(BaseModel):
    data: list[BillingRunResultOut]
    has_more: bool
    next_starting_at: int | None = Field(default=None, description="Pass as starting_at for the next page")


def failure_out(result: DraftResult) -> BillingRunFailure:
    return BillingRunFailure(
        index=result.index,
        code=result.error_code or "failed",
        message=result.error_message or "",
        customer_id=result.customer_id,
        subscription_id=result.subscription_id,
        invoice_id=result.invoice_id,
    )


def billing_run_out(
    run: BillingRun,
    failures: list[DraftResult] | None = None,
    *,
    has_more_failures: bool = False,
    upload_url: str | None = None,
) -> BillingRunOut:
    return BillingRunOut(
        id=run.id,
        status=run.status.value,  # type: ignore[arg-type]
        source=run.source,  # type: ignore[arg-type]
        finalize=run.finalize,
        created_at=run.created_at,
        started_at=run.started_at,
        counts=BillingRunCounts(total=run.total, queued=run.queued, **run.counts.as_dict()),
        failures=[failure_out(f) for f in failures or []],
        has_more_failures=has_more_failures,
        upload_url=upload_url,
        upload_expires_at=run.upload_expires_at,
    )


def result_out(result: DraftResult) -> BillingRunResultOut:
    return BillingRunResultOut(
        index=result.index,
        outcome=result.outcome.value,  # type: ignore[arg-type]
        invoice_id=result.invoice_id,
        number=result.number,
        customer_id=result.customer_id,
        subscription_id=result.subscription_id,
        period_start=result.period_start,
        period_end=result.period_end,
        error_code=result.error_code,
        error_message=result.error_message,
    )
