"""The event log and webhook endpoints: the admin API's side, the fan-out and the delivery worker.

Rules:
- `GET /events` and `GET /events/{id}`: 30 days of public events (invoices:read).
- Endpoints (invoices:write): the URL passes `check_endpoint_url` (https; http to 127.0.0.1/localhost
  only when the stage is local); the events are public types or `["*"]`. The signing secret is made
  here, sealed with KMS before it is stored, and returned once: at creation and at rotation.
- Rotation: the new secret signs at once; the previous one keeps signing alongside for 24 h.
- Fan-out: each enabled endpoint subscribed to an event gets one delivery record and one queue message.
- Delivery: one signed POST per message; 2xx succeeds, 410 disables the endpoint, anything else waits
  the retry schedule (Retry-After honoured) and, when retries run out, marks the delivery failed
  (replayable). An endpoint that has failed every delivery for 5 days is disabled, with a
  `webhook_endpoint.disabled` event.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from invoicing import clock
from invoicing.adapters.webhooks import SigningSecrets, describe, new_secret, post, signed_headers
from invoicing.changes import UNSET, Changes, Unset
from invoicing.domain.events import Actor
from invoicing.domain.webhooks import (
    MAX_ATTEMPTS,
    PUBLIC_TYPES,
    SECRET_OVERLAP,
    EndpointUrlRefused,
    OutboxEvent,
    check_endpoint_url,
    next_delay,
    should_disable,
    subscribed,
)
from invoicing.errors import Conflict, ValidationFailed
from invoicing.ids import new_id
from invoicing.observability import logger
from invoicing.services import Services
from invoicing.store.webhooks import Delivery, Endpoint, EventPage

ENABLED, DISABLED = "enabled", "disabled"


# ---------------------------------------------------------------- the event log
def list_events(
    svc: Services, *, event_type: str | None, object_id: str | None, limit: int, starting_after: str | None
) -> EventPage:
    if event_type is not None and event_type not in PUBLIC_TYPES:
        raise ValidationFailed(f"type must be one of {list(PUBLIC_TYPES)}", details={"field": "type"})
    return svc.webhooks.list_events(
        event_type=event_type, object_id=object_id, limit=limit, cursor=starting_after, now_epoch=_epoch()
    )


def get_event(svc: Services, event_id: str) -> OutboxEvent:
    return svc.webhooks.get_event(event_id, now_epoch=_epoch())


def _epoch() -> int:
    return int(clock.now().timestamp())


# ---------------------------------------------------------------- endpoints
def _check_url(svc: Services, url: str) -> str:
    try:
        check_endpoint_url(url, stage=svc.settings.stage)
    except EndpointUrlRefused as exc:
        raise ValidationFailed(str(exc), details={"field": "url"}) from None
    return url


def _check_events(events: list[str]) -> tuple[str, ...]:
    unknown = sorted(set(events) - set(PUBLIC_TYPES) - {"*"})
    if not events or unknown or ("*" in events and len(set(events)) > 1):
        raise ValidationFailed(
            f'events must be ["*"] or a non-empty list of {list(PUBLIC_TYPES)}', details={"field": "events"}
        )
    return tuple(dict.fromkeys(events))


def create_endpoint(
    svc: Services, actor: Actor, *, url: str, events: list[str], description: str = ""
) -> tuple[Endpoint, str]:
    """A new enabled endpoint and its signing secret, returned this once."""
    now = clock.iso(clock.now())
    endpoint_id = new_id("we")
    secret = new_secret()
    endpoint = Endpoint(
        id=endpoint_id,
        url=_check_url(svc, url),
        events=_check_events(events),
        description=description,
        status=ENABLED,
        secrets_ciphertext=svc.secret_box().seal(endpoint_id, SigningSecrets(secret)),
        created_at=now,
        updated_at=now,
        version=1,
    )
    with svc.uow() as tx:
        tx.add_endpoint(endpoint)
    logger.info("webhook endpoint created", extra={"endpoint_id": endpoint_id, "actor": actor.principal})
    return endpoint, secret


def list_endpoints(svc: Services) -> list[Endpoint]:
    return svc.webhooks.list_endpoints()


def get_endpoint(svc: Services, endpoint_id: str) -> Endpoint:
    return svc.webhooks.get_endpoint(endpoint_id)


@dataclass(frozen=True)
class UpdateEndpoint(Changes):
    """PATCH /webhook-endpoints/{id}: the fields given (invoicing.changes)."""

    url: str | Unset = UNSET
    events: list[str] | Unset = UNSET  # or ["*"]: every event
    description: str | Unset = UNSET
    status: str | Unset = UNSET


def update_endpoint(svc: Services, actor: Actor, endpoint_id: str, cmd: UpdateEndpoint) -> Endpoint:
    """url, events, description, status (enabled/disabled). Enabling again forgets the failing streak."""
    changes = cmd.given()
    endpoint = svc.webhooks.get_endpoint(endpoint_id)
    updated = endpoint
    if changes.get("url") is not None:
        updated = replace(updated, url=_check_url(svc, changes["url"]))
    if changes.get("events") is not None:
        updated = replace(updated, events=_check_events(changes["events"]))
    if changes.get("description") is not None:
        updated = replace(updated, description=changes["description"])
    if changes.get("status") is not None:
        status = changes["status"]
        if status not in (ENABLED, DISABLED):
            raise ValidationFailed("status must be enabled or disabled", details={"field": "status"})
        updated = replace(
            updated, status=status, first_failure_at=None if status == ENABLED else endpoint.first_failure_at
        )
    if updated == endpoint:
        return endpoint
    updated = replace(updated, version=endpoint.version + 1, updated_at=clock.iso(clock.now()))
    with svc.uow() as tx:
        tx.replace_endpoint(updated, expected_version=endpoint.version)
    logger.info("webhook endpoint updated", extra={"endpoint_id": endpoint_id, "actor": actor.principal})
    return updated


def delete_endpoint(svc: Services, actor: Actor, endpoint_id: str) -> None:
    with svc.uow() as tx:
        tx.delete_endpoint(endpoint_id)
    logger.info("webhook endpoint deleted", extra={"endpoint_id": endpoint_id, "actor": actor.principal})


def rotate_secret(svc: Services, actor: Actor, endpoint_id: str) -> tuple[Endpoint, str]:
    """A new signing secret, returned this once; the current one keeps signing alongside for 24 h."""
    endpoint = svc.webhooks.get_endpoint(endpoint_id)
    box = svc.secret_box()
    old = box.open(endpoint_id, endpoint.secrets_ciphertext)
    now = clock.now()
    secret = new_secret()
    sealed = box.seal(endpoint_id, SigningSecrets(secret, old.current, clock.iso(now + SECRET_OVERLAP)))
    updated = replace(endpoint, secrets_ciphertext=sealed, version=endpoint.version + 1, updated_at=clock.iso(now))
    with svc.uow() as tx:
        tx.replace_endpoint(updated, expected_version=endpoint.version)
    logger.info("webhook secret rotated", extra={"endpoint_id": endpoint_id, "actor": actor.principal})
    return updated, secret


def list_deliveries(svc: Services, endpoint_id: str, limit: int = 50) -> list[Delivery]:
    svc.webhooks.get_endpoint(endpoint_id)  # 404 for an unknown endpoint, not an empty list
    return svc.webhooks.list_deliveries(endpoint_id, limit=limit)


def retry_delivery(svc: Services, actor: Actor, endpoint_id: str, delivery_id: str) -> Delivery:
    """Send a delivery again now (a manual retry: one attempt more, whatever its state)."""
    endpoint = svc.webhooks.get_endpoint(endpoint_id)
    if endpoint.status != ENABLED:
        raise Conflict(f"webhook endpoint {endpoint_id} is disabled; enable it first", code="endpoint_disabled")
    delivery = svc.webhooks.get_delivery(endpoint_id, delivery_id)
    _enqueue(svc, delivery, attempt=1, manual=True)
    logger.info("webhook delivery retried", extra={"delivery_id": delivery_id, "actor": actor.principal})
    return delivery


def replay(svc: Services, actor: Actor, endpoint_id: str, since: datetime) -> int:
    """Send again every failed delivery of the endpoint created since `since`; returns how many."""
    endpoint = svc.webhooks.get_endpoint(endpoint_id)
    if endpoint.status != ENABLED:
        raise Conflict(f"webhook endpoint {endpoint_id} is disabled; enable it first", code="endpoint_disabled")
    cutoff = clock.iso(since.astimezone(UTC))
    count = 0
    for delivery in svc.webhooks.list_deliveries(endpoint_id, limit=1000):
        if delivery.created_at < cutoff:
            break
        if delivery.status == "failed":
            _enqueue(svc, delivery, attempt=1, manual=True)
            count += 1
    logger.info(
        "webhook deliveries replayed", extra={"endpoint_id": endpoint_id, "count": count, "actor": actor.principal}
    )
    return count


# ---------------------------------------------------------------- fan-out and delivery
def publish_event(svc: Services, payload: dict[str, Any]) -> int:
    """A new outbox record from the stream: to the EventBridge bus, then to every subscribed endpoint."""
    if svc.settings.event_bus_name:
        svc.event_bus().publish([payload])
    event = OutboxEvent(
        id=payload["id"],
        type=payload["type"],
        object_type="",
        object_id="",
        created_at=payload["created_at"],
        sequence=int(payload["sequence"]),
        object=payload["data"]["object"],
    )
    return fan_out(svc, [event])


def fan_out(svc: Services, events: list[OutboxEvent]) -> int:
    """One delivery record and one queue message per enabled, subscribed endpoint and event.

    The delivery id is derived from the event and the endpoint, so a stream batch retried after a
    crash finds its records: one with no attempt yet is queued again (its message may be lost with the
    crash; a second copy is a duplicate with the same webhook-id), one with attempts is left alone."""
    endpoints = [e for e in svc.webhooks.list_endpoints() if e.status == ENABLED]
    sent = 0
    for event in events:
        for endpoint in endpoints:
            if not subscribed(endpoint.events, event.type):
                continue
            now = clock.iso(clock.now())
            delivery = Delivery(
                id=delivery_id(event.id, endpoint.id),
                endpoint_id=endpoint.id,
                event_id=event.id,
                event_type=event.type,
                status="pending",
                attempts=(),
                created_at=now,
                updated_at=now,
            )
            existing = svc.webhooks.create_delivery(delivery)
            if existing is not None and existing.attempts:
                continue
            _enqueue(svc, existing or delivery, attempt=1)
            sent += 1
    return sent


def delivery_id(event_id: str, endpoint_id: str) -> str:
    """dlv_<the event's sortable id><8 hex of the endpoint>: one per endpoint and event, newest first."""
    return f"dlv_{event_id.removeprefix('evt_')}{zlib.crc32(endpoint_id.encode()):08x}"


def _enqueue(
    svc: Services, delivery: Delivery, *, attempt: int, not_before: str | None = None, manual: bool = False
) -> None:
    message = {
        "endpoint_id": delivery.endpoint_id,
        "delivery_id": delivery.id,
        "event_id": delivery.event_id,
        "attempt": attempt,
        "manual": manual,
    }
    delay = 0
    if not_before:
        message["not_before"] = not_before
        delay = int((clock.parse_iso(not_before) - clock.now()).total_seconds())
    svc.delivery_queue().send(message, delay_seconds=max(0, delay))


def deliver(svc: Services, message: dict[str, Any]) -> str:
    """One attempt of one delivery; returns what happened (for logs and tests)."""
    now = clock.now()
    not_before = message.get("not_before")
    if not_before and clock.parse_iso(not_before) > now + timedelta(seconds=1):
        # SQS delays stop at 15 minutes: a longer wait is a chain of delayed messages
        svc.delivery_queue().send(message, delay_seconds=int((clock.parse_iso(not_before) - now).total_seconds()))
        return "waiting"
    endpoint_id, delivery_id, attempt = message["endpoint_id"], message["delivery_id"], int(message["attempt"])
    try:
        endpoint = svc.webhooks.get_endpoint(endpoint_id)
        delivery = svc.webhooks.get_delivery(endpoint_id, delivery_id)
    except Exception as exc:  # deleted meanwhile: nothing to deliver to
        if getattr(exc, "http_status", None) == 404:
            return "gone"
        raise
    if endpoint.status != ENABLED:
        _record(svc, delivery, None, status="failed")
        return "endpoint_disabled"
    try:
        event = svc.webhooks.get_event(delivery.event_id, now_epoch=0)
    except Exception as exc:
        if getattr(exc, "http_status", None) == 404:
            _record(
                svc,
                delivery,
                {"at": clock.iso(now), "status_code": None, "latency_ms": 0, "error": "event expired"},
                status="failed",
            )
            return "expired"
        raise
    body = json.dumps(event.payload(), separators=(",", ":"), sort_keys=True)
    active = svc.secret_box().open(endpoint_id, endpoint.secrets_ciphertext).active(now)
    headers = signed_headers(active, event.id, now, body)
    result = post(endpoint.url, body, headers, stage=svc.settings.stage)
    attempt_record = {"at": clock.iso(now), "attempt": attempt, **describe(result)}
    if result.ok:
        _record(svc, delivery, attempt_record, status="succeeded")
        if endpoint.first_failure_at:
            svc.webhooks.note_result(endpoint_id, failed_at=None)
        return "succeeded"
    if result.status_code == 410:
        _record(svc, delivery, attempt_record, status="failed")
        _disable(svc, endpoint, reason="the endpoint answered 410 Gone")
        return "disabled"
    svc.webhooks.note_result(endpoint_id, failed_at=clock.iso(now))
    if should_disable(endpoint.first_failure_at, now):
        _record(svc, delivery, attempt_record, status="failed")
        _disable(svc, endpoint, reason="every delivery failed for 5 days")
        return "disabled"
    wait = (
        None
        if message.get("manual")
        else next_delay(attempt, retry_after=result.retry_after, compress=svc.settings.webhook_retry_compression)
    )
    if wait is None:
        _record(svc, delivery, attempt_record, status="failed")
        return "failed"
    _record(svc, delivery, attempt_record, status="pending")
    _enqueue(svc, delivery, attempt=attempt + 1, not_before=clock.iso(now + wait))
    return "retrying"


def _record(svc: Services, delivery: Delivery, attempt: dict[str, Any] | None, *, status: str) -> None:
    current = svc.webhooks.get_delivery(delivery.endpoint_id, delivery.id)
    attempts = current.attempts + ((attempt,) if attempt else ())
    svc.webhooks.put_delivery(
        replace(current, attempts=attempts[-MAX_ATTEMPTS * 2 :], status=status, updated_at=clock.iso(clock.now()))
    )


def _disable(svc: Services, endpoint: Endpoint, *, reason: str) -> None:
    current = svc.webhooks.get_endpoint(endpoint.id)
    if current.status == DISABLED:
        return
    now = clock.iso(clock.now())
    updated = replace(current, status=DISABLED, version=current.version + 1, updated_at=now)
    event = OutboxEvent(
        id=new_id("evt"),
        type="webhook_endpoint.disabled",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        created_at=now,
        sequence=updated.version * 100,
        object={**updated.public(), "disabled_reason": reason},
    )
    try:
        with svc.uow() as tx:  # the endpoint and its event, one transaction
            tx.replace_endpoint(updated, expected_version=current.version)
            tx.add_outbox(event)
    except Conflict:
        return  # changed meanwhile (re-enabled, edited): that change stands
    logger.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id, "reason": reason})
