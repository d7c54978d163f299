"""/billing-runs: bulk submission of a month's invoices, their progress and results.

Submitting or starting a run needs the `billing_runs:write` scope (403 `insufficient_scope` else);
reading needs `invoices:read` (the authorizer's GET rule).
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import ValidationError

from invoicing.errors import InvoicingError, ValidationFailed
from invoicing.http.actor import current_actor, require_scope
from invoicing.root import get_services
from invoicing.schemas.billing_runs import (
    BillingRunList,
    BillingRunOut,
    BillingRunResultList,
    billing_run_out,
    result_out,
)
from invoicing.use_cases import billing_runs as uc
from invoicing.use_cases.invoices import CreateInvoice
from routes.invoices import create_command
from schemas import BillingRunCreate, BillingRunDraft, BillingRunUploadCreate, Id, StartingAfter, error_responses

router = Router()
SCOPE = "billing_runs:write"


def _draft_commands(body: BillingRunCreate) -> list[CreateInvoice]:
    """Every draft's command, or a 422 naming every bad draft by its index (nothing is written)."""
    commands: list[CreateInvoice] = []
    problems: list[dict[str, str]] = []
    for index, draft in enumerate(body.invoices):
        try:
            commands.append(create_command(draft))
        except InvoicingError as exc:
            field = str(exc.details.get("field") or "")
            problems.append({"field": f"invoices.{index}{'.' + field if field else ''}", "reason": exc.message})
    if problems:
        raise ValidationFailed(
            f"{len(problems)} invoice(s) of the run are invalid (first: {problems[0]['field']}); nothing was written",
            details={"problems": problems},
        )
    return commands


def parse_line(line: str) -> CreateInvoice:
    """One line of an uploaded run: a JSON draft exactly as POST /billing-runs takes one."""
    try:
        draft = BillingRunDraft.model_validate_json(line)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "line"
        raise ValidationFailed(f"{where}: {first.get('msg')}", details={"field": where}) from None
    return create_command(draft)


@router.post(
    "/billing-runs",
    summary="Submit a billing run of up to 1,000 invoices (queued; processed asynchronously; larger runs: uploads)",
    responses=error_responses(422, success=202),
)
def handle_create_billing_run(body: Annotated[BillingRunCreate, Body()]) -> Response[BillingRunOut]:
    require_scope(router, SCOPE)
    commands = _draft_commands(body)
    run = uc.submit_billing_run(get_services(), current_actor(router), list(commands), finalize=body.finalize)
    return Response(status_code=202, body=billing_run_out(run), content_type="application/json")


@router.post(
    "/billing-runs/uploads",
    summary="Create a billing run fed by a JSONL object: returns a pre-signed S3 PUT URL",
    responses=error_responses(422, success=201),
)
def handle_create_billing_run_upload(body: Annotated[BillingRunUploadCreate, Body()]) -> Response[BillingRunOut]:
    require_scope(router, SCOPE)
    run, url = uc.create_upload(get_services(), current_actor(router), finalize=body.finalize)
    return Response(status_code=201, body=billing_run_out(run, upload_url=url), content_type="application/json")


@router.post(
    "/billing-runs/<run_id>/start",
    summary="Start an uploaded billing run: it is read in the background (status `starting`); each line is validated (bad lines become failures) and queued",
    responses=error_responses(404, 409, 422, success=202),
)
def handle_start_billing_run(run_id: Annotated[Id, Path()]) -> Response[BillingRunOut]:
    require_scope(router, SCOPE)
    run = uc.start_uploaded_run(get_services(), current_actor(router), run_id)
    return Response(status_code=202, body=billing_run_out(run), content_type="application/json")


@router.get("/billing-runs", summary="List billing runs, newest first", responses=error_responses(422))
def handle_list_billing_runs(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: StartingAfter = None,
) -> BillingRunList:
    runs, cursor = uc.list_billing_runs(get_services(), limit=limit, starting_after=starting_after)
    return BillingRunList(data=[billing_run_out(r) for r in runs], has_more=cursor is not None, next_cursor=cursor)


@router.get(
    "/billing-runs/<run_id>",
    summary="A billing run: status, counts and its first failures",
    responses=error_responses(404),
)
def handle_get_billing_run(run_id: Annotated[Id, Path()]) -> BillingRunOut:
    run, failures, more = uc.get_billing_run(get_services(), run_id)
    return billing_run_out(run, failures, has_more_failures=more)


@router.get(
    "/billing-runs/<run_id>/results",
    summary="Every draft's outcome (invoice id, number, customer, subscription, period), by index",
    responses=error_responses(404, 422),
)
def handle_list_billing_run_results(
    run_id: Annotated[Id, Path()],
    starting_at: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> BillingRunResultList:
    page = uc.list_results(get_services(), run_id, start=starting_at, limit=limit)
    return BillingRunResultList(
        data=[result_out(r) for r in page.items], has_more=page.next_index is not None, next_starting_at=page.next_index
    )
