"""API keys: stored only as a SHA-256 hash, with a name and scopes (use_cases/api_keys.py)."""

from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist

from invoicing.store import keys
from invoicing.store.models import ApiKeyItem, TableItem


@dataclass(frozen=True)
class ApiKey:
    key_hash: str
    name: str
    scopes: tuple[str, ...]
    hint: str
    created_at: str
    revoked_at: str | None


class ApiKeyRecords:
    """The API-key records of the table (mixed into the Repository): reads; the writes are typed
    writes of the unit of work (store/writes/api_keys.py)."""

    def list_api_keys(self, *, limit: int = 100) -> list[ApiKey]:
        """The newest ``limit`` API keys, revoked ones too (gsi2 `APIKEYS`): one Query."""
        return [
            _api_key(keys.api_key_hash_of(item.pk), item)
            for item in TableItem.gsi2.query(keys.API_KEYS_LIST, scan_index_forward=False, limit=limit)
            if isinstance(item, ApiKeyItem)
        ]

    def get_api_key(self, key_hash: str) -> ApiKey | None:
        try:
            item = ApiKeyItem.get(keys.api_key_pk(key_hash), keys.API_KEY_SK)
        except DoesNotExist:
            return None
        return _api_key(key_hash, item)


def _api_key(key_hash: str, item: ApiKeyItem) -> ApiKey:
    return ApiKey(
        key_hash=key_hash,
        name=item.name,
        scopes=tuple(str(scope) for scope in item.scopes or []),
        hint=item.hint,
        created_at=item.created_at,
        revoked_at=item.revoked_at,
    )


def api_key_to_item(key: ApiKey) -> ApiKeyItem:
    return ApiKeyItem(
        keys.api_key_pk(key.key_hash),
        keys.API_KEY_SK,
        name=key.name,
        scopes=list(key.scopes),
        hint=key.hint,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        gsi2pk=keys.API_KEYS_LIST,
        gsi2sk=f"{key.created_at}#{key.name}",
    )
