"""The webhook records of the one table: outbox records (the event log), endpoints and deliveries.

Outbox records are written only through the unit of work (`UnitOfWork.add_outbox`), in the same
transaction as the change they report; so are endpoints (store/writes/webhooks.py). Delivery records
and an endpoint's failing streak are single-item writes: they are the delivery machinery's own
state, not a change anyone made.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from invoicing.domain.credit import CreditNote
from invoicing.domain.customer import Customer
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice
from invoicing.domain.refunds import Refund
from invoicing.domain.webhooks import OutboxEvent, expires_at, outbox_events
from invoicing.errors import NotFound
from invoicing.schemas.objects import credit_note_out, customer_out, invoice_out, refund_out
from invoicing.store import keys
from invoicing.store.cursor import parse_position, position_cursor
from invoicing.store.models import TableItem, WebhookDeliveryItem, WebhookEndpointItem, WebhookEventItem
from invoicing.store.transaction import is_condition_failure


def public_object(kind: str, subject: object) -> dict[str, Any] | None:
    """An object as the API returns it (`GET /invoices/{id}`, `/credit-notes/{id}`, `/customers/{id}`,
    a credit note's refund), or None for kinds that publish no events."""
    if kind == "invoice" and isinstance(subject, Invoice):
        return invoice_out(subject).model_dump(mode="json")
    if kind == "credit_note" and isinstance(subject, CreditNote):
        return credit_note_out(subject).model_dump(mode="json")
    if kind == "refund" and isinstance(subject, Refund):
        return refund_out(subject).model_dump(mode="json")
    if kind == "customer" and isinstance(subject, Customer):
        return customer_out(subject).model_dump(mode="json")
    return None


def object_outbox(events: tuple[InvoiceEvent, ...], kind: str, subject: object, version: int) -> list[OutboxEvent]:
    """The public events about one object among one change's audit events, each carrying the object
    (as it is after the change; a deleted draft as it was) as the API returns it, with the object's
    version after the change for the sequence. The one place this is decided (store/uow.py)."""
    obj = public_object(kind, subject)
    object_id = getattr(subject, "id", None)
    if obj is None or not isinstance(object_id, str):
        return []
    return outbox_events(events, object_type=kind, object_id=object_id, obj=obj, version=version)


def change_event(type_: str, kind: str, subject: object, version: int, *, event_id: str, at: str) -> OutboxEvent | None:
    """The public event of a change to an object without an audit trail (a customer)."""
    obj = public_object(kind, subject)
    object_id = getattr(subject, "id", None)
    if obj is None or not isinstance(object_id, str):
        return None
    return OutboxEvent(
        id=event_id,
        type=type_,
        object_type=kind,
        object_id=object_id,
        created_at=at,
        sequence=version * 100,
        object=obj,
    )


def outbox_to_item(event: OutboxEvent) -> WebhookEventItem:
    created = datetime.fromisoformat(event.created_at.replace("Z", "+00:00"))
    position = keys.event_position_sk(event.created_at, event.id)
    return WebhookEventItem(
        *keys.webhook_event_key(event.id),
        event_id=event.id,
        event_type=event.type,
        object_type=event.object_type,
        object_id=event.object_id,
        created_at=event.created_at,
        sequence=event.sequence,
        payload=json.dumps(event.payload(), separators=(",", ":"), sort_keys=True),
        gsi1pk=keys.object_events_pk(event.object_id),
        gsi1sk=position,
        gsi2pk=keys.event_feed_pk(event.id),
        gsi2sk=position,
        ttl=expires_at(created),
    )


def outbox_from_item(item: WebhookEventItem) -> OutboxEvent:
    payload = json.loads(item.payload)
    return OutboxEvent(
        id=item.event_id,
        type=item.event_type,
        object_type=item.object_type,
        object_id=item.object_id,
        created_at=item.created_at,
        sequence=int(item.sequence),
        object=payload["data"]["object"],
    )


@dataclass(frozen=True)
class EventPage:
    items: list[OutboxEvent]
    next_cursor: str | None


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    events: tuple[str, ...]
    description: str
    status: str
    secrets_ciphertext: str
    created_at: str
    updated_at: str
    version: int
    first_failure_at: str | None = None

    def public(self) -> dict[str, Any]:
        """The endpoint as the API returns it (never its secrets)."""
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Delivery:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: str
    attempts: tuple[dict[str, Any], ...]
    created_at: str
    updated_at: str


def _live(item: WebhookEventItem, now_epoch: int) -> bool:
    # DynamoDB deletes expired items within days, not at once: the log reads as 30 days exactly
    return item.ttl is None or int(item.ttl) > now_epoch


class WebhookStore:
    # -- the event log
    def get_event(self, event_id: str, *, now_epoch: int) -> OutboxEvent:
        try:
            item = WebhookEventItem.get(*keys.webhook_event_key(event_id))
        except WebhookEventItem.DoesNotExist as exc:
            raise NotFound(f"event {event_id} not found") from exc
        if not _live(item, now_epoch):
            raise NotFound(f"event {event_id} not found")
        return outbox_from_item(item)

    def list_events(
        self,
        *,
        event_type: str | None,
        object_id: str | None,
        limit: int,
        cursor: str | None,
        now_epoch: int,
    ) -> EventPage:
        """Newest first. By object: that object's partition of gsi1. Otherwise the feed's shards of
        gsi2, each read from the cursor on and merged. The type is a filter (it reads past other
        types; the feed holds 30 days)."""
        position = parse_position(cursor)
        type_filter = (WebhookEventItem.event_type == event_type) if event_type else None
        sources: list[tuple[Any, str, Any]]
        if object_id:
            sources = [(TableItem.gsi1, keys.object_events_pk(object_id), TableItem.gsi1sk)]
        else:
            sources = [
                (TableItem.gsi2, keys.event_feed_shard(s), TableItem.gsi2sk) for s in range(keys.EVENT_FEED_SHARDS)
            ]
        streams = []
        for index, pk, sk_attr in sources:
            range_condition = sk_attr < keys.event_position_sk(*position) if position else None
            results = index.query(
                pk,
                range_condition,
                filter_condition=type_filter,
                scan_index_forward=False,
                limit=limit + 1,
            )
            streams.append(
                [item for item in results if isinstance(item, WebhookEventItem) and _live(item, now_epoch)][: limit + 1]
            )
        merged = list(heapq.merge(*streams, key=lambda i: (i.created_at, i.event_id), reverse=True))
        events = [outbox_from_item(i) for i in merged[: limit + 1]]
        next_cursor = None
        if len(events) > limit:
            events = events[:limit]
            next_cursor = position_cursor(events[-1].created_at, events[-1].id)
        return EventPage(events, next_cursor)

    # -- endpoints
    def get_endpoint(self, endpoint_id: str) -> Endpoint:
        try:
            item = WebhookEndpointItem.get(*keys.webhook_endpoint_key(endpoint_id))
        except WebhookEndpointItem.DoesNotExist as exc:
            raise NotFound(f"webhook endpoint {endpoint_id} not found") from exc
        return _endpoint_from_item(item)

    def list_endpoints(self) -> list[Endpoint]:
        results = TableItem.gsi1.query(keys.WEBHOOK_ENDPOINTS_LIST, scan_index_forward=False)
        return [_endpoint_from_item(i) for i in results if isinstance(i, WebhookEndpointItem)]

    def note_result(self, endpoint_id: str, *, failed_at: str | None) -> None:
        """Remember when an endpoint started failing (None on a success resets it)."""
        item = WebhookEndpointItem(*keys.webhook_endpoint_key(endpoint_id))
        try:
            if failed_at is None:
                item.update(actions=[WebhookEndpointItem.first_failure_at.remove()], condition=TableItem.pk.exists())
            else:
                item.update(
                    actions=[
                        WebhookEndpointItem.first_failure_at.set(WebhookEndpointItem.first_failure_at | failed_at)
                    ],
                    condition=TableItem.pk.exists(),
                )
        except UpdateError as exc:
            if not is_condition_failure(exc):  # deleted meanwhile: nothing to remember
                raise

    # -- deliveries
    def create_delivery(self, delivery: Delivery) -> Delivery | None:
        """Write a new delivery record; when one with its id exists already, return that one instead."""
        try:
            _delivery_to_item(delivery).save(condition=TableItem.pk.does_not_exist())
        except PutError as exc:
            if not is_condition_failure(exc):
                raise
            return self.get_delivery(delivery.endpoint_id, delivery.id)
        return None

    def put_delivery(self, delivery: Delivery) -> None:
        _delivery_to_item(delivery).save()

    def list_deliveries(self, endpoint_id: str, *, limit: int = 100) -> list[Delivery]:
        results = WebhookDeliveryItem.query(
            keys.webhook_endpoint_key(endpoint_id)[0],
            TableItem.sk.startswith(keys.DELIVERY_PREFIX),
            scan_index_forward=False,
            limit=limit,
        )
        return [_delivery_from_item(i) for i in results if isinstance(i, WebhookDeliveryItem)]

    def get_delivery(self, endpoint_id: str, delivery_id: str) -> Delivery:
        try:
            item = WebhookDeliveryItem.get(keys.webhook_endpoint_key(endpoint_id)[0], keys.delivery_sk(delivery_id))
        except WebhookDeliveryItem.DoesNotExist as exc:
            raise NotFound(f"delivery {delivery_id} not found") from exc
        return _delivery_from_item(item)


def endpoint_to_item(e: Endpoint) -> WebhookEndpointItem:
    return WebhookEndpointItem(
        *keys.webhook_endpoint_key(e.id),
        endpoint_id=e.id,
        url=e.url,
        events=list(e.events),
        description=e.description,
        status=e.status,
        secrets=e.secrets_ciphertext,
        created_at=e.created_at,
        updated_at=e.updated_at,
        version=e.version,
        first_failure_at=e.first_failure_at,
        gsi1pk=keys.WEBHOOK_ENDPOINTS_LIST,
        gsi1sk=f"{e.created_at}#{e.id}",
    )


def _endpoint_from_item(i: WebhookEndpointItem) -> Endpoint:
    return Endpoint(
        id=i.endpoint_id,
        url=i.url,
        events=tuple(str(e) for e in (i.events or [])),
        description=i.description,
        status=i.status,
        secrets_ciphertext=i.secrets,
        created_at=i.created_at,
        updated_at=i.updated_at,
        version=int(i.version),
        first_failure_at=i.first_failure_at,
    )


def _delivery_to_item(delivery: Delivery) -> WebhookDeliveryItem:
    return WebhookDeliveryItem(
        keys.webhook_endpoint_key(delivery.endpoint_id)[0],
        keys.delivery_sk(delivery.id),
        delivery_id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=[dict(a) for a in delivery.attempts] or None,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )


def _delivery_from_item(i: WebhookDeliveryItem) -> Delivery:
    return Delivery(
        id=i.delivery_id,
        endpoint_id=i.endpoint_id,
        event_id=i.event_id,
        event_type=i.event_type,
        status=i.status,
        attempts=tuple(dict(a) for a in (i.attempts or [])),
        created_at=i.created_at,
        updated_at=i.updated_at,
    )
