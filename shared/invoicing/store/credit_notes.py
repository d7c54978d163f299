"""Credit notes, refunds and the customer balance ledger: keys, conditions, transactions.

Items (docs/data-model.md):
- CreditNote          pk INVOICE#{iid}   sk CREDITNOTE#{cnid}  gsi1 CREDITNOTE#{cnid} / CREDITNOTE
                      gsi2 CUSTOMER#{cid}#CREDITNOTES / {created_at}#{cnid}
- Refund              pk INVOICE#{iid}   sk REFUND#{rid}  (what happens to it afterwards: store/refunds.py)
- BalanceTransaction  pk CUSTOMER#{cid}  sk BALTXN#{created_at}#{id}
- the customer's current balance: `balances.{CCY}` on the Customer item
- the credit note counter: pk CUSTOMER#{cid}, sk SEQ#CN#{yyyy} (UnitOfWork.claim_number)

This module reads. The writes (issue, void, the balance, the refunds) are typed writes of the unit
of work (store/writes/credit.py), each conditioned on the values it was computed from.
"""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from invoicing.domain.credit import BalanceTransaction, CreditNote
from invoicing.domain.refunds import Refund
from invoicing.errors import NotFound
from invoicing.store import keys
from invoicing.store.credit_mapping import balance_txn_from_item, credit_note_from_item, refund_from_item
from invoicing.store.cursor import parse_position, position_cursor
from invoicing.store.keys import (
    balance_txn_sk,
    customer_pk,
    invoice_pk,
)
from invoicing.store.models import (
    BalanceTransactionItem,
    CreditNoteItem,
    PaymentItem,
    RefundItem,
    TableItem,
)
from invoicing.store.repository import Repository

CREDIT_NOTE_SK = keys.CREDIT_NOTE_PREFIX
REFUND_SK = keys.REFUND_PREFIX
BALTXN_SK = "BALTXN#"


# ---------------------------------------------------------------- store
class CreditNoteStore:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    # -- reads
    def get(self, credit_note_id: str) -> CreditNote:
        for hit in TableItem.gsi1.query(
            keys.credit_note_gsi1pk(credit_note_id), TableItem.gsi1sk == "CREDITNOTE", limit=1
        ):
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
            item = CreditNoteItem.get(invoice_pk(invoice_id), keys.credit_note_sk(credit_note_id), consistent_read=True)
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
