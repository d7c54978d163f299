"""Scheduled repair: re-enqueue PDF renders whose job was lost (an SQS send that failed after
finalize committed), so that no issued invoice stays without a PDF."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from invoicing.observability import logger, metrics
from invoicing.root import get_services
from invoicing.use_cases.documents import repair_pending_pdfs


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics
def handle_repair_pdfs(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    count = repair_pending_pdfs(get_services())
    metrics.add_metric(name="PdfRenderRepairs", unit="Count", value=count)
    return {"requeued": count}
