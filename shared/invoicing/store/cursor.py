"""Page cursors: an index key, base64url JSON, checked against the listing it comes back to."""

from __future__ import annotations

import base64
import json
from typing import Any

from invoicing.errors import ValidationFailed


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str | None,
    *,
    scope: dict[str, str] | None = None,
    keys: tuple[str, ...] = (),
    prefixes: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """The key a cursor carries, checked against the listing it is used with: `scope` are the key
    attributes that must equal (the partition being listed), `keys` those that must be there, and
    `prefixes` what some of them must start with (the item kind listed in a shared partition). A
    cursor from another listing (another customer, status, index or item kind) would otherwise reach
    DynamoDB as an invalid ExclusiveStartKey: a 500 instead of a 422."""
    key = _decode_cursor(cursor)
    if key is None:
        return None
    if not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in key.values()):
        raise ValidationFailed("starting_after is not a valid cursor", details={"field": "starting_after"})
    wanted = {**{k: None for k in keys}, **(scope or {})}
    if (
        set(key) != set(wanted)
        or any(v is not None and key[k]["S"] != v for k, v in wanted.items())
        or any(not key[k]["S"].startswith(p) for k, p in (prefixes or {}).items() if k in key)
    ):
        raise ValidationFailed(
            "starting_after belongs to another listing; start again without it", details={"field": "starting_after"}
        )
    return key


def _decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(key, dict) or not all(isinstance(v, dict) for v in key.values()):
            raise ValueError
        return key
    except (ValueError, json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationFailed("starting_after is not a valid cursor", details={"field": "starting_after"}) from None
