"""The reminder ledger, the due-index reads of the daily run, and the run cursor.

Keys (see docs/data-model.md):
- ledger: pk `INVOICE#{id}`, sk `REMINDER#{kind}`; manual ones `REMINDER#manual#{id}` (many allowed).
  While `sending`, the item is also on gsi2 under `REMINDERSENDING#{shard}` / `{lease_until}#{id}#{key}`
  (sparse: removed once sent, failed or cancelled), so a run finds claims whose lease ran out.
- run cursor: pk `REMINDERRUN`, sk `CURSOR`.
- candidates: the sparse `due` index, `due_pk = DUE#{yyyy-mm-dd}#{shard}` (N shards, merged), `due_sk =
  {instant}#{id}`: open invoices only, each under the instant of its next reminder action.

Exactly once per invoice and kind: a claim is ONE transaction of a condition check on the invoice
(status, and the version the caller rendered from) and a conditional write of the ledger item that
succeeds only if the item does not exist, or is `sending` with an expired lease. After SES accepted
the mail, `reminder_sent` records the message id, conditioned on the claim still being ours. Those
writes are typed writes of the unit of work (store/writes/reminders.py); this module reads.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from pynamodb.exceptions import DoesNotExist, UpdateError

from invoicing import clock
from invoicing.domain.customer import Customer
from invoicing.domain.invoice import Invoice
from invoicing.domain.reminders import SENDING, ReminderRecord
from invoicing.store import keys
from invoicing.store.keys import invoice_pk, reminder_sk
from invoicing.store.mapping import customer_from_item, invoice_from_item
from invoicing.store.models import CustomerItem, InvoiceItem, ReminderItem, ReminderRunItem, TableItem
from invoicing.store.repository import Repository
from invoicing.store.transaction import is_condition_failure as _is_condition_failure

REMINDER_SK = keys.REMINDER_PREFIX
SENDING_SHARDS = keys.REMINDER_SENDING_SHARDS
RUN_CURSOR_KEY = keys.REMINDER_RUN_CURSOR
BATCH_GET_LIMIT = 100


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


@dataclass(frozen=True)
class DueEntry:
    """An invoice's place on the due index as a run read it: the sort key (a move is conditioned on
    it) and the instant its next action day begins."""

    sk: str
    at: datetime


class ReminderStore:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    # -- candidates of a run
    def open_invoices_due(self, day: date, until: str) -> Iterator[tuple[Invoice, DueEntry]]:
        """Open invoices whose next reminder action falls on UTC date `day` at or before `until` (ISO
        instant), with the index entry they were read under (the run's move is conditioned on it):
        one Query per shard of the sparse due index (every page), merged in instant order. Entries
        after `until` are not read. Eventually consistent: an invoice paid a moment ago may still show
        up; `claim` re-checks the status."""
        bound = keys.due_sk(until, "~")  # "~" sorts after every id character
        shards = (
            (
                item
                for item in TableItem.due.query(
                    keys.due_shard_pk(day, shard), range_key_condition=TableItem.due_sk <= bound
                )
                if isinstance(item, InvoiceItem)
            )
            for shard in range(keys.index_shards())
        )
        for item in heapq.merge(*shards, key=lambda item: str(item.due_sk)):
            sk = str(item.due_sk)
            yield invoice_from_item(item), DueEntry(sk=sk, at=keys.due_instant(sk))

    def oldest_open_created_at(self) -> datetime | None:
        """When the oldest open invoice was created: one Query of one item per shard of `STATUS#open`
        (sorted by creation). Where a first reminder run starts reading the due index."""
        oldest: str | None = None
        for shard in range(keys.index_shards()):
            for item in TableItem.gsi2.query(keys.status_shard_pk("open", shard), scan_index_forward=True, limit=1):
                created = str(item.gsi2sk).split("#", 1)[0]
                oldest = created if oldest is None or created < oldest else oldest
                break
        return clock.parse_iso(oldest) if oldest else None

    def get_customers(self, customer_ids: Iterable[str]) -> dict[str, Customer]:
        """BatchGetItem in chunks of 100; unknown ids are left out."""
        ids = sorted(set(customer_ids))
        out: dict[str, Customer] = {}
        for start in range(0, len(ids), BATCH_GET_LIMIT):
            wanted = [keys.customer_key(cid) for cid in ids[start : start + BATCH_GET_LIMIT]]
            for item in CustomerItem.batch_get(wanted):
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

    # -- the ledger (its writes: store/writes/reminders.py)
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
