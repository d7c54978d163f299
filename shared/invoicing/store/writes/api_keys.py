"""Typed writes of API keys: a new key (stored as its hash) and a revocation."""

from __future__ import annotations

from invoicing.errors import Conflict
from invoicing.store import keys
from invoicing.store.api_keys import ApiKey, api_key_to_item
from invoicing.store.models import ApiKeyItem, TableItem
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import FIRST, Guard, WriteSet


class ApiKeyChanged(Conflict):
    """The key is gone or was revoked meanwhile (read it again)."""


class ApiKeyWrites(WriteSet):
    def add_api_key(self, key: ApiKey) -> None:
        """A new key: its hash is its id, so a clash would mean the same secret twice."""
        item = api_key_to_item(key)

        def op(tx: Transaction) -> None:
            tx.save(item, condition=TableItem.pk.does_not_exist())

        self._add(op, Guard((item.pk, item.sk), FIRST, lambda: Conflict("this API key already exists")))

    def revoke_api_key(self, key_hash: str, at: str) -> None:
        """Revoked from `at` on; a key revoked already keeps its first revocation time."""
        key = (keys.api_key_pk(key_hash), keys.API_KEY_SK)

        def op(tx: Transaction) -> None:
            tx.update(
                ApiKeyItem(*key),
                actions=[ApiKeyItem.revoked_at.set(at)],
                condition=TableItem.pk.exists() & ApiKeyItem.revoked_at.does_not_exist(),
            )

        self._add(op, Guard(key, FIRST, lambda: ApiKeyChanged(f"API key {key_hash[:8]}... changed meanwhile")))
