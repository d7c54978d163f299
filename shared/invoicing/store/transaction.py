"""A TransactWriteItems that can say which of its items made DynamoDB cancel it."""

from __future__ import annotations

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite


class Transaction(TransactWrite):
    """PynamoDB sends a transaction's items grouped by kind (condition checks, deletes, puts,
    updates), not in call order, so DynamoDB's cancellation reasons are matched back to items by
    key here. Callers then ask which item's condition failed instead of trusting positions."""

    def _wire_order_keys(self) -> list[tuple[str, str]]:
        ordered = [*self._condition_check_items, *self._delete_items, *self._put_items, *self._update_items]
        keys = []
        for op in ordered:
            key = op.get("Key") or op.get("Item") or {}
            keys.append((key.get("pk", {}).get("S", ""), key.get("sk", {}).get("S", "")))
        return keys

    def reasons(self, exc: TransactWriteError) -> dict[tuple[str, str], str | None]:
        codes = [r.code if r is not None else None for r in (getattr(exc, "cancellation_reasons", None) or [])]
        return dict(zip(self._wire_order_keys(), codes, strict=False))

    def failed(self, exc: TransactWriteError) -> set[tuple[str, str]]:
        """Keys of the items whose condition failed."""
        return {k for k, code in self.reasons(exc).items() if code == "ConditionalCheckFailed"}

    def conflicted(self, exc: TransactWriteError) -> bool:
        """Another transaction was writing one of these items at the same time (retryable)."""
        return any(code == "TransactionConflict" for code in self.reasons(exc).values())


def is_condition_failure(exc: Exception) -> bool:
    """A single-item write (not a transaction) failed its condition."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"
