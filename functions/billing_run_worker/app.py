"""The billing-run FIFO queue -> one draft per message: created (and finalized) through the same use
cases as POST /invoices and /finalize, then the batch's outcomes recorded with one counter update.

Partial batch failures (SqsFifoPartialProcessor): a transient error fails that record and, to keep
one customer's numbers in order, the records after it in the batch; SQS delivers them again.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from invoicing.domain.billing_runs import DraftResult
from invoicing.observability import logger, metrics, tracer
from invoicing.root import get_services
from invoicing.use_cases import billing_runs, finalize, invoices

processor = SqsFifoPartialProcessor()
_batch: dict[str, list[DraftResult]] = {}
_skip: set[tuple[str, int]] = set()


def handle_billing_run_job(record: SQSRecord) -> str:
    job = billing_runs.Job.from_body(json.loads(record.body))
    if (job.run_id, job.index) in _skip:
        return "already_recorded"
    logger.append_keys(run_id=job.run_id, index=job.index)
    result = billing_runs.process_draft(
        get_services(),
        job,
        invoices.CreateInvoice.from_message(job.draft),
        create=invoices.create_invoice,
        finalize=finalize.finalize_invoice,
    )
    _batch.setdefault(job.run_id, []).append(result)
    metrics.add_metric(name=f"BillingRun_{result.outcome.value}", unit="Count", value=1)
    return result.outcome.value


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handle_billing_run_jobs(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    svc = get_services()
    _batch.clear()
    _skip.clear()
    jobs = [billing_runs.Job.from_body(json.loads(r["body"])) for r in event.get("Records", [])]
    fresh = {(j.run_id, j.index) for j in billing_runs.unrecorded(svc, jobs)}
    _skip.update((j.run_id, j.index) for j in jobs if (j.run_id, j.index) not in fresh)
    response = process_partial_response(
        event=event, record_handler=handle_billing_run_job, processor=processor, context=context
    )
    # the outcomes of the records that succeeded; if this fails, the whole batch comes again, and the
    # records' create is idempotent (and recognizes its own earlier invoice), so nothing is doubled
    billing_runs.record_results(svc, _batch)
    return response
