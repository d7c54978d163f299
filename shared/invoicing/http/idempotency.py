"""`Idempotency-Key` on every POST, with Powertools idempotency on DynamoDB.

The key is scoped by principal, method and path; the record stores the first response and a hash of
the body. A replay returns the first response (with `Idempotent-Replayed: true`); the same key with a
different body answers 422 `idempotency_key_reused`; a replay while the first is still running
answers 409 `idempotency_in_progress`. Errors are not stored, so a retry after a 4xx runs again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.encoders import jsonable_encoder

from invoicing import root
from invoicing.http.actor import current_actor
from invoicing.http.errors import error_response

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255


def _mark_replayed(response: dict[str, Any], _record: Any) -> dict[str, Any]:
    return {**response, "replayed": True}


def _machinery() -> tuple[Any, Any]:
    # built on the first request that carries a key: most cold starts never need it
    return root.current().once(_machinery, _build)  # type: ignore[no-any-return]


def _build() -> tuple[Any, Any]:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    settings = root.get_settings()
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name)
    config = IdempotencyConfig(
        event_key_jmespath="[principal, method, path, key]",
        payload_validation_jmespath="body_hash",
        expires_after_seconds=settings.idempotency_ttl_seconds,
        raise_on_no_idempotency_key=True,
        response_hook=_mark_replayed,  # type: ignore[arg-type]  # Powertools types the hook loosely
    )
    return persistence, config


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def idempotency_middleware(app: Any, next_middleware: Any) -> Response:
    event = app.current_event
    key = _header(event.headers, HEADER)
    if event.http_method.upper() != "POST" or key is None:
        return next_middleware(app)
    if not key.strip() or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return error_response(
            422,
            "validation_error",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters",
            [{"field": "Idempotency-Key", "reason": "invalid"}],
        )
    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    persistence, config = _machinery()
    if getattr(app, "lambda_context", None) is not None:
        config.register_lambda_context(app.lambda_context)
    request = {
        "principal": current_actor(app).principal,
        "method": event.http_method.upper(),
        "path": event.path,
        "key": key.strip(),
        "body_hash": hashlib.sha256((event.body or "").encode()).hexdigest(),
    }

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def run(request: dict[str, Any]) -> dict[str, Any]:
        response = next_middleware(app)
        body = response.body
        if body is not None and not isinstance(body, str | bytes):
            body = json.dumps(jsonable_encoder(body))
        if isinstance(body, bytes):
            body = body.decode()
        return {
            "status": response.status_code,
            "body": body,
            "content_type": response.headers.get("Content-Type"),
            "headers": {k: v for k, v in response.headers.items() if isinstance(v, str)},
        }

    try:
        stored = run(request=request)
    except IdempotencyValidationError:
        return error_response(
            422, "idempotency_key_reused", "this Idempotency-Key was used with a different request body"
        )
    except IdempotencyAlreadyInProgressError:
        return error_response(
            409, "idempotency_in_progress", "a request with this Idempotency-Key is still in progress; retry shortly"
        )
    headers = dict(stored.get("headers") or {})
    if stored.get("replayed"):
        headers["Idempotent-Replayed"] = "true"
    return Response(
        status_code=int(stored["status"]),
        body=stored.get("body"),
        content_type=stored.get("content_type") or "application/json",
        headers=headers,
    )
