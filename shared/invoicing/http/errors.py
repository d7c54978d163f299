"""The one error map: domain errors -> HTTP status + {"error": {"code", "message"}}.

Registered on every resolver. Validation failures say which field and why. Unknown exceptions
become a 500 with no detail (and are logged with the stack); bad input never reaches that path.
"""

from __future__ import annotations

import json
import re
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
        elif exc.details.get("problems"):
            details = list(exc.details["problems"])
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
        field = _invalid_path_parameter(app)
        if field:
            reason = "holds characters that are not allowed in this path segment"
            return error_response(422, "validation_error", f"{field}: {reason}", [{"field": field, "reason": reason}])
        return error_response(404, "route_not_found", "no such route")

    @app.exception_handler(json.JSONDecodeError)
    def handle_bad_json(exc: json.JSONDecodeError) -> Response:
        return error_response(422, "validation_error", "the body is not valid JSON")


_ROUTE_PARAMETER = re.compile(r"<(\w+)>")


def _invalid_path_parameter(app: Any) -> str | None:
    """The path parameter that kept an existing route from matching, if that is why nothing matched.

    The resolver matches a path segment only against word characters and the URI-safe set, so a
    segment like `/exchange-rates/€x` would read as an unknown route (404). API Gateway routes it to
    us by its template, so the honest answer is the one for any invalid input: 422 naming the field.
    """
    event = app.current_event
    method, path = event.http_method.upper(), event.path
    for route in [*getattr(app, "_static_routes", []), *getattr(app, "_dynamic_routes", [])]:
        names = _ROUTE_PARAMETER.findall(route.path)
        if route.method != method or not names:
            continue
        loose = "^" + _ROUTE_PARAMETER.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(route.path)) + "$"
        found = re.match(loose, path)
        if found is None:
            continue
        for name in names:  # the one whose value, replaced by a plain one, lets the route's own rule match
            values = {n: ("x" if n == name else found.group(n)) for n in names}
            candidate = _ROUTE_PARAMETER.sub(lambda m, v=values: v[m.group(1)], route.path)  # type: ignore[misc]
            if route.rule.match(candidate):
                return name
        return names[0]
    return None
