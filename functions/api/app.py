"""The admin API: API Gateway (REST, behind the API-key authorizer) -> Powertools resolver.

Thin: each route parses into a pydantic model, calls one use case and shapes the response.
OpenAPI is served at /openapi.json and Swagger UI at /docs (openapi.py adds what Powertools cannot).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from openapi import openapi_document

from invoicing.adapters.public_url import request_base_url
from invoicing.http.actor import actor_middleware
from invoicing.http.content_type import check_json_body, check_utf8_body
from invoicing.http.errors import register_error_handlers
from invoicing.http.idempotency import idempotency_middleware
from invoicing.observability import logger, metrics, tracer
from routes import billing_runs, credit_notes, customers, documents, invoices, payments, rates, reminders, webhooks

app = APIGatewayRestResolver(enable_validation=True)
app.use(middlewares=[actor_middleware, idempotency_middleware])
app.include_router(customers.router)
app.include_router(invoices.router)
app.include_router(payments.router)
app.include_router(rates.router)
app.include_router(documents.router)
app.include_router(reminders.router)
app.include_router(credit_notes.router)
app.include_router(webhooks.router)
app.include_router(billing_runs.router)
register_error_handlers(app)

OPENAPI_TITLE = "Invoice service API"


@lru_cache(maxsize=1)
def _powertools_spec() -> str:
    return app.get_openapi_json_schema(title=OPENAPI_TITLE, version="1.0.0")


@app.get("/openapi.json", include_in_schema=False)
def handle_get_openapi():  # type: ignore[no-untyped-def]  # raw Response, outside the schema
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=openapi_document(_powertools_spec(), app.current_event.raw_event),
    )


@app.get("/docs", include_in_schema=False)
def handle_get_docs():  # type: ignore[no-untyped-def]  # raw Response, outside the schema
    """Swagger UI on this request's document (its servers entry is where the caller is)."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = Path(swagger_ui.__file__).parent
    spec = openapi_document(_powertools_spec(), app.current_event.raw_event).replace("</", "<\\/")
    html = generate_swagger_html(
        spec,
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
        persist_authorization=True,
    )
    return Response(status_code=200, content_type="text/html", body=html)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handle_api_request(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # before the resolver: its validation reads the body by type, and decodes it as UTF-8
    refused = check_json_body(event) or check_utf8_body(event)
    if refused is not None:
        return refused
    with request_base_url(event):  # payment links point where the caller reached the API
        return app.resolve(event, context)
