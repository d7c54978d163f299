"""API keys: created by a command, shown once, stored only as a SHA-256 hash with a name and scopes.

The authorizer calls `authorize`; nothing else ever sees a plaintext key, and no key is logged.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from invoicing import clock
from invoicing.errors import NotFound, ValidationFailed
from invoicing.store.api_keys import ApiKey
from invoicing.store.writes.api_keys import ApiKeyChanged

if TYPE_CHECKING:
    from invoicing.store.repository import Repository

KEY_PREFIX = "inv_"
SCOPES = ("invoices:read", "invoices:write", "billing_runs:write")
# billing runs are an admin's: a key gets billing_runs:write only when asked for
DEFAULT_SCOPES = ("invoices:read", "invoices:write")


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_api_key(
    name: str, scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES, repo: Repository | None = None
) -> str:
    """Returns the plaintext key; it is not stored anywhere and cannot be shown again."""
    if not name or len(name) > 64 or not all(c.isalnum() or c in "-_.:@" for c in name):
        raise ValidationFailed("name must be 1-64 characters of letters, digits and -_.:@", details={"field": "name"})
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValidationFailed(f"scopes must be a non-empty subset of {list(SCOPES)}", details={"field": "scopes"})
    if repo is None:
        repo = _repo()
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        key_hash=hash_key(plaintext),
        name=name,
        scopes=tuple(sorted(set(scopes))),
        hint=plaintext[-4:],
        created_at=clock.iso(clock.now()),
        revoked_at=None,
    )
    with repo.uow() as tx:
        tx.add_api_key(key)
    return plaintext


def list_api_keys(repo: Repository | None = None) -> list[ApiKey]:
    """The newest 100 keys, revoked ones too: name, scopes, the plaintext's last four characters."""
    return (repo if repo is not None else _repo()).list_api_keys(limit=100)


def revoke_api_key(key_hash: str, repo: Repository | None = None) -> ApiKey:
    """Revoke a key by its hash: the authorizer (which caches nothing) refuses it from the next request on.
    Revoking a revoked key keeps its first revocation time."""
    if not re.fullmatch(r"[0-9a-f]{64}", key_hash):
        raise ValidationFailed("choose a key to revoke", details={"field": "key"})
    repo = repo if repo is not None else _repo()
    key = repo.get_api_key(key_hash)
    if key is None:
        raise NotFound("there is no such API key", code="api_key_not_found")
    if key.revoked_at is not None:
        return key
    at = clock.iso(clock.now())
    try:
        with repo.uow() as tx:
            tx.revoke_api_key(key_hash, at)
    except ApiKeyChanged:  # revoked by someone else a moment ago: theirs is the first revocation
        again = repo.get_api_key(key_hash)
        if again is None:
            raise NotFound("there is no such API key", code="api_key_not_found") from None
        return again
    return replace(key, revoked_at=at)


def _repo() -> Repository:
    from invoicing.root import get_services

    return get_services().repo


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: tuple[str, ...]

    @property
    def actor(self) -> str:
        return f"api_key:{self.name}"


def authorize(repo, authorization_header: str | None) -> Principal | None:  # type: ignore[no-untyped-def]
    """`Bearer <key>` -> the key's principal, or None for a missing, unknown or revoked key."""
    if not authorization_header:
        return None
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    key = repo.get_api_key(hash_key(token.strip()))
    if key is None or key.revoked_at:
        return None
    return Principal(name=key.name, scopes=key.scopes)
