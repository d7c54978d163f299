"""Bulk billing runs in the table: the run's job item, the listing of runs, each draft's result.

Reads only; the writes are the unit of work's (store/writes/billing_runs.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist

from invoicing.domain.billing_runs import BillingRun, DraftResult, Outcome, RunCounts
from invoicing.errors import NotFound
from invoicing.store import keys
from invoicing.store.models import BillingRunJobItem, BillingRunListingItem, BillingRunResultItem, TableItem


def run_to_item(run: BillingRun) -> BillingRunJobItem:
    pk, sk = keys.billing_run_job_key(run.id)
    return BillingRunJobItem(
        pk,
        sk,
        run_id=run.id,
        source=run.source,
        finalize=run.finalize,
        total=run.total,
        queued=run.queued,
        created_at=run.created_at,
        started_at=run.started_at,
        upload_expires_at=run.upload_expires_at,
        reading=run.reading or None,
        next_line=run.next_line or None,
        processed=run.counts.processed,
        created=run.counts.created,
        finalized=run.counts.finalized,
        skipped_duplicates=run.counts.skipped_duplicates,
        failed=run.counts.failed,
    )


def run_from_item(item: BillingRunJobItem) -> BillingRun:
    return BillingRun(
        id=item.run_id,
        source=item.source,
        finalize=bool(item.finalize),
        total=int(item.total),
        queued=int(item.queued),
        counts=RunCounts(
            processed=int(item.processed),
            created=int(item.created),
            finalized=int(item.finalized),
            skipped_duplicates=int(item.skipped_duplicates),
            failed=int(item.failed),
        ),
        created_at=item.created_at,
        started_at=item.started_at,
        upload_expires_at=item.upload_expires_at,
        reading=bool(item.reading),
        next_line=int(item.next_line or 0),
    )


def result_to_item(run_id: str, result: DraftResult, *, failure: bool = False) -> BillingRunResultItem:
    key = (keys.billing_run_failure_key if failure else keys.billing_run_result_key)(run_id, result.index)
    return BillingRunResultItem(
        *key,
        index=result.index,
        outcome=result.outcome.value,
        customer_id=result.customer_id,
        subscription_id=result.subscription_id,
        period_start=result.period_start,
        period_end=result.period_end,
        invoice_id=result.invoice_id,
        number=result.number,
        error_code=result.error_code,
        error_message=result.error_message,
    )


def result_from_item(item: BillingRunResultItem) -> DraftResult:
    return DraftResult(
        index=int(item.index),
        outcome=Outcome(item.outcome),
        customer_id=item.customer_id,
        subscription_id=item.subscription_id,
        period_start=item.period_start,
        period_end=item.period_end,
        invoice_id=item.invoice_id,
        number=item.number,
        error_code=item.error_code,
        error_message=item.error_message,
    )


@dataclass(frozen=True)
class ResultPage:
    items: list[DraftResult]
    next_index: int | None  # the index to start the next page at


class BillingRunStore:
    def get(self, run_id: str) -> BillingRun:
        try:
            item = BillingRunJobItem.get(*keys.billing_run_job_key(run_id), consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"billing run {run_id} not found", code="billing_run_not_found") from None
        return run_from_item(item)

    def list_runs(self, limit: int, before: str | None) -> tuple[list[BillingRun], bool]:
        """Newest first; `before`: the listing sort key the previous page ended at."""
        condition = TableItem.sk < before if before else None
        rows = list(
            BillingRunListingItem.query(
                keys.BILLING_RUNS_LIST, range_key_condition=condition, scan_index_forward=False, limit=limit + 1
            )
        )
        more = len(rows) > limit
        rows = rows[:limit]
        wanted = [keys.billing_run_job_key(r.run_id) for r in rows]
        found: dict[str, BillingRun] = {}
        for item in BillingRunJobItem.batch_get(wanted) if wanted else []:
            found[item.run_id] = run_from_item(item)
        runs = [found[r.run_id] for r in rows if r.run_id in found]
        return runs, more

    def recorded(self, run_id: str, indexes: list[int]) -> set[int]:
        """Which of these drafts already have a result (a redelivered SQS message: counted once)."""
        if not indexes:
            return set()
        wanted = [keys.billing_run_result_key(run_id, i) for i in sorted(set(indexes))]
        return {int(i.index) for i in BillingRunResultItem.batch_get(wanted, consistent_read=True)}

    def _page(self, run_id: str, prefix: str, start: int, limit: int) -> ResultPage:
        pk = keys.billing_run_job_pk(run_id)
        low = f"{prefix}{start:07d}"
        rows = list(
            BillingRunResultItem.query(pk, range_key_condition=TableItem.sk.between(low, f"{prefix}~"), limit=limit + 1)
        )
        items = [result_from_item(r) for r in rows[:limit]]
        return ResultPage(items, int(rows[limit].index) if len(rows) > limit else None)

    def results(self, run_id: str, start: int, limit: int) -> ResultPage:
        return self._page(run_id, keys.BILLING_RUN_RESULT_PREFIX, start, limit)

    def failures(self, run_id: str, limit: int) -> ResultPage:
        return self._page(run_id, keys.BILLING_RUN_FAILURE_PREFIX, 0, limit)
