"""The webhook records of the one table: outbox records (the event log), endpoints and deliveries.

Outbox records are written only through the unit of work (`UnitOfWork.add_outbox`), in the same
transaction as the change they report; so are endpoints (store/writes/webhooks.py). Delivery records
and an endpoint's failing streak are single-item writes: they are the delivery machinery's own
state, not a change anyone made.
"""

from __future__ import annotations

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
from invoicing.domain.reminders import SentReminder
from invoicing.domain.webhooks import OutboxEvent, expires_at, outbox_events
from invoicing.errors import NotFound, ServiceUnavailable
from invoicing.schemas.objects import credit_note_out, customer_out, invoice_out, refund_out, sent_reminder_out
from invoicing.store import keys
from invoicing.store.cursor import parse_position, position_cursor
from invoicing.store.models import TableItem, WebhookDeliveryItem, WebhookEndpointItem, WebhookEventItem
from invoicing.store.retry import SHORT, retry
from invoicing.store.shards import ShardRead, merge_shards
from invoicing.store.transaction import is_condition_failure


def public_object(kind: str, subject: object) -> dict[str, Any] | None:
    """An object as the API returns it (`GET /invoices/{id}`, `/credit-notes/{id}`, `/customers/{id}`,
    a credit note's refund, a sent reminder), or None for kinds that publish no events."""
    if kind == "invoice" and isinstance(subject, Invoice):
        return invoice_out(subject).model_dump(mode="json")
    if kind == "credit_note" and isinstance(subject, CreditNote):
        return credit_note_out(subject).model_dump(mode="json")
    if kind == "refund" and isinstance(subject, Refund):
        return refund_out(subject).model_dump(mode="json")
    if kind == "reminder" and isinstance(subject, SentReminder):
        return sent_reminder_out(subject).model_dump(mode="json")
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
        feed_pk=keys.event_feed_pk(event.id),
        feed_sk=position,
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


FEED_ROUNDS = 5  # key pages a type-filtered feed page reads at most before it ends short, with a cursor
FEED_ROUND_KEYS = 100  # keys a type-filtered round reads (one BatchGetItem holds at most 100)
BATCH_GET_ATTEMPTS = 8


def _after(event: OutboxEvent) -> str:
    return position_cursor(event.created_at, event.id)


class UnprocessedKeys(Exception):
    """DynamoDB returned some keys of a BatchGetItem unread (throttled): read those again."""


def get_event_records(pks: list[str]) -> dict[str, WebhookEventItem]:
    """The outbox records of these partition keys (at most 100: one page of the feed), by pk: one
    BatchGetItem, and its UnprocessedKeys read again with jittered backoff (store/retry.py)."""
    wanted = [{"pk": {"S": pk}, "sk": {"S": keys.WEBHOOK_EVENT_SK}} for pk in dict.fromkeys(pks)]
    found: dict[str, WebhookEventItem] = {}

    def attempt() -> None:
        nonlocal wanted
        if not wanted:
            return
        page, unprocessed = TableItem._batch_get_page(wanted, consistent_read=False, attributes_to_get=None)
        for raw in page:
            item = TableItem.from_raw_data(raw)
            if isinstance(item, WebhookEventItem):
                found[item.pk] = item
        wanted = list(unprocessed or [])
        if wanted:
            raise UnprocessedKeys()

    retry(
        attempt,
        on=(UnprocessedKeys,),
        attempts=BATCH_GET_ATTEMPTS,
        exhausted=lambda: ServiceUnavailable("the event log is busy; retry"),
        backoff=SHORT,
    )
    return found


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
        """Newest first. By object: that object's partition of gsi1 (ALL), the type a filter there.
        Otherwise the `feed` index (keys only), read a page of keys across its shards, then the
        records themselves in one BatchGetItem (`_feed_page`)."""
        position = parse_position(cursor)
        if not object_id:
            return self._feed_page(event_type, position, limit, now_epoch)
        type_filter = (WebhookEventItem.event_type == event_type) if event_type else None
        range_condition = TableItem.gsi1sk < keys.event_position_sk(*position) if position else None
        results = TableItem.gsi1.query(
            keys.object_events_pk(object_id),
            range_condition,
            filter_condition=type_filter,
            scan_index_forward=False,
            limit=limit + 1,
        )
        events = [outbox_from_item(i) for i in results if isinstance(i, WebhookEventItem) and _live(i, now_epoch)][
            : limit + 1
        ]
        next_cursor = None
        if len(events) > limit:
            events = events[:limit]
            next_cursor = position_cursor(events[-1].created_at, events[-1].id)
        return EventPage(events, next_cursor)

    def _feed_page(
        self, event_type: str | None, position: tuple[str, str] | None, limit: int, now_epoch: int
    ) -> EventPage:
        """One page of the feed (`limit` <= 100, the API's bound and BatchGetItem's). A round reads
        `limit` keys: every shard's Query of `limit` + 1 keys from the position on, merged
        (store/shards.py), then ONE BatchGetItem of those records, kept in feed order. The index holds
        keys only, so the type (and the 30 days' expiry) can only be told from the records: a
        type-filtered round reads FEED_ROUND_KEYS keys, and one that matched fewer than `limit` reads
        on, up to FEED_ROUNDS rounds; a page still short then ends with a cursor after the last key read."""
        events: list[OutboxEvent] = []
        size = max(limit, FEED_ROUND_KEYS) if event_type else limit
        for _ in range(FEED_ROUNDS if event_type else 1):
            reads = [self._feed_shard_keys(shard, position, size + 1) for shard in range(keys.index_shards())]
            merged = merge_shards(reads, sort_key=lambda k: k[1], limit=size)
            records = get_event_records([pk for pk, _ in merged.items])
            for pk, _ in merged.items:
                item = records.get(pk)  # absent: expired and deleted since the index was read
                if item is None or not _live(item, now_epoch):
                    continue
                if event_type is None or item.event_type == event_type:
                    events.append(outbox_from_item(item))
            if not merged.more or merged.last_position is None:
                return EventPage(events[:limit], _after(events[limit - 1]) if len(events) > limit else None)
            if len(events) >= limit:
                return EventPage(events[:limit], _after(events[limit - 1]))
            created_at, _, event_id = merged.last_position.rpartition("#")
            position = (created_at, event_id)
        return EventPage(events, position_cursor(*position) if position else None)

    @staticmethod
    def _feed_shard_keys(shard: int, position: tuple[str, str] | None, limit: int) -> ShardRead[tuple[str, str]]:
        """(record pk, feed sort key) of one shard, newest first after the position: the index entry
        is keys only, read raw (it has no `type` to build a model from)."""
        last_key = None
        if position:
            created_at, event_id = position
            pk, sk = keys.webhook_event_key(event_id)
            last_key = {
                "pk": {"S": pk},
                "sk": {"S": sk},
                "feed_pk": {"S": keys.event_feed_shard(shard)},
                "feed_sk": {"S": keys.event_position_sk(created_at, event_id)},
            }
        # not TableItem.feed.query: PynamoDB would filter on the `type` discriminator, which a
        # keys-only entry does not carry (and so match nothing)
        connection = TableItem._get_connection()
        found: list[tuple[str, str]] = []
        while len(found) < limit:
            page = connection.query(
                keys.event_feed_shard(shard),
                index_name=TableItem.feed.Meta.index_name,
                scan_index_forward=False,
                limit=limit - len(found),
                exclusive_start_key=last_key,
            )
            found += [(raw["pk"]["S"], raw["feed_sk"]["S"]) for raw in page.get("Items", [])]
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                break
        found = found[:limit]
        return ShardRead(found, found[-1][1] if len(found) >= limit else None)

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
