"""Typed writes of webhook endpoints: a new endpoint, a changed one (conditioned on the version read:
an edit, a rotated secret, the machinery disabling it) and a deletion."""

from __future__ import annotations

from invoicing.errors import Conflict, NotFound
from invoicing.store import keys
from invoicing.store.models import TableItem, WebhookEndpointItem
from invoicing.store.transaction import Transaction
from invoicing.store.webhooks import Endpoint, endpoint_to_item
from invoicing.store.writes.base import FIRST, Guard, WriteSet


class EndpointWrites(WriteSet):
    def add_endpoint(self, endpoint: Endpoint) -> None:
        item = endpoint_to_item(endpoint)

        def op(tx: Transaction) -> None:
            tx.save(item, condition=TableItem.pk.does_not_exist())

        key = keys.webhook_endpoint_key(endpoint.id)
        self._add(op, Guard(key, FIRST, lambda: Conflict(f"webhook endpoint {endpoint.id} already exists")))

    def replace_endpoint(self, endpoint: Endpoint, *, expected_version: int) -> None:
        """A changed endpoint, conditioned on the version read (a concurrent change is a 409)."""
        item = endpoint_to_item(endpoint)
        key = keys.webhook_endpoint_key(endpoint.id)

        def op(tx: Transaction) -> None:
            tx.save(item, condition=TableItem.pk.exists() & (WebhookEndpointItem.version == expected_version))

        self._add(op, Guard(key, FIRST, lambda: Conflict(f"webhook endpoint {endpoint.id} changed meanwhile; retry")))

    def delete_endpoint(self, endpoint_id: str) -> None:
        key = keys.webhook_endpoint_key(endpoint_id)

        def delete_endpoint_item(tx: Transaction) -> None:
            tx.delete(WebhookEndpointItem(*key), condition=TableItem.pk.exists())

        self._add(
            delete_endpoint_item, Guard(key, FIRST, lambda: NotFound(f"webhook endpoint {endpoint_id} not found"))
        )
