"""The finance console: server-rendered pages for the people who void, credit and chase invoices.

Thin: each route opens the session (auth.py), checks the person's rights, parses the form, calls one
use case of shared/invoicing/use_cases in process (never our own API over HTTP), and renders a page
(views.py, templates/). Every POST carries the session's CSRF token and its form's Idempotency-Key
(forms.py); the audit trail's actor is ``console:<email>``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from customer_pages import customer_pages
from invoice_list import invoice_list
from invoice_pages import invoice_pages
from pages import Page, Refused, answer_refusal, pages
from settings_pages import settings_pages

from invoicing.adapters.public_url import request_base_url
from invoicing.observability import logger, metrics, tracer

app = APIGatewayRestResolver()
app.include_router(pages)
app.include_router(customer_pages)
app.include_router(invoice_list)
app.include_router(invoice_pages)
app.include_router(settings_pages)


@app.exception_handler(Refused)
def handle_refused(exc: Refused) -> Response[str]:
    return answer_refusal(app.current_event, exc)


@app.not_found
def handle_not_found(_exc: Exception) -> Response[str]:
    return Page(app.current_event).not_found()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handle_console_request(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with request_base_url(event):  # pay links point where the person reached the console
        return app.resolve(event, context)
