"""Credit notes, refunds and the customer balance ledger: keys, conditions, transactions.

Items (docs/data-model.md):
- CreditNote          pk INVOICE#{iid}   sk CREDITNOTE#{cnid}  gsi1 CREDITNOTE#{cnid} / CREDITNOTE
                      gsi2 CUSTOMER#{cid}#CREDITNOTES / {created_at}#{cnid}
- Refund              pk INVOICE#{iid}   sk REFUND#{rid}  (what happens to it afterwards: store/refunds.py)
- BalanceTransaction  pk CUSTOMER#{cid}  sk BALTXN#{created_at}#{id}
- the customer's current balance: `balances.{CCY}` on the Customer item
- the credit note counter: pk CUSTOMER#{cid}, sk SEQ#CN#{yyyy} (Repository.add_sequence_claim)

Every write here is one transaction with its audit event, and every amount it moves is conditioned
on the value it was computed from (the invoice's version and credited amount, the customer's balance
in that currency, each payment's refunded amount), so racing writers can never together over-credit
an invoice, spend one balance twice or refund a payment twice. Failures are `CreditNoteRace`: re-read
and decide again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from invoicing.domain.balance import BalanceChange
from invoicing.domain.credit import (
    CREDITABLE_STATUSES,
    BalanceTransaction,
    CreditLine,
    CreditMethod,
    CreditNote,
    CreditNoteStatus,
    CreditReason,
    CreditSplit,
    Refund,
    RefundStatus,
)
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice, InvoiceStatus
from invoicing.errors import ConcurrentModification, NotFound
from invoicing.store.cursor import parse_position, position_cursor
from invoicing.store.keys import (
    balance_txn_sk,
    customer_key,
    customer_pk,
    header_key,
    invoice_pk,
    payment_sk,
    pdf_pending_pk,
)
from invoicing.store.mapping import balance_txn_to_item, equals_or_absent, event_to_item
from invoicing.store.mapping import plain as _plain
from invoicing.store.models import (
    BalanceTransactionItem,
    CreditNoteItem,
    CustomerItem,
    InvoiceItem,
    PaymentItem,
    RefundItem,
    TableItem,
)
from invoicing.store.repository import Repository
from invoicing.store.transaction import Transaction
from invoicing.store.uow import paid_actions

CREDIT_NOTE_SK = "CREDITNOTE#"
REFUND_SK = "REFUND#"
BALTXN_SK = "BALTXN#"


class CreditNoteRace(ConcurrentModification):
    """An item the credit was computed from changed meanwhile: re-read and decide again."""


def credit_note_sk(credit_note_id: str) -> str:
    return f"{CREDIT_NOTE_SK}{credit_note_id}"


def refund_sk(refund_id: str) -> str:
    return f"{REFUND_SK}{refund_id}"


def customer_credit_notes_pk(customer_id: str) -> str:
    return f"CUSTOMER#{customer_id}#CREDITNOTES"


# ---------------------------------------------------------------- conversions
def _line_to_map(line: CreditLine) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": line.description,
        "amount_cents": line.amount_cents,
        "tax_cents": line.tax_cents,
        "total_cents": line.total_cents,
        "tax_inclusive": line.tax_inclusive,
    }
    if line.line_id:
        out["line_id"] = line.line_id
    if line.quantity is not None:
        out["quantity"] = str(line.quantity)
    if line.unit_amount_cents is not None:
        out["unit_amount_cents"] = line.unit_amount_cents
    return out


def _line_from_map(raw: Any) -> CreditLine:
    data = _plain(raw) or {}
    return CreditLine(
        description=str(data.get("description", "")),
        amount_cents=int(data.get("amount_cents", 0)),
        tax_cents=int(data.get("tax_cents", 0)),
        total_cents=int(data.get("total_cents", 0)),
        line_id=data.get("line_id"),
        quantity=Decimal(str(data["quantity"])) if data.get("quantity") is not None else None,
        unit_amount_cents=int(data["unit_amount_cents"]) if data.get("unit_amount_cents") is not None else None,
        tax_inclusive=bool(data.get("tax_inclusive", False)),
    )


def credit_note_to_item(cn: CreditNote) -> CreditNoteItem:
    return CreditNoteItem(
        invoice_pk(cn.invoice_id),
        credit_note_sk(cn.id),
        credit_note_id=cn.id,
        invoice_id=cn.invoice_id,
        customer_id=cn.customer_id,
        number=cn.number,
        invoice_number=cn.invoice_number,
        status=cn.status.value,
        currency=cn.currency,
        reason=cn.reason.value,
        method=cn.method.value,
        memo=cn.memo or None,
        lines=[_line_to_map(ln) for ln in cn.lines],
        subtotal_cents=cn.subtotal_cents,
        tax_cents=cn.tax_cents,
        total_cents=cn.total_cents,
        pre_payment_cents=cn.pre_payment_cents,
        post_payment_cents=cn.post_payment_cents,
        balance_cents=cn.balance_cents,
        refund_cents=cn.refund_cents,
        out_of_band_cents=cn.out_of_band_cents,
        created_at=cn.created_at,
        actor=cn.actor,
        pdf_status=cn.pdf_status,
        # on the sparse pdf_pending index until rendered, so a lost render job is repaired
        pdf_pk=pdf_pending_pk(cn.id) if cn.pdf_status == "pending" else None,
        pdf_sk=f"{cn.created_at}#{cn.id}" if cn.pdf_status == "pending" else None,
        gsi1pk=f"CREDITNOTE#{cn.id}",
        gsi1sk="CREDITNOTE",
        gsi2pk=customer_credit_notes_pk(cn.customer_id),
        gsi2sk=f"{cn.created_at}#{cn.id}",
    )


def credit_note_from_item(item: CreditNoteItem, refunds: tuple[Refund, ...] = ()) -> CreditNote:
    return CreditNote(
        id=item.credit_note_id,
        number=item.number,
        invoice_id=item.invoice_id,
        invoice_number=item.invoice_number,
        customer_id=item.customer_id,
        status=CreditNoteStatus(item.status),
        currency=item.currency,
        reason=CreditReason(item.reason),
        method=CreditMethod(item.method),
        memo=item.memo or "",
        lines=tuple(_line_from_map(raw) for raw in item.lines or []),
        subtotal_cents=int(item.subtotal_cents),
        tax_cents=int(item.tax_cents),
        total_cents=int(item.total_cents),
        pre_payment_cents=int(item.pre_payment_cents),
        post_payment_cents=int(item.post_payment_cents),
        balance_cents=int(item.balance_cents),
        refund_cents=int(item.refund_cents),
        out_of_band_cents=int(item.out_of_band_cents),
        created_at=item.created_at,
        actor=item.actor,
        voided_at=item.voided_at,
        refunds=refunds,
        pdf_status=item.pdf_status,
        pdf_s3_key=item.pdf_s3_key,
    )


def refund_to_item(r: Refund) -> RefundItem:
    return RefundItem(
        invoice_pk(r.invoice_id),
        refund_sk(r.id),
        refund_id=r.id,
        invoice_id=r.invoice_id,
        payment_id=r.payment_id,
        credit_note_id=r.credit_note_id,
        amount_cents=r.amount_cents,
        currency=r.currency,
        provider=r.provider,
        status=r.status.value,
        provider_ref=r.provider_ref,
        payment_reference=r.payment_reference,
        created_at=r.created_at,
        updated_at=r.updated_at,
        failure=r.failure,
        attempts=r.attempts or None,
        provider_created=r.provider_created,
        reference=r.reference,
        paid_at=r.paid_at,
        completed_by=r.completed_by,
    )


def refund_from_item(item: RefundItem) -> Refund:
    return Refund(
        id=item.refund_id,
        invoice_id=item.invoice_id,
        payment_id=item.payment_id,
        credit_note_id=item.credit_note_id,
        amount_cents=int(item.amount_cents),
        currency=item.currency,
        provider=item.provider,
        status=RefundStatus(item.status),
        created_at=item.created_at,
        updated_at=item.updated_at,
        provider_ref=item.provider_ref,
        payment_reference=item.payment_reference,
        failure=item.failure,
        attempts=int(item.attempts or 0),
        provider_created=int(item.provider_created) if item.provider_created is not None else None,
        reference=item.reference,
        paid_at=item.paid_at,
        completed_by=item.completed_by,
    )


def balance_txn_from_item(item: BalanceTransactionItem) -> BalanceTransaction:
    return BalanceTransaction(
        id=item.balance_transaction_id,
        customer_id=item.customer_id,
        currency=item.currency,
        amount_cents=int(item.amount_cents),
        ending_balance_cents=int(item.ending_balance_cents),
        kind=item.kind,
        created_at=item.created_at,
        actor=item.actor,
        credit_note_id=item.credit_note_id,
        invoice_id=item.invoice_id,
    )


@dataclass(frozen=True)
class RefundWrite:
    refund: Refund
    payment_refunded_before: int


def add_balance_change(tx: Transaction, change: BalanceChange) -> None:
    txn = change.txn
    new = change.new_cents
    assert new == txn.ending_balance_cents and new >= 0
    balance = CustomerItem.balances[txn.currency]  # type: ignore[index]
    tx.update(
        CustomerItem(*customer_key(txn.customer_id)),
        actions=[balance.set(new)],
        condition=TableItem.pk.exists() & equals_or_absent(balance, change.old_cents),
    )
    tx.save(balance_txn_to_item(txn), condition=TableItem.pk.does_not_exist())


# ---------------------------------------------------------------- store
class CreditNoteStore:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    # -- reads
    def get(self, credit_note_id: str) -> CreditNote:
        for hit in TableItem.gsi1.query(f"CREDITNOTE#{credit_note_id}", TableItem.gsi1sk == "CREDITNOTE", limit=1):
            try:
                item = CreditNoteItem.get(hit.pk, hit.sk, consistent_read=True)
            except DoesNotExist:
                break
            refunds = tuple(r for r in self.list_refunds(item.invoice_id) if r.credit_note_id == credit_note_id)
            return credit_note_from_item(item, refunds)
        raise NotFound(f"credit note {credit_note_id} not found", code="credit_note_not_found")

    def get_pending_pdf(self, invoice_id: str, credit_note_id: str) -> CreditNote | None:
        """The note by its keys (one GetItem, no index) if its PDF is still pending: the repair job."""
        try:
            item = CreditNoteItem.get(invoice_pk(invoice_id), credit_note_sk(credit_note_id), consistent_read=True)
        except DoesNotExist:
            return None
        return credit_note_from_item(item) if item.pdf_status == "pending" else None

    def list_for_invoice(self, invoice_id: str) -> list[CreditNote]:
        refunds = self.list_refunds(invoice_id)
        items = TableItem.query(invoice_pk(invoice_id), TableItem.sk.startswith(CREDIT_NOTE_SK), consistent_read=True)
        notes = [
            credit_note_from_item(i, tuple(r for r in refunds if r.credit_note_id == i.credit_note_id))
            for i in items
            if isinstance(i, CreditNoteItem)
        ]
        return sorted(notes, key=lambda n: (n.created_at, n.id))

    def list_refunds(self, invoice_id: str) -> list[Refund]:
        items = TableItem.query(invoice_pk(invoice_id), TableItem.sk.startswith(REFUND_SK), consistent_read=True)
        return sorted((refund_from_item(i) for i in items if isinstance(i, RefundItem)), key=lambda r: r.id)

    def payment_refunds(self, invoice_id: str) -> dict[str, tuple[int, int, str | None, str]]:
        """payment id -> (amount, refunded, reference, source) of the applied payments."""
        items = TableItem.query(invoice_pk(invoice_id), TableItem.sk.startswith("PAYMENT#"), consistent_read=True)
        out: dict[str, tuple[int, int, str | None, str]] = {}
        for i in sorted((i for i in items if isinstance(i, PaymentItem)), key=lambda i: (i.recorded_at, i.payment_id)):
            if i.applied is False:
                continue
            out[i.payment_id] = (int(i.amount_cents), int(i.refunded_cents or 0), i.reference, i.source)
        return out

    def balance_transactions_page(
        self, customer_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[BalanceTransaction], str | None]:
        """One page of the ledger, newest first, and the cursor of the next page (None at the end)."""
        pk = customer_pk(customer_id)
        position = parse_position(cursor)  # a position: the item need not exist, nor be this customer's
        last_key = {"pk": {"S": pk}, "sk": {"S": balance_txn_sk(*position)}} if position else None
        items = [
            balance_txn_from_item(i)
            for i in TableItem.query(
                pk,
                TableItem.sk.startswith(BALTXN_SK),
                scan_index_forward=False,
                limit=limit + 1,  # one more than asked tells whether another page exists
                last_evaluated_key=last_key,
                consistent_read=True,
            )
            if isinstance(i, BalanceTransactionItem)
        ]
        if len(items) <= limit:
            return items, None
        items = items[:limit]
        last = items[-1]
        return items, position_cursor(last.created_at, last.id)

    def list_balance_transactions(self, customer_id: str) -> list[BalanceTransaction]:
        """The whole ledger (reconciliation, tests); the API pages with balance_transactions_page."""
        out: list[BalanceTransaction] = []
        cursor: str | None = None
        while True:
            page, cursor = self.balance_transactions_page(customer_id, limit=100, cursor=cursor)
            out += page
            if cursor is None:
                return out

    # -- writes
    def issue(
        self,
        *,
        invoice: Invoice,
        note: CreditNote,
        split: CreditSplit,
        sequence_year: int,
        sequence_next: int,
        event: InvoiceEvent,
        balance: BalanceChange | None,
        refunds: list[RefundWrite],
        paid_at: str | None,
    ) -> None:
        """Credit note + invoice amounts + number + event (+ balance and ledger, + refunds) at once.

        The invoice update is conditioned on its status, its version (payments bump it too) and its
        credited amount, so two credit notes computed from the same invoice can never both land.
        """
        actions: list[Any] = [
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
            actions += paid_actions(paid_at or note.created_at)
        condition = (
            InvoiceItem.status.is_in(*sorted(s.value for s in CREDITABLE_STATUSES))
            & (InvoiceItem.version == invoice.version)
            & equals_or_absent(InvoiceItem.credited_cents, invoice.credited_cents)
        )
        try:
            with self.repo.transaction() as tx:
                tx.update(InvoiceItem(invoice_pk(invoice.id), "INVOICE"), actions=actions, condition=condition)
                self.repo.add_sequence_claim(tx, invoice.customer_id, "CN", sequence_year, sequence_next)
                tx.save(credit_note_to_item(note), condition=TableItem.pk.does_not_exist())
                tx.save(event_to_item(event))
                if balance is not None:
                    add_balance_change(tx, balance)
                for write in refunds:
                    self._add_refund(tx, write)
        except TransactWriteError as exc:
            self._race(tx, exc, invoice.id)

    def _add_refund(self, tx: Transaction, write: RefundWrite) -> None:
        r = write.refund
        tx.update(
            PaymentItem(invoice_pk(r.invoice_id), payment_sk(r.payment_id)),
            actions=[PaymentItem.refunded_cents.set(write.payment_refunded_before + r.amount_cents)],
            condition=TableItem.pk.exists()
            & equals_or_absent(PaymentItem.refunded_cents, write.payment_refunded_before),
        )
        tx.save(refund_to_item(r), condition=TableItem.pk.does_not_exist())

    def void(
        self,
        *,
        invoice: Invoice,
        note: CreditNote,
        event: InvoiceEvent,
        balance: BalanceChange | None,
        at: str,
    ) -> None:
        """Reverse a credit note: its status, the invoice's credited amounts (and the amount due it
        took off), and the balance it added, in one transaction with the event."""
        actions: list[Any] = [
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
        try:
            with self.repo.transaction() as tx:
                tx.update(InvoiceItem(invoice_pk(invoice.id), "INVOICE"), actions=actions, condition=invoice_condition)
                tx.update(
                    CreditNoteItem(invoice_pk(invoice.id), credit_note_sk(note.id)),
                    actions=[CreditNoteItem.status.set(CreditNoteStatus.VOID.value), CreditNoteItem.voided_at.set(at)],
                    condition=CreditNoteItem.status == CreditNoteStatus.ISSUED.value,
                )
                tx.save(event_to_item(event))
                if balance is not None:
                    add_balance_change(tx, balance)
        except TransactWriteError as exc:
            self._race(tx, exc, invoice.id)

    @staticmethod
    def _race(tx: Transaction, exc: TransactWriteError, invoice_id: str) -> None:
        if tx.failed(exc) or tx.conflicted(exc):
            failed = tx.failed(exc)
            what = "the invoice" if header_key(invoice_id) in failed else "a counter, balance or payment"
            raise CreditNoteRace(f"{what} changed meanwhile; retry") from exc
        raise exc

    # -- PDFs
    def mark_pdf_rendered(self, note: CreditNote, key: str, job_id: str, at: str) -> bool:
        from pynamodb.exceptions import UpdateError

        try:
            CreditNoteItem(invoice_pk(note.invoice_id), credit_note_sk(note.id)).update(
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
        except UpdateError as exc:
            if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
                return False
            raise
        return True
