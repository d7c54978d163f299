"""One Idempotency-Key per form: a double click (or a re-sent POST) runs the action once.

Each action form carries a hidden ``idempotency_key`` made when the page was rendered. The first POST
runs the use case and stores its result (where to go next) in the IdempotencyTable under
(person, path, key), with Powertools idempotency, like the API's Idempotency-Key header; a replay gets
the stored result without running anything. A use case that raises stores nothing, so the person can
correct the form and send it again. The same key with another body is refused (the page says so).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from invoicing import root
from invoicing.errors import Conflict, ValidationFailed

if TYPE_CHECKING:
    from pages import Page

FIELD = "idempotency_key"
MAX_KEY_LENGTH = 64


def _machinery() -> tuple[Any, Any]:
    return root.current().once(_machinery, _build)  # type: ignore[no-any-return]


def _build() -> tuple[Any, Any]:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    settings = root.get_settings()
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name)
    config = IdempotencyConfig(
        event_key_jmespath="[principal, path, key]",
        payload_validation_jmespath="body_hash",
        expires_after_seconds=settings.idempotency_ttl_seconds,
        raise_on_no_idempotency_key=True,
    )
    return persistence, config


def run_once(page: Page, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.idempotency import idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    key = page.form.get(FIELD).strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isalnum():
        raise ValidationFailed("this form lacks its key; reload the page", details={"field": FIELD})
    assert page.person is not None
    # the CSRF token is the same for every form of a session, so the body (without it) tells forms apart
    fields = sorted((k, v) for k, values in page.form.fields.items() if k != "csrf" for v in values)
    request = {
        "principal": page.person.principal,
        "path": page.event.path,
        "key": key,
        "body_hash": hashlib.sha256(repr(fields).encode()).hexdigest(),
    }
    persistence, config = _machinery()
    if page.lambda_context is not None:
        config.register_lambda_context(page.lambda_context)

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def run(request: dict[str, Any]) -> dict[str, Any]:
        return action()

    try:
        return dict(run(request=request))
    except IdempotencyValidationError:
        raise ValidationFailed(
            "this form was already sent with other values", code="idempotency_key_reused", details={"field": FIELD}
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict("this form is still being processed", code="idempotency_in_progress") from None
