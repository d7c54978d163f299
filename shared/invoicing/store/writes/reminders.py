"""Typed writes of the reminder ledger: a claim (exactly once per invoice and kind), sent, failed,
cancelled. Keys: pk `INVOICE#{id}`, sk `REMINDER#{key}`; while `sending`, the item is on gsi2 under
`REMINDERSENDING#{shard}` so that a run finds claims whose lease ran out (store/reminders.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from invoicing.domain.invoice import InvoiceStatus
from invoicing.domain.reminders import CANCELLED, FAILED, SENDING, SENT, SentReminder
from invoicing.domain.webhooks import SENT_REMINDER_VERSION
from invoicing.errors import ConcurrentModification, Conflict
from invoicing.store import keys
from invoicing.store.models import InvoiceItem, ReminderItem, TableItem
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import FIRST, THEN, Guard, Skipped, WriteSet


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


@dataclass(frozen=True)
class ClaimRequest:
    invoice_id: str
    key: str
    kind: str
    allowed: frozenset[InvoiceStatus]
    expected_version: int | None
    claim_id: str
    now: str
    lease_until: str
    trigger: str
    actor: str
    step_date: str | None = None
    # the payment link the sender read on the header ("" for none; None: not checked). Issuing or
    # revoking a link does not change the invoice's version, so the claim checks the link itself
    expected_link: str | None = None


_OFF_THE_SENDING_INDEX = (ReminderItem.lease_until.remove, ReminderItem.gsi2pk.remove, ReminderItem.gsi2sk.remove)


class ReminderWrites(WriteSet):
    def reschedule_reminders(self, invoice_id: str, read_sk: str, at: datetime | None) -> None:
        """Move an open invoice's due-index entry, read under `read_sk`, to instant `at` (None: off the
        index, nothing left to do). `Skipped` when the invoice closed meanwhile (it left the index) or
        another run moved it: then there is nothing to move."""
        if at is None:
            actions: list[Any] = [InvoiceItem.due_pk.remove(), InvoiceItem.due_sk.remove()]
        else:
            pk, sk = keys.due_keys(at, invoice_id)
            actions = [InvoiceItem.due_pk.set(pk), InvoiceItem.due_sk.set(sk)]
        header = keys.header_key(invoice_id)
        condition = (InvoiceItem.status == InvoiceStatus.OPEN.value) & (InvoiceItem.due_sk == read_sk)

        def op(tx: Transaction) -> None:
            tx.update(InvoiceItem(*header), actions=actions, condition=condition)

        self._add(op, Guard(header, FIRST, lambda: Skipped(f"invoice {invoice_id} left or moved on the due index")))
        self._changed("reminder_schedule", invoice_id, None)

    def claim_reminder(self, req: ClaimRequest) -> Claim:
        """The right to send reminder `req.key`, with a check that the invoice is in `req.allowed`
        (and at `expected_version`, so the mail shows what is current). The ledger item is written
        only if it does not exist, or is `sending` with an expired lease.
        Errors: InvoiceChanged (re-read and decide again), ReminderTaken (sent, or claimed by
        someone whose lease is still running: leave it to them)."""
        condition: Any = InvoiceItem.status.is_in(*sorted(s.value for s in req.allowed))
        if req.expected_version is not None:
            condition = condition & (InvoiceItem.version == req.expected_version)
        if req.expected_link == "":
            condition = condition & InvoiceItem.links_tracked.exists() & InvoiceItem.link_id.does_not_exist()
        elif req.expected_link is not None:
            condition = condition & (InvoiceItem.link_id == req.expected_link)
        actions: list[Any] = [
            ReminderItem.type.set(ReminderItem),
            ReminderItem.invoice_id.set(req.invoice_id),
            ReminderItem.reminder_key.set(req.key),
            ReminderItem.kind.set(req.kind),
            ReminderItem.status.set(SENDING),
            ReminderItem.trigger.set(req.trigger),
            ReminderItem.actor.set(req.actor),
            ReminderItem.claim_id.set(req.claim_id),
            ReminderItem.attempts.add(1),
            ReminderItem.claimed_at.set(req.now),
            ReminderItem.lease_until.set(req.lease_until),
            ReminderItem.gsi2pk.set(keys.reminder_sending_pk(req.invoice_id, req.key)),
            ReminderItem.gsi2sk.set(keys.reminder_sending_sk(req.lease_until, req.invoice_id, req.key)),
        ]
        if req.step_date:
            actions.append(ReminderItem.step_date.set(req.step_date))
        free = TableItem.pk.does_not_exist() | ((ReminderItem.status == SENDING) & (ReminderItem.lease_until < req.now))
        header = keys.header_key(req.invoice_id)
        key = (keys.invoice_pk(req.invoice_id), keys.reminder_sk(req.key))

        def op(tx: Transaction) -> None:
            tx.condition_check(InvoiceItem, *header, condition=condition)
            tx.update(ReminderItem(*key), actions=actions, condition=free)

        self._add(
            op,
            Guard(header, FIRST, lambda: InvoiceChanged(f"invoice {req.invoice_id} changed since it was read")),
            Guard(
                key,
                THEN,
                lambda: ReminderTaken(f"reminder {req.key} of invoice {req.invoice_id} is sent or being sent"),
            ),
        )
        claim = Claim(req.invoice_id, req.key, req.claim_id, req.lease_until)
        self._changed("reminder", f"{req.invoice_id}#{req.key}", claim)
        return claim

    def reminder_sent(self, claim: Claim, sent: SentReminder) -> None:
        """`sent`, if the claim is still ours; `Skipped` means the lease ran out and someone else
        claimed it meanwhile (the lease must outlast any one attempt). The reminder publishes
        `reminder.sent` with the audit event the caller adds; the invoice is not written."""
        actions: list[Any] = [
            ReminderItem.status.set(SENT),
            ReminderItem.sent_at.set(sent.sent_at),
            ReminderItem.message_id.set(sent.message_id),
            ReminderItem.recipient.set(sent.recipient),
            ReminderItem.last_error.remove(),
            *(remove() for remove in _OFF_THE_SENDING_INDEX),
        ]
        if sent.payment_link_id:
            actions.append(ReminderItem.payment_link_id.set(sent.payment_link_id))
        self._own(
            claim.invoice_id,
            claim.key,
            actions,
            (ReminderItem.claim_id == claim.claim_id) & (ReminderItem.status == SENDING),
            after=sent,
            version=SENT_REMINDER_VERSION,
        )

    def reminder_failed(self, claim: Claim, *, error: str, terminal: bool) -> None:
        """Keep the claim `sending` (retried once the lease ran out), or give up: `failed`."""
        actions: list[Any] = [ReminderItem.last_error.set(error[:200])]
        if terminal:
            actions += [ReminderItem.status.set(FAILED), *(remove() for remove in _OFF_THE_SENDING_INDEX)]
        self._own(claim.invoice_id, claim.key, actions, ReminderItem.claim_id == claim.claim_id)

    def reminder_cancelled(self, invoice_id: str, key: str, now: str, claim_id: str | None = None) -> None:
        """The invoice no longer takes reminders: drop our claim (or an expired one) from the retry list."""
        condition: Any = ReminderItem.status == SENDING
        condition = condition & ((ReminderItem.claim_id == claim_id) if claim_id else (ReminderItem.lease_until < now))
        self._own(
            invoice_id,
            key,
            [ReminderItem.status.set(CANCELLED), *(remove() for remove in _OFF_THE_SENDING_INDEX)],
            condition,
        )

    def _own(
        self,
        invoice_id: str,
        key: str,
        actions: list[Any],
        condition: Any,
        *,
        after: SentReminder | None = None,
        version: int | None = None,
    ) -> None:
        item_key = (keys.invoice_pk(invoice_id), keys.reminder_sk(key))

        def op(tx: Transaction) -> None:
            tx.update(ReminderItem(*item_key), actions=actions, condition=TableItem.pk.exists() & condition)

        self._add(op, Guard(item_key, FIRST, lambda: Skipped(f"reminder {key} of {invoice_id} is not ours")))
        self._changed("reminder", f"{invoice_id}#{key}", after, version)
