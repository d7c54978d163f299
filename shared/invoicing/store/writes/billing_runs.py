"""Typed writes of bulk billing runs: a run created (with its listing row), started, and a batch of
drafts' outcomes recorded with the run's counters raised by atomic ADD, in one transaction."""

from __future__ import annotations

from invoicing.domain.billing_runs import BillingRun, DraftResult, Outcome, counts_of
from invoicing.errors import Conflict
from invoicing.store import keys
from invoicing.store.billing_runs import result_to_item, run_to_item
from invoicing.store.models import BillingRunJobItem, BillingRunListingItem, TableItem
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import FIRST, Guard, WriteSet


class BillingRunRecorded(Conflict):
    """A draft's outcome was recorded by another delivery of the same message meanwhile: the batch is
    read again (and that draft then skipped), so nothing is counted twice."""

    code = "billing_run_result_recorded"


class BillingRunNotStartable(Conflict):
    code = "billing_run_started"


class BillingRunWrites(WriteSet):
    def create_billing_run(self, run: BillingRun) -> None:
        listing = keys.billing_run_listing_key(run.created_at, run.id)

        def op(tx: Transaction) -> None:
            tx.save(run_to_item(run), condition=TableItem.pk.does_not_exist())
            tx.save(BillingRunListingItem(*listing, run_id=run.id), condition=TableItem.pk.does_not_exist())

        self._add(op)

    def start_billing_run(self, run: BillingRun, *, total: int, queued: int, failed: list[DraftResult]) -> None:
        """An uploaded run read: its size, what was queued, and the lines that were not drafts (each a
        failure, counted in the same update). Only once: conditioned on the run not being started yet."""
        key = keys.billing_run_job_key(run.id)
        started = run.started_at or ""
        self._put_results(run.id, failed)
        counts = counts_of(failed).as_dict()

        def op(tx: Transaction) -> None:
            tx.update(
                BillingRunJobItem(*key),
                actions=[
                    BillingRunJobItem.started_at.set(started),
                    BillingRunJobItem.total.set(total),
                    BillingRunJobItem.queued.set(queued),
                    *(getattr(BillingRunJobItem, name).add(value) for name, value in counts.items()),
                ],
                condition=TableItem.pk.exists() & BillingRunJobItem.started_at.does_not_exist(),
            )

        self._add(op, Guard(key, FIRST, lambda: BillingRunNotStartable(f"billing run {run.id} was already started")))

    def record_billing_run_results(self, run_id: str, results: list[DraftResult]) -> None:
        """Each result once (conditioned on not existing; a failure also under FAILURE#), and ONE update
        of the run's counters for the whole batch: ADD is atomic, so parallel batches of other customers
        never lose a count, and the run item takes one write per batch instead of one per draft."""
        if not results:
            return
        counts = counts_of(results)
        job_key = keys.billing_run_job_key(run_id)
        self._put_results(run_id, results)

        def add(tx: Transaction) -> None:
            tx.update(
                BillingRunJobItem(*job_key),
                actions=[getattr(BillingRunJobItem, name).add(value) for name, value in counts.as_dict().items()],
                condition=TableItem.pk.exists(),
            )

        self._add(add)

    def _put_results(self, run_id: str, results: list[DraftResult]) -> None:
        for result in results:
            key = keys.billing_run_result_key(run_id, result.index)

            def put(tx: Transaction, result: DraftResult = result) -> None:
                tx.save(result_to_item(run_id, result), condition=TableItem.pk.does_not_exist())
                if result.outcome is Outcome.FAILED:
                    tx.save(result_to_item(run_id, result, failure=True))

            self._add(
                put, Guard(key, FIRST, lambda: BillingRunRecorded("a result of this batch was recorded meanwhile"))
            )
