"""Typed writes of credit: credit notes issued and voided, the refunds they plan (and what happens
to each refund afterwards), the customer's balance and its ledger.

Every amount moved is conditioned on the value it was computed from (the invoice's version and
credited amount, the customer's balance in that currency, each payment's refunded amount), so racing
writers can never together over-credit an invoice, spend one balance twice or refund a payment
twice. A credit note's failed conditions are `CreditNoteRace`, a refund's `RefundChanged`: re-read
and decide again."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pynamodb.expressions.update import Action

from invoicing.domain.balance import BalanceChange
from invoicing.domain.credit import CREDITABLE_STATUSES, CreditNote, CreditNoteStatus, CreditSplit, credit_reversed
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.domain.numbering import NumberClaim
from invoicing.domain.refunds import Refund
from invoicing.domain.webhooks import CREDIT_NOTE_VERSION
from invoicing.errors import ConcurrentModification, StaleBalance
from invoicing.store import keys
from invoicing.store.credit_mapping import credit_note_to_item, refund_to_item
from invoicing.store.mapping import balance_txn_to_item, equals_or_absent
from invoicing.store.models import CreditNoteItem, CustomerItem, InvoiceItem, PaymentItem, RefundItem, TableItem
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import FIRST, THEN, Guard, Skipped
from invoicing.store.writes.invoices import InvoiceWrites, paid_actions

MAX_FAILURE = 500


class CreditNoteRace(ConcurrentModification):
    """An item the credit was computed from changed meanwhile: re-read and decide again."""


class RefundChanged(ConcurrentModification):
    """The refund is no longer as it was read (another attempt, a webhook, a concurrent complete)."""


@dataclass(frozen=True)
class RefundWrite:
    refund: Refund
    payment_refunded_before: int


def _optional(attr: Any, value: Any) -> Any:
    return attr.set(value) if value is not None else attr.remove()


def _was(attr: Any, value: Any) -> Any:
    """`attr = :value`, or absent when it was read as None (0 for counters)."""
    if value is None:
        return attr.does_not_exist()
    return (attr == value) | attr.does_not_exist() if value == 0 else attr == value


def _refund_as_read(read: Refund) -> Any:
    return (
        TableItem.pk.exists()
        & (RefundItem.status == read.status.value)
        & _was(RefundItem.attempts, read.attempts)
        & _was(RefundItem.provider_ref, read.provider_ref)
        & _was(RefundItem.version, read.version)
    )


class CreditWrites(InvoiceWrites):
    def _race(self, key: keys.Key, what: str, rank: int = THEN) -> Guard:
        return Guard(key, rank, lambda: CreditNoteRace(f"{what} changed meanwhile; retry"), on_conflict=True)

    # -- the balance
    def change_balance(self, change: BalanceChange, error: type[Exception] = StaleBalance) -> None:
        """The customer's balance from `old` to `new` (conditioned on `old`) and its ledger entry."""
        txn = change.txn
        new = change.new_cents
        assert new == txn.ending_balance_cents and new >= 0
        key = keys.customer_key(txn.customer_id)

        def op(tx: Transaction) -> None:
            balance = CustomerItem.balances[txn.currency]  # type: ignore[index]
            tx.update(
                CustomerItem(*key),
                # the version too: a customer edit conditioned on the version it read cannot publish a
                # customer.updated carrying a balance that moved meanwhile
                actions=[balance.set(new), CustomerItem.version.add(1)],
                condition=TableItem.pk.exists() & equals_or_absent(balance, change.old_cents),
            )
            tx.save(balance_txn_to_item(txn), condition=TableItem.pk.does_not_exist())

        self._add(op, Guard(key, THEN, lambda: error(f"the balance of {txn.customer_id} moved; retry")))
        self._changed("balance", txn.customer_id, change)

    # -- credit notes
    def issue_credit_note(
        self,
        invoice: Invoice,
        note: CreditNote,
        split: CreditSplit,
        *,
        claim: NumberClaim,
        balance: BalanceChange | None = None,
        refunds: tuple[RefundWrite, ...] = (),
    ) -> None:
        """The credit note, its number, the invoice's amounts (paid when it settles), the balance it
        adds and the refunds it plans. The invoice update is conditioned on its status, its version
        (payments bump it too) and its credited amount, so two credit notes computed from the same
        invoice can never both land."""
        actions: list[Action] = [
            InvoiceItem.credited_cents.add(note.total_cents),
            InvoiceItem.pre_payment_credited_cents.add(split.pre_payment_cents),
            InvoiceItem.post_payment_credited_cents.add(split.post_payment_cents),
            InvoiceItem.version.add(1),
            InvoiceItem.updated_at.set(note.created_at),
        ]
        if split.pre_payment_cents:
            actions.append(InvoiceItem.amount_remaining_cents.add(-split.pre_payment_cents))
        if split.refund_cents:
            actions.append(InvoiceItem.refunded_cents.add(split.refund_cents))
        if split.settles_invoice:
            actions += paid_actions(invoice.id, note.created_at)
        condition = (
            InvoiceItem.status.is_in(*sorted(s.value for s in CREDITABLE_STATUSES))
            & (InvoiceItem.version == invoice.version)
            & equals_or_absent(InvoiceItem.credited_cents, invoice.credited_cents)
        )
        header = keys.header_key(invoice.id)
        note_key = (keys.invoice_pk(invoice.id), keys.credit_note_sk(note.id))

        def op(tx: Transaction) -> None:
            tx.update(InvoiceItem(*header), actions=actions, condition=condition)
            tx.save(credit_note_to_item(note), condition=TableItem.pk.does_not_exist())

        self._add(op, self._race(header, "the invoice", FIRST), self._race(note_key, "the credit note"))
        self.claim_number(claim, error=CreditNoteRace)
        if balance is not None:
            self.change_balance(balance, error=CreditNoteRace)
        for write in refunds:
            self._add_refund(write)
        after = split.applied_to(invoice, note.total_cents, note.created_at)
        self._changed("invoice", invoice.id, after, after.version)
        issued = replace(note, refunds=tuple(w.refund for w in refunds))  # as GET /credit-notes/{id} shows it
        self._changed("credit_note", note.id, issued, CREDIT_NOTE_VERSION[issued.status.value])

    def _add_refund(self, write: RefundWrite) -> None:
        r = write.refund
        payment_key = (keys.invoice_pk(r.invoice_id), keys.payment_sk(r.payment_id))
        refund_key = (keys.invoice_pk(r.invoice_id), keys.refund_sk(r.id))

        def op(tx: Transaction) -> None:
            tx.update(
                PaymentItem(*payment_key),
                actions=[PaymentItem.refunded_cents.set(write.payment_refunded_before + r.amount_cents)],
                condition=TableItem.pk.exists()
                & equals_or_absent(PaymentItem.refunded_cents, write.payment_refunded_before),
            )
            tx.save(refund_to_item(r), condition=TableItem.pk.does_not_exist())

        self._add(op, self._race(payment_key, "a payment"), self._race(refund_key, "a refund"))
        self._changed("refund", r.id, r, r.version)

    def void_credit_note(self, invoice: Invoice, note: CreditNote, *, at: str, balance: BalanceChange | None) -> None:
        """The note void, the invoice's credited amounts (and the amount due it took off) given back,
        and the balance it added taken back."""
        actions: list[Action] = [
            InvoiceItem.credited_cents.add(-note.total_cents),
            InvoiceItem.pre_payment_credited_cents.add(-note.pre_payment_cents),
            InvoiceItem.post_payment_credited_cents.add(-note.post_payment_cents),
            InvoiceItem.version.add(1),
            InvoiceItem.updated_at.set(at),
        ]
        if note.pre_payment_cents:
            actions.append(InvoiceItem.amount_remaining_cents.add(note.pre_payment_cents))
        invoice_condition = (InvoiceItem.version == invoice.version) & (
            InvoiceItem.credited_cents == invoice.credited_cents
        )
        if note.pre_payment_cents:
            invoice_condition = invoice_condition & InvoiceItem.status.is_in(
                InvoiceStatus.OPEN.value, InvoiceStatus.UNCOLLECTIBLE.value
            )
        header = keys.header_key(invoice.id)
        note_key = (keys.invoice_pk(invoice.id), keys.credit_note_sk(note.id))

        def op(tx: Transaction) -> None:
            tx.update(InvoiceItem(*header), actions=actions, condition=invoice_condition)
            tx.update(
                CreditNoteItem(*note_key),
                actions=[CreditNoteItem.status.set(CreditNoteStatus.VOID.value), CreditNoteItem.voided_at.set(at)],
                condition=CreditNoteItem.status == CreditNoteStatus.ISSUED.value,
            )

        self._add(op, self._race(header, "the invoice", FIRST), self._race(note_key, "the credit note"))
        if balance is not None:
            self.change_balance(balance, error=CreditNoteRace)
        after = credit_reversed(invoice, note, at)
        self._changed("invoice", invoice.id, after, after.version)
        voided = replace(note, status=CreditNoteStatus.VOID, voided_at=at)
        self._changed("credit_note", note.id, voided, CREDIT_NOTE_VERSION[voided.status.value])

    def credit_note_pdf_rendered(self, note: CreditNote, *, key: str, job_id: str, at: str) -> None:
        """The rendered PDF of a credit note; `Skipped` when this job was recorded already."""
        note_key = (keys.invoice_pk(note.invoice_id), keys.credit_note_sk(note.id))

        def op(tx: Transaction) -> None:
            tx.update(
                CreditNoteItem(*note_key),
                actions=[
                    CreditNoteItem.pdf_status.set("rendered"),
                    CreditNoteItem.pdf_s3_key.set(key),
                    CreditNoteItem.pdf_job_id.set(job_id),
                    CreditNoteItem.pdf_rendered_at.set(at),
                    CreditNoteItem.pdf_pk.remove(),
                    CreditNoteItem.pdf_sk.remove(),
                ],
                condition=TableItem.pk.exists()
                & (CreditNoteItem.pdf_job_id.does_not_exist() | (CreditNoteItem.pdf_job_id != job_id)),
            )

        self._add(op, Guard(note_key, FIRST, lambda: Skipped(f"render {job_id} of {note.id} is recorded")))
        self._changed("credit_note", note.id, replace(note, pdf_status="rendered", pdf_s3_key=key))

    # -- refunds after their credit note
    def claim_refund_attempt(self, read: Refund, attempt: int, at: str) -> None:
        """Take attempt number `attempt` before calling Stripe: of two retries that read the same
        refund only one gets it, so only one refund call is made per attempt (and its idempotency
        key). The refund stays `failed` meanwhile, with the claim's time: no other retry starts until
        the outcome is recorded or the claim's lease ran out (domain.refunds.ensure_retryable), and
        then the next retry first looks for what this attempt may have created."""
        after = replace(read, attempts=attempt, updated_at=at, claimed_at=at)
        actions: list[Action] = [
            RefundItem.attempts.set(attempt),
            RefundItem.updated_at.set(at),
            RefundItem.claimed_at.set(at),
        ]
        self._refund(read, after, actions)

    def change_refund(self, read: Refund, changed: Refund) -> None:
        """Write `changed` over the refund as it was `read`."""
        actions: list[Action] = [
            RefundItem.status.set(changed.status.value),
            RefundItem.updated_at.set(changed.updated_at),
            _optional(RefundItem.provider_ref, changed.provider_ref),
            _optional(RefundItem.provider_created, changed.provider_created),
            _optional(RefundItem.failure, changed.failure[:MAX_FAILURE] if changed.failure else None),
        ]
        if changed.attempts != read.attempts:
            actions.append(RefundItem.attempts.set(changed.attempts))
        if read.claimed_at is not None:  # an outcome recorded: the attempt's claim is over
            actions.append(RefundItem.claimed_at.remove())
            changed = replace(changed, claimed_at=None)
        for name in ("reference", "paid_at", "completed_by"):
            value = getattr(changed, name)
            if value != getattr(read, name):
                actions.append(_optional(getattr(RefundItem, name), value))
        self._refund(read, changed, actions)

    def _refund(self, read: Refund, after: Refund, actions: list[Action]) -> None:
        """Conditioned on the refund's status, attempt count, Stripe refund id and version as they were
        read; the version goes up by one, so `after` is exactly what is stored (its public events'
        sequence comes from it)."""
        key = (keys.invoice_pk(read.invoice_id), keys.refund_sk(read.id))
        after = replace(after, version=read.version + 1)
        actions = [*actions, RefundItem.version.set(after.version)]

        def op(tx: Transaction) -> None:
            tx.update(RefundItem(*key), actions=actions, condition=_refund_as_read(read))

        self._add(op, Guard(key, FIRST, lambda: RefundChanged(f"refund {read.id} changed meanwhile"), on_conflict=True))
        self._changed("refund", read.id, after, after.version)
