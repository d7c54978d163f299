"""Typed writes of customers: a new customer, and an edit of its own fields (the balance is written
only by `change_balance`, conditioned on the amount it was computed from). Each publishes its public
event (`customer.created`, `customer.updated`) in the same transaction: customers have no audit
trail of their own, so the change itself is the event's source."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from invoicing.domain.customer import Customer
from invoicing.errors import ConcurrentModification, Conflict
from invoicing.store import keys
from invoicing.store.mapping import customer_to_item, set_value
from invoicing.store.models import CustomerItem, TableItem
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import FIRST, Guard, WriteSet


class CustomerChanged(ConcurrentModification):
    """The customer is gone or no longer at the version read: re-read (404 when gone) and apply again."""


class CustomerWrites(WriteSet):
    def add_customer(self, customer: Customer) -> None:
        key = keys.customer_key(customer.id)
        customer = replace(customer, version=1)

        def op(tx: Transaction) -> None:
            tx.save(customer_to_item(customer), condition=TableItem.pk.does_not_exist())

        self._add(op, Guard(key, FIRST, lambda: Conflict(f"customer {customer.id} already exists")))
        self._changed("customer", customer.id, customer, customer.version, publishes="customer.created")

    def update_customer(self, before: Customer, after: Customer, changes: dict[str, Any]) -> None:
        """Only the fields in `changes` (and updated_at) are written; `after` is the customer as read
        (`before`) with them applied. Conditioned on the version read (a balance move bumps it too),
        so `after` is exactly what is stored: `CustomerChanged` otherwise."""
        key = keys.customer_key(after.id)
        after = replace(after, version=before.version + 1)
        actions = [set_value(getattr(CustomerItem, k), v) for k, v in changes.items()]
        actions += [CustomerItem.updated_at.set(after.updated_at), CustomerItem.version.set(after.version)]
        version_read = (
            (CustomerItem.version == before.version) | CustomerItem.version.does_not_exist()
            if before.version == 0
            else CustomerItem.version == before.version
        )

        def op(tx: Transaction) -> None:
            tx.update(CustomerItem(*key), actions=actions, condition=TableItem.pk.exists() & version_read)

        self._add(
            op,
            Guard(key, FIRST, lambda: CustomerChanged(f"customer {after.id} changed meanwhile"), on_conflict=True),
        )
        self._changed("customer", after.id, after, after.version, publishes="customer.updated")
