"""Typed writes of customers: a new customer, and an edit of its own fields (the balance is written
only by `change_balance`, conditioned on the amount it was computed from)."""

from __future__ import annotations

from typing import Any

from invoicing.domain.customer import Customer
from invoicing.errors import Conflict, NotFound
from invoicing.store import keys
from invoicing.store.mapping import customer_to_item, set_value
from invoicing.store.models import CustomerItem, TableItem
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import FIRST, Guard, WriteSet


class CustomerWrites(WriteSet):
    def add_customer(self, customer: Customer) -> None:
        key = keys.customer_key(customer.id)

        def op(tx: Transaction) -> None:
            tx.save(customer_to_item(customer), condition=TableItem.pk.does_not_exist())

        self._add(op, Guard(key, FIRST, lambda: Conflict(f"customer {customer.id} already exists")))
        self._changed("customer", customer.id, customer)

    def update_customer(self, after: Customer, changes: dict[str, Any]) -> None:
        """Only the fields in `changes` (and updated_at) are written; `after` is the customer as read
        with them applied. NotFound when the customer is gone."""
        key = keys.customer_key(after.id)
        actions = [set_value(getattr(CustomerItem, k), v) for k, v in changes.items()]
        actions.append(CustomerItem.updated_at.set(after.updated_at))

        def op(tx: Transaction) -> None:
            tx.update(CustomerItem(*key), actions=actions, condition=TableItem.pk.exists())

        self._add(op, Guard(key, FIRST, lambda: NotFound(f"customer {after.id} not found", code="customer_not_found")))
        self._changed("customer", after.id, after)
