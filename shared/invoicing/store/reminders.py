"""The reminder ledger, the due-index reads of the daily run, and the run cursor.

Keys (see docs/data-model.md):
- ledger: pk `INVOICE#{id}`, sk `REMINDER#{kind}`; manual ones `REMINDER#manual#{id}` (many allowed).
  While `sending`, the item is also on gsi2 under `REMINDERSENDING#{shard}` / `{lease_until}#{id}#{key}`
  (sparse: removed once sent, failed or cancelled), so a run finds claims whose lease ran out.
- run cursor: pk `REMINDERRUN`, sk `CURSOR`.
- candidates: the sparse `due` index, `due_pk = DUE#{yyyy-mm-dd}`; it holds open invoices only.

Exactly once per invoice and kind: `claim` is ONE transaction of a condition check on the invoice
(status, and the version the caller rendered from) and a conditional write of the ledger item that
succeeds only if the item does not exist, or is `sending` with an expired lease. After SES accepted
the mail, `mark_sent` records the message id, conditioned on the claim still being ours.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from invoicing import clock
from invoicing.domain.customer import Customer
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.domain.reminders import CANCELLED, FAILED, SENDING, SENT, ReminderRecord
from invoicing.errors import ConcurrentModification, Conflict
from invoicing.store.keys import customer_pk, header_key, invoice_pk
from invoicing.store.mapping import customer_from_item, event_to_item, invoice_from_item
from invoicing.store.models import CustomerItem, InvoiceItem, ReminderItem, ReminderRunItem, TableItem
from invoicing.store.repository import Repository
from invoicing.store.transaction import is_condition_failure as _is_condition_failure

REMINDER_SK = "REMINDER#"
SENDING_SHARDS = 4
RUN_CURSOR_KEY = ("REMINDERRUN", "CURSOR")
BATCH_GET_LIMIT = 100


def reminder_sk(key: str) -> str:
    return f"{REMINDER_SK}{key}"


def due_pk(day: date) -> str:
    return f"DUE#{day.isoformat()}"


def sending_pk(invoice_id: str, key: str) -> str:
    """Spread over a few partitions: a big run's claims must not all write one index partition."""
    return f"REMINDERSENDING#{zlib.crc32(f'{invoice_id}#{key}'.encode()) % SENDING_SHARDS}"


def sending_sk(lease_until: str, invoice_id: str, key: str) -> str:
    return f"{lease_until}#{invoice_id}#{key}"


class InvoiceChanged(ConcurrentModification):
    """The invoice is no longer in an allowed status or not at the version the caller read."""

    code = "invoice_changed"


class ReminderTaken(Conflict):
    """This reminder was sent already, or another worker holds a live claim on it."""

    code = "reminder_taken"


@dataclass(frozen=True)
class Claim:
    invoice_id: str
    key: str
    claim_id: str
    lease_until: str


def record_from_item(item: ReminderItem) -> ReminderRecord:
    return ReminderRecord(
        invoice_id=item.invoice_id,
        key=item.reminder_key,
        kind=item.kind,
        status=item.status,
        trigger=item.trigger,
        actor=item.actor,
        attempts=int(item.attempts or 0),
        claimed_at=item.claimed_at,
        lease_until=item.lease_until,
        step_date=item.step_date,
        recipient=item.recipient,
        sent_at=item.sent_at,
        message_id=item.message_id,
        payment_link_id=item.payment_link_id,
        last_error=item.last_error,
    )


class ReminderStore:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    # -- candidates of a run
    def open_invoices_due_on(self, day: date) -> Iterator[Invoice]:
        """Open invoices due on `day`: one Query on the sparse due index (every page). Eventually
        consistent: an invoice paid a moment ago may still show up; `claim` re-checks the status."""
        for item in TableItem.due.query(due_pk(day)):
            if isinstance(item, InvoiceItem):
                yield invoice_from_item(item)

    def get_customers(self, customer_ids: Iterable[str]) -> dict[str, Customer]:
        """BatchGetItem in chunks of 100; unknown ids are left out."""
        ids = sorted(set(customer_ids))
        out: dict[str, Customer] = {}
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            keys = [(customer_pk(cid), "CUSTOMER") for cid in ids[start : start + BATCH_GET_LIMIT]]
            for item in CustomerItem.batch_get(keys):
                if isinstance(item, CustomerItem):
                    customer = customer_from_item(item)
                    out[customer.id] = customer
        return out

    # -- the run cursor
    def get_run_cursor(self) -> datetime | None:
        try:
            item = ReminderRunItem.get(*RUN_CURSOR_KEY, consistent_read=True)
        except DoesNotExist:
            return None
        return clock.parse_iso(item.ran_at)

    def save_run_cursor(self, ran_at: str, run_id: str) -> bool:
        """Moves forward only: an older run finishing late never moves the cursor back."""
        try:
            ReminderRunItem(*RUN_CURSOR_KEY).update(
                actions=[
                    ReminderRunItem.type.set(ReminderRunItem),
                    ReminderRunItem.ran_at.set(ran_at),
                    ReminderRunItem.run_id.set(run_id),
                ],
                condition=ReminderRunItem.ran_at.does_not_exist() | (ReminderRunItem.ran_at < ran_at),
            )
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    # -- claims whose lease ran out (a crash between claim and SES, or a send that kept failing)
    def expired_claims(self, now_iso: str, limit: int = 1000) -> list[ReminderRecord]:
        out: list[ReminderRecord] = []
        for shard in range(SENDING_SHARDS):
            for item in TableItem.gsi2.query(
                f"REMINDERSENDING#{shard}", TableItem.gsi2sk < now_iso, limit=limit - len(out)
            ):
                if isinstance(item, ReminderItem) and item.status == SENDING:
                    out.append(record_from_item(item))
            if len(out) >= limit:
                break
        return out

    # -- the ledger
    def claim(
        self,
        *,
        invoice_id: str,
        key: str,
        kind: str,
        allowed: frozenset[InvoiceStatus],
        expected_version: int | None,
        claim_id: str,
        now: str,
        lease_until: str,
        trigger: str,
        actor: str,
        step_date: str | None,
    ) -> Claim:
        """Take the right to send reminder `key` of the invoice, in one transaction with a check that
        the invoice is in `allowed` (and at `expected_version`, so the mail shows what is current).

        Raises InvoiceChanged (re-read and decide again) or ReminderTaken (sent, or claimed by someone
        whose lease is still running: leave it to them)."""
        condition: Any = InvoiceItem.status.is_in(*sorted(s.value for s in allowed))
        if expected_version is not None:
            condition = condition & (InvoiceItem.version == expected_version)
        item = ReminderItem(invoice_pk(invoice_id), reminder_sk(key))
        actions: list[Any] = [
            ReminderItem.type.set(ReminderItem),
            ReminderItem.invoice_id.set(invoice_id),
            ReminderItem.reminder_key.set(key),
            ReminderItem.kind.set(kind),
            ReminderItem.status.set(SENDING),
            ReminderItem.trigger.set(trigger),
            ReminderItem.actor.set(actor),
            ReminderItem.claim_id.set(claim_id),
            ReminderItem.attempts.add(1),
            ReminderItem.claimed_at.set(now),
            ReminderItem.lease_until.set(lease_until),
            ReminderItem.gsi2pk.set(sending_pk(invoice_id, key)),
            ReminderItem.gsi2sk.set(sending_sk(lease_until, invoice_id, key)),
        ]
        if step_date:
            actions.append(ReminderItem.step_date.set(step_date))
        free = TableItem.pk.does_not_exist() | ((ReminderItem.status == SENDING) & (ReminderItem.lease_until < now))
        try:
            with self.repo.transaction() as tx:
                tx.condition_check(InvoiceItem, invoice_pk(invoice_id), "INVOICE", condition=condition)
                tx.update(item, actions=actions, condition=free)
        except TransactWriteError as exc:
            failed = tx.failed(exc)
            if header_key(invoice_id) in failed:
                raise InvoiceChanged(f"invoice {invoice_id} changed since it was read") from exc
            if (invoice_pk(invoice_id), reminder_sk(key)) in failed:
                raise ReminderTaken(f"reminder {key} of invoice {invoice_id} is sent or being sent") from exc
            if tx.conflicted(exc):
                raise ConcurrentModification(f"reminder {key} of invoice {invoice_id} raced; retry") from exc
            raise
        return Claim(invoice_id, key, claim_id, lease_until)

    def mark_sent(
        self,
        claim: Claim,
        *,
        message_id: str,
        sent_at: str,
        recipient: str,
        payment_link_id: str | None,
        event: InvoiceEvent,
    ) -> bool:
        """`sent` + the audit event, in one transaction, if the claim is still ours. False means the
        lease ran out and someone else claimed it meanwhile (the lease must outlast any one attempt)."""
        actions: list[Any] = [
            ReminderItem.status.set(SENT),
            ReminderItem.sent_at.set(sent_at),
            ReminderItem.message_id.set(message_id),
            ReminderItem.recipient.set(recipient),
            ReminderItem.lease_until.remove(),
            ReminderItem.last_error.remove(),
            ReminderItem.gsi2pk.remove(),
            ReminderItem.gsi2sk.remove(),
        ]
        if payment_link_id:
            actions.append(ReminderItem.payment_link_id.set(payment_link_id))
        try:
            with self.repo.transaction() as tx:
                tx.update(
                    ReminderItem(invoice_pk(claim.invoice_id), reminder_sk(claim.key)),
                    actions=actions,
                    condition=(ReminderItem.claim_id == claim.claim_id) & (ReminderItem.status == SENDING),
                )
                tx.save(event_to_item(event))
        except TransactWriteError as exc:
            if (invoice_pk(claim.invoice_id), reminder_sk(claim.key)) in tx.failed(exc):
                return False
            raise
        return True

    def record_failure(self, claim: Claim, *, error: str, terminal: bool) -> None:
        """Keep the claim `sending` (retried once the lease ran out), or give up: `failed`."""
        actions: list[Any] = [ReminderItem.last_error.set(error[:200])]
        if terminal:
            actions += [
                ReminderItem.status.set(FAILED),
                ReminderItem.lease_until.remove(),
                ReminderItem.gsi2pk.remove(),
                ReminderItem.gsi2sk.remove(),
            ]
        self._update_own(claim.invoice_id, claim.key, actions, ReminderItem.claim_id == claim.claim_id)

    def cancel(self, invoice_id: str, key: str, now: str, claim_id: str | None = None) -> bool:
        """The invoice no longer takes reminders: drop our claim (or an expired one) from the retry list."""
        condition: Any = ReminderItem.status == SENDING
        condition = condition & ((ReminderItem.claim_id == claim_id) if claim_id else (ReminderItem.lease_until < now))
        return self._update_own(
            invoice_id,
            key,
            [
                ReminderItem.status.set(CANCELLED),
                ReminderItem.lease_until.remove(),
                ReminderItem.gsi2pk.remove(),
                ReminderItem.gsi2sk.remove(),
            ],
            condition,
        )

    def _update_own(self, invoice_id: str, key: str, actions: list[Any], condition: Any) -> bool:
        try:
            ReminderItem(invoice_pk(invoice_id), reminder_sk(key)).update(
                actions=actions, condition=TableItem.pk.exists() & condition
            )
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    def get(self, invoice_id: str, key: str) -> ReminderRecord | None:
        try:
            item = ReminderItem.get(invoice_pk(invoice_id), reminder_sk(key), consistent_read=True)
        except DoesNotExist:
            return None
        return record_from_item(item)

    def list_for_invoice(self, invoice_id: str) -> list[ReminderRecord]:
        items = TableItem.query(invoice_pk(invoice_id), TableItem.sk.startswith(REMINDER_SK), consistent_read=True)
        records = [record_from_item(i) for i in items if isinstance(i, ReminderItem)]
        return sorted(records, key=lambda r: (r.sent_at or r.claimed_at, r.key))
