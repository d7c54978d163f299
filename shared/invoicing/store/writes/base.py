"""What every typed write module shares: how a write is queued, which domain error its failed
condition means, and the object as it is after the change (for the outbox: store/uow.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from invoicing.store import keys
from invoicing.store.transaction import Transaction

Op = Callable[[Transaction], None]

# Which failed condition explains a cancelled transaction best, when several did: the item the
# write is about first (in the order the guards were added), then the others; the number last, and
# only when no transaction conflict was reported (then nothing was stale but the number, and taking
# the next one is enough).
FIRST, THEN, NUMBER = 0, 1, 2


@dataclass(frozen=True)
class Guard:
    """The domain error a failed condition on `key` means. `on_conflict`: that error also explains a
    `TransactionConflict` (another writer on one of the items), instead of the generic WriteConflict."""

    key: keys.Key
    rank: int
    error: Callable[[], Exception]
    on_conflict: bool = False


@dataclass(frozen=True)
class Changed:
    """An object as it is once the unit of work commits, with its version where it has one:
    invoices, customers and refunds carry `version` (each write conditioned on the one read), the
    others none (their writes are conditioned on status or existence, see docs/decisions.md).

    `before`: the object as it was, for a deletion (`after` is None then). `publishes`: the public
    event type this change publishes by itself, for objects that have no audit trail (customers)."""

    kind: str  # invoice | customer | credit_note | refund | payment | payment_link | reminder
    id: str
    version: int | None
    after: object
    before: object = None
    publishes: str | None = None


class Skipped(Exception):
    """A write that applies only if its condition holds did not apply (a redelivered render job, a
    reminder claim that ran out): nothing was written, and that is an answer, not a failure."""


class WriteSet:
    """The queue the typed writes add to; UnitOfWork commits it."""

    def __init__(self) -> None:
        self._ops: list[Op] = []
        self._guards: list[Guard] = []
        self._after_commit: list[Callable[[], None]] = []
        self.changes: list[Changed] = []
        self._done = False

    def _add(self, op: Op, *guards: Guard) -> None:
        if self._done:
            raise RuntimeError("this unit of work is already committed")
        self._ops.append(op)
        self._guards.extend(guards)

    def _changed(
        self,
        kind: str,
        id_: str,
        after: object,
        version: int | None = None,
        *,
        before: object = None,
        publishes: str | None = None,
    ) -> None:
        self.changes.append(Changed(kind, id_, version, after, before, publishes))
