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


class BillingRunReadAhead(Conflict):
    """The run's checkpoint moved on (another delivery of the same start message read this chunk)."""

    code = "billing_run_read_ahead"


class BillingRunWrites(WriteSet):
    def create_billing_run(self, run: BillingRun) -> None:
        listing = keys.billing_run_listing_key(run.created_at, run.id)

        def op(tx: Transaction) -> None:
            tx.save(run_to_item(run), condition=TableItem.pk.does_not_exist())
            tx.save(BillingRunListingItem(*listing, run_id=run.id), condition=TableItem.pk.does_not_exist())

        self._add(op)

    def begin_billing_run_start(self, run_id: str, started_at: str) -> None:
        """An uploaded run starts: the starter reads its lines from line 0. Only once: conditioned on
        the run not being started yet (409 `billing_run_started`)."""
        key = keys.billing_run_job_key(run_id)

        def op(tx: Transaction) -> None:
            tx.update(
                BillingRunJobItem(*key),
                actions=[
                    BillingRunJobItem.started_at.set(started_at),
                    BillingRunJobItem.reading.set(True),
                    BillingRunJobItem.next_line.set(0),
                ],
                condition=TableItem.pk.exists() & BillingRunJobItem.started_at.does_not_exist(),
            )

        self._add(op, Guard(key, FIRST, lambda: BillingRunNotStartable(f"billing run {run_id} was already started")))

    def undo_billing_run_start(self, run_id: str) -> None:
        """The start message could not be sent: the run waits for its start again, if nothing was read."""
        key = keys.billing_run_job_key(run_id)

        def op(tx: Transaction) -> None:
            tx.update(
                BillingRunJobItem(*key),
                actions=[
                    BillingRunJobItem.started_at.remove(),
                    BillingRunJobItem.reading.remove(),
                    BillingRunJobItem.next_line.remove(),
                ],
                condition=(BillingRunJobItem.reading == True) & (BillingRunJobItem.next_line == 0),  # noqa: E712
            )

        self._add(op, Guard(key, FIRST, lambda: BillingRunReadAhead(f"billing run {run_id} is being read already")))

    def advance_billing_run_start(
        self, run_id: str, *, from_line: int, to_line: int, queued: int, failed: list[DraftResult], done: bool
    ) -> None:
        """One chunk of an uploaded run read: lines [from_line, to_line) counted in the run's total, the
        valid ones as queued (they were sent before this commits), the bad ones recorded as failures in
        the same transaction. Conditioned on the checkpoint still being `from_line`: a redelivered
        start message, or a second starter, counts a chunk once (BillingRunReadAhead)."""
        key = keys.billing_run_job_key(run_id)
        self._put_results(run_id, failed)
        counts = counts_of(failed).as_dict()

        def op(tx: Transaction) -> None:
            tx.update(
                BillingRunJobItem(*key),
                actions=[
                    BillingRunJobItem.next_line.set(to_line),
                    BillingRunJobItem.total.add(to_line - from_line),
                    BillingRunJobItem.queued.add(queued),
                    *(getattr(BillingRunJobItem, name).add(value) for name, value in counts.items()),
                    *([BillingRunJobItem.reading.remove()] if done else []),
                ],
                condition=(BillingRunJobItem.reading == True) & (BillingRunJobItem.next_line == from_line),  # noqa: E712
            )

        self._add(
            op, Guard(key, FIRST, lambda: BillingRunReadAhead(f"billing run {run_id} was read past line {from_line}"))
        )

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
