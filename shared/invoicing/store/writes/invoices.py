"""Typed writes of invoices: drafts (create, edit, lines, delete), the number, finalize, the status
transitions and the PDF markers on the header."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from invoicing.domain.invoice import Invoice, InvoiceLine, InvoiceStatus, sources_of
from invoicing.domain.numbering import NumberClaim
from invoicing.errors import Conflict, NumberTaken, StaleInvoice
from invoicing.store import keys
from invoicing.store.mapping import (
    custom_fields_to_list,
    invoice_to_item,
    line_to_item,
    set_value,
    snapshot_to_map,
    tax_to_map,
)
from invoicing.store.models import BillingRunItem, InvoiceItem, LineItem, SequenceItem, TableItem
from invoicing.store.pdfs import InvoiceNotOpenForPdf
from invoicing.store.transaction import Transaction
from invoicing.store.writes.base import FIRST, NUMBER, THEN, Guard, Skipped, WriteSet

_TIMESTAMP = {InvoiceStatus.VOID: "voided_at", InvoiceStatus.UNCOLLECTIBLE: "marked_uncollectible_at"}


class InvoiceReads(Protocol):
    """What the invoice writes read to explain a failed condition."""

    def transaction(self) -> Transaction: ...

    def draft_conflict(self, invoice_id: str) -> Exception: ...

    def get_invoice_header(self, invoice_id: str) -> Invoice: ...

    def purge_invoice_items(self, invoice_id: str) -> None: ...


class BillingRunExists(Conflict):
    code = "billing_run_exists"

    def __init__(self, key: str) -> None:
        super().__init__("an invoice for this billing run already exists")
        self.key = key


def paid_actions(invoice_id: str, paid_at: str) -> list[Action]:
    """An invoice becoming paid: the status, its index row, and off the (sparse, open-only) due index."""
    return [
        InvoiceItem.status.set(InvoiceStatus.PAID.value),
        InvoiceItem.paid_at.set(paid_at),
        InvoiceItem.gsi2pk.set(keys.status_pk(InvoiceStatus.PAID.value, invoice_id)),
        InvoiceItem.due_pk.remove(),
        InvoiceItem.due_sk.remove(),
    ]


def still_draft(invoice: Invoice) -> Condition:
    return (InvoiceItem.status == InvoiceStatus.DRAFT.value) & (InvoiceItem.version == invoice.version)


class InvoiceWrites(WriteSet):
    _repo: InvoiceReads

    def _invoice(self, after: Invoice) -> None:
        self._changed("invoice", after.id, after, after.version)

    def _draft_guard(self, invoice_id: str, *, on_conflict: bool = True) -> Guard:
        return Guard(
            keys.header_key(invoice_id), FIRST, lambda: self._repo.draft_conflict(invoice_id), on_conflict=on_conflict
        )

    # -- the number
    def claim_number(self, claim: NumberClaim, error: type[Exception] | None = None) -> None:
        """The counter must still hold `claim.next_value` (or not exist yet for number 1). `error`:
        what a taken number means to the caller (NumberTaken by default)."""
        pk, sk = keys.sequence_key(claim.customer_id, claim.kind, claim.year)

        def op(tx: Transaction) -> None:
            if claim.next_value == 1:
                tx.save(
                    SequenceItem(pk, sk, customer_id=claim.customer_id, next_value=2),
                    condition=TableItem.pk.does_not_exist(),
                )
            else:
                tx.update(
                    SequenceItem(pk, sk),
                    actions=[SequenceItem.next_value.set(claim.next_value + 1)],
                    condition=SequenceItem.next_value == claim.next_value,
                )

        if error is None:
            self._add(op, Guard((pk, sk), NUMBER, lambda: NumberTaken(claim.customer_id)))
        else:
            self._add(op, Guard((pk, sk), THEN, lambda: error(f"the {claim.kind} counter moved; retry")))

    # -- drafts
    def create_draft(self, invoice: Invoice, billing_run_pk: str | None = None) -> None:
        """Header and lines of a new draft (+ the billing run's uniqueness item, whose existing means
        another create took that billing period first: `BillingRunExists`)."""
        self.add_draft(invoice)
        if billing_run_pk:
            run_key = (billing_run_pk, keys.BILLING_RUN_SK)

            def op(tx: Transaction) -> None:
                tx.save(
                    BillingRunItem(*run_key, invoice_id=invoice.id),
                    condition=TableItem.pk.does_not_exist(),
                )

            self._add(op, Guard(run_key, FIRST, lambda: BillingRunExists(billing_run_pk)))

    def add_draft(self, draft: Invoice) -> None:
        """A new draft with its lines (created, or a reissued copy); its id is new, so the header must
        not exist."""

        def op(tx: Transaction) -> None:
            tx.save(invoice_to_item(draft), condition=TableItem.pk.does_not_exist())
            for line in draft.lines:
                tx.save(line_to_item(draft.id, line))

        self._add(op)
        self._invoice(draft)

    def _draft_header(self, before: Invoice, after: Invoice, actions: list[Action]) -> None:
        key = keys.header_key(before.id)
        actions = [InvoiceItem.version.set(before.version + 1), InvoiceItem.updated_at.set(after.updated_at), *actions]

        def op(tx: Transaction) -> None:
            tx.update(InvoiceItem(*key), actions=actions, condition=still_draft(before))

        self._add(op, self._draft_guard(before.id))
        self._invoice(replace(after, version=before.version + 1))

    def update_draft(self, before: Invoice, after: Invoice) -> None:
        """The draft's own fields, conditioned on it still being the same draft."""
        self._draft_header(
            before,
            after,
            [
                InvoiceItem.currency.set(after.currency),
                InvoiceItem.memo.set(after.memo) if after.memo else InvoiceItem.memo.remove(),
                InvoiceItem.days_until_due.set(after.days_until_due),
                InvoiceItem.due_date.set(after.due_date.isoformat())
                if after.due_date
                else InvoiceItem.due_date.remove(),
                set_value(InvoiceItem.metadata, dict(after.metadata))
                if after.metadata
                else InvoiceItem.metadata.remove(),
                InvoiceItem.purchase_order.set(after.purchase_order)
                if after.purchase_order
                else InvoiceItem.purchase_order.remove(),
                InvoiceItem.custom_fields.set(custom_fields_to_list(after.custom_fields) or [])
                if after.custom_fields
                else InvoiceItem.custom_fields.remove(),
                InvoiceItem.subtotal_cents.set(after.subtotal_cents),
                InvoiceItem.tax_cents.set(after.tax_cents),
                InvoiceItem.total_cents.set(after.total_cents),
            ],
        )

    def write_line(
        self, before: Invoice, after: Invoice, *, line: InvoiceLine | None = None, removed_line_id: str | None = None
    ) -> None:
        """Add, replace or delete one line, with the header's totals and line count."""
        self._draft_header(
            before,
            after,
            [
                InvoiceItem.subtotal_cents.set(after.subtotal_cents),
                InvoiceItem.tax_cents.set(after.tax_cents),
                InvoiceItem.total_cents.set(after.total_cents),
                InvoiceItem.line_count.set(len(after.lines)),
            ],
        )

        def put_or_delete_line(tx: Transaction) -> None:
            if line is not None:
                tx.save(line_to_item(before.id, line))
            if removed_line_id is not None:
                tx.delete(
                    LineItem(keys.invoice_pk(before.id), keys.line_sk(removed_line_id)),
                    condition=TableItem.pk.exists(),
                )

        guards = []
        if removed_line_id is not None:  # deleted meanwhile: the draft changed
            removed = (keys.invoice_pk(before.id), keys.line_sk(removed_line_id))
            guards.append(Guard(removed, THEN, lambda: self._repo.draft_conflict(before.id)))
        self._add(put_or_delete_line, *guards)

    def delete_draft(self, invoice: Invoice, billing_run_pk: str | None = None) -> None:
        """The header, conditioned on `status = draft` and the version (an issued invoice is never
        deleted), and the billing run's item; its lines and events are purged after the commit."""

        def delete_header(tx: Transaction) -> None:
            tx.delete(InvoiceItem(*keys.header_key(invoice.id)), condition=still_draft(invoice))
            if billing_run_pk:
                tx.delete(BillingRunItem(billing_run_pk, keys.BILLING_RUN_SK))

        self._add(delete_header, self._draft_guard(invoice.id))
        self._after_commit.append(lambda: self._repo.purge_invoice_items(invoice.id))
        self._changed("invoice", invoice.id, None, invoice.version + 1, before=invoice)

    # -- finalize and the transitions
    def finalize(self, draft: Invoice, finalized: Invoice, remind_at: datetime | None = None) -> None:
        """draft -> open (or paid when nothing is due): the number, the frozen totals, per-line tax,
        the customer snapshot, the USD value, the due and pending-PDF indexes. Conditioned on the
        invoice still being the same draft (`status = draft AND version = :v`)."""
        assert finalized.due_date is not None and finalized.customer is not None
        assert finalized.invoice_number is not None and finalized.finalized_at is not None
        line_taxes = {line_id: tax_to_map(t) for line_id, t in finalized.line_taxes.items()}
        actions: list[Action] = [
            InvoiceItem.version.set(draft.version + 1),
            InvoiceItem.invoice_number.set(finalized.invoice_number),
            InvoiceItem.finalized_at.set(finalized.finalized_at),
            InvoiceItem.updated_at.set(finalized.updated_at),
            InvoiceItem.due_date.set(finalized.due_date.isoformat()),
            InvoiceItem.subtotal_cents.set(finalized.subtotal_cents),
            InvoiceItem.tax_cents.set(finalized.tax_cents),
            InvoiceItem.total_cents.set(finalized.total_cents),
            InvoiceItem.amount_paid_cents.set(finalized.amount_paid_cents),
            InvoiceItem.amount_remaining_cents.set(finalized.amount_remaining_cents),
            InvoiceItem.currency.set(finalized.currency),
            set_value(InvoiceItem.customer_snapshot, snapshot_to_map(finalized.customer)),
            set_value(InvoiceItem.line_taxes, line_taxes) if line_taxes else InvoiceItem.line_taxes.remove(),
            InvoiceItem.pdf_status.set(finalized.pdf_status or "pending"),
            InvoiceItem.pdf_requested_at.set(finalized.finalized_at),
            InvoiceItem.pdf_pk.set(keys.pdf_pending_pk(draft.id)),
            InvoiceItem.pdf_sk.set(f"{finalized.finalized_at}#{draft.id}"),
            InvoiceItem.links_tracked.set(True),
        ]
        if finalized.active_link_id is not None and finalized.active_link_expires_at is not None:
            actions += [
                InvoiceItem.link_id.set(finalized.active_link_id),
                InvoiceItem.link_expires_at.set(finalized.active_link_expires_at),
            ]
        if finalized.status is InvoiceStatus.PAID:
            actions += paid_actions(draft.id, finalized.paid_at or finalized.finalized_at)
        else:  # the due index is sparse: open invoices only
            actions += [
                InvoiceItem.status.set(InvoiceStatus.OPEN.value),
                InvoiceItem.gsi2pk.set(keys.status_pk(InvoiceStatus.OPEN.value, draft.id)),
            ]
            if remind_at is not None:  # the first reminder action (domain.reminders.next_action_at)
                due_pk, due_sk = keys.due_keys(remind_at, draft.id)
                actions += [InvoiceItem.due_pk.set(due_pk), InvoiceItem.due_sk.set(due_sk)]
        if finalized.applied_balance_cents or finalized.starting_balance_cents:
            actions += [
                InvoiceItem.starting_balance_cents.set(finalized.starting_balance_cents),
                InvoiceItem.applied_balance_cents.set(finalized.applied_balance_cents),
            ]
        if finalized.usd_total_cents is not None:
            actions += [
                InvoiceItem.usd_total_cents.set(finalized.usd_total_cents),
                InvoiceItem.fx_rate.set(str(finalized.fx_rate)),
                InvoiceItem.fx_rate_source.set(finalized.fx_rate_source or ""),
                InvoiceItem.fx_rate_as_of.set(finalized.fx_rate_as_of or ""),
            ]
        key = keys.header_key(draft.id)

        def op(tx: Transaction) -> None:
            tx.update(InvoiceItem(*key), actions=actions, condition=still_draft(draft))

        self._add(op, self._draft_guard(draft.id, on_conflict=False))
        self._invoice(replace(finalized, version=draft.version + 1))

    def transition(self, before: Invoice, after: Invoice) -> None:
        """An issued invoice to `after.status` (void, uncollectible); the condition re-checks the
        source status (every status `after.status` may be reached from) and the version."""
        target = after.status
        at = after.updated_at
        actions: list[Action] = [
            InvoiceItem.status.set(target.value),
            InvoiceItem.version.set(before.version + 1),
            InvoiceItem.updated_at.set(at),
            getattr(InvoiceItem, _TIMESTAMP[target]).set(at),
            InvoiceItem.gsi2pk.set(keys.status_pk(target.value, before.id)),
        ]
        if target is not InvoiceStatus.OPEN:
            actions += [InvoiceItem.due_pk.remove(), InvoiceItem.due_sk.remove()]
        if after.reissued_as:
            actions.append(InvoiceItem.reissued_as.set(after.reissued_as))
        condition = InvoiceItem.status.is_in(*sorted(s.value for s in sources_of(target))) & (
            InvoiceItem.version == before.version
        )
        key = keys.header_key(before.id)

        def op(tx: Transaction) -> None:
            tx.update(InvoiceItem(*key), actions=actions, condition=condition)

        self._add(op, Guard(key, FIRST, lambda: StaleInvoice(f"invoice {before.id} changed meanwhile; retry")))
        self._invoice(replace(after, version=before.version + 1))

    # -- the PDF markers
    def request_pdf(self, invoice: Invoice, at: str) -> None:
        """A (re-)render requested: `pending` unless a PDF already exists (the old one stays
        downloadable until the new one replaces it), and the invoice on the pending index. Issued
        invoices only: a draft is `InvoiceNotOpenForPdf` (404), a deleted one `invoice_not_found`."""
        key = keys.header_key(invoice.id)
        actions: list[Action] = [
            InvoiceItem.pdf_requested_at.set(at),
            InvoiceItem.pdf_status.set(InvoiceItem.pdf_status | "pending"),
            InvoiceItem.pdf_pk.set(keys.pdf_pending_pk(invoice.id)),
            InvoiceItem.pdf_sk.set(f"{at}#{invoice.id}"),
        ]

        def op(tx: Transaction) -> None:
            tx.update(
                InvoiceItem(*key),
                actions=actions,
                condition=TableItem.pk.exists() & (InvoiceItem.status != InvoiceStatus.DRAFT.value),
            )

        def not_open() -> Exception:
            self._repo.get_invoice_header(invoice.id)  # NotFound when it was deleted meanwhile
            return InvoiceNotOpenForPdf(invoice.id)

        self._add(op, Guard(key, FIRST, not_open))
        self._invoice(replace(invoice, pdf_requested_at=at, pdf_status=invoice.pdf_status or "pending"))

    def pdf_rendered(self, invoice: Invoice, *, key: str, job_id: str, requested_at: str, at: str) -> None:
        """The rendered PDF of `invoice` (the header as read just before). `Skipped` when this job was
        recorded already (a redelivery): the condition on the job id makes the write happen once. The
        pending marker is cleared only if no newer render was requested meanwhile.

        It bumps the version, conditioned on the version read, like every change that publishes an
        event: `invoice.pdf_rendered` then carries the invoice exactly as stored and a sequence no
        other event of the invoice has (`StaleInvoice` when it moved: re-read and write again)."""
        actions: list[Action] = [
            InvoiceItem.version.set(invoice.version + 1),
            InvoiceItem.pdf_status.set("rendered"),
            InvoiceItem.pdf_s3_key.set(key),
            InvoiceItem.pdf_job_id.set(job_id),
            InvoiceItem.pdf_rendered_at.set(at),
        ]
        if invoice.pdf_requested_at is None or invoice.pdf_requested_at <= requested_at:
            actions += [InvoiceItem.pdf_pk.remove(), InvoiceItem.pdf_sk.remove()]
        condition = (
            TableItem.pk.exists()
            & (InvoiceItem.status != InvoiceStatus.DRAFT.value)
            & (InvoiceItem.pdf_job_id.does_not_exist() | (InvoiceItem.pdf_job_id != job_id))
            & (InvoiceItem.version == invoice.version)
        )
        header = keys.header_key(invoice.id)

        def op(tx: Transaction) -> None:
            tx.update(InvoiceItem(*header), actions=actions, condition=condition)

        def not_written() -> Exception:
            # the job's id recorded at the version read: a redelivery; a version that moved: re-read
            current = self._repo.get_invoice_header(invoice.id)
            if current.version != invoice.version:
                return StaleInvoice(f"invoice {invoice.id} changed meanwhile; retry")
            return Skipped(f"render {job_id} of {invoice.id} is recorded")

        self._add(op, Guard(header, FIRST, not_written))
        self._invoice(
            replace(invoice, pdf_status="rendered", pdf_s3_key=key, pdf_rendered_at=at, version=invoice.version + 1)
        )
