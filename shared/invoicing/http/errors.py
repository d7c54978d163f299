"""The one error map: domain errors -> HTTP status + {"error": {"code", "message"}}.

Registered on every resolver. Validation failures say which field and why. Unknown exceptions
become a 500 with no detail (and are logged with the stack); bad input never reaches that path.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from invoicing.errors import InvoicingError
from invoicing.observability import logger


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers={"Cache-Control": "no-store"},
    )


def _field_path(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def register_error_handlers(app: Any) -> None:
    @app.exception_handler(InvoicingError)
    def handle_domain_error(exc: InvoicingError) -> Response:
        if exc.http_status >= 500:
            logger.warning("dependency unavailable", extra={"code": exc.code})
        details = None
        if exc.details.get("field"):
            details = [{"field": str(exc.details["field"]), "reason": exc.message}]
        return error_response(exc.http_status, exc.code, exc.message, details)

    @app.exception_handler(RequestValidationError)
    def handle_validation_error(exc: RequestValidationError) -> Response:
        errors = exc.errors()
        details = [
            {"field": _field_path(tuple(e.get("loc", ()))), "reason": str(e.get("msg", e.get("type")))} for e in errors
        ]
        if not details:
            return error_response(422, "validation_error", "the request is invalid")
        first = details[0]
        if first["field"] == "body" and any(e.get("type") in ("json_invalid", "model_attributes_type") for e in errors):
            message = "the body must be a JSON object"
        else:
            message = f"{first['field']}: {first['reason']}"
        return error_response(422, "validation_error", message, details)

    @app.exception_handler(NotFoundError)
    def handle_route_not_found(exc: NotFoundError) -> Response:
        return error_response(404, "route_not_found", "no such route")

    @app.exception_handler(json.JSONDecodeError)
    def handle_bad_json(exc: json.JSONDecodeError) -> Response:
        return error_response(422, "validation_error", "the body is not valid JSON")
