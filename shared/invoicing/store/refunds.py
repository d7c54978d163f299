"""Refunds after their credit note: the outcome of each Stripe attempt, Stripe's webhooks, a manual
refund completed by hand. Keys: pk INVOICE#{iid}, sk REFUND#{rid} (the item is put by the credit
note's transaction, store/credit_notes.py).

This module reads. Every change is a typed write of the unit of work (store/writes/credit.py),
conditioned on the refund's status, attempt count and Stripe refund id as they were read, so two
writers that read the same refund can never both apply their decision: the loser gets
`RefundChanged`, re-reads and decides again.
"""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from invoicing.domain.refunds import Refund
from invoicing.store.credit_mapping import refund_from_item
from invoicing.store.keys import invoice_pk, refund_sk
from invoicing.store.models import RefundItem
from invoicing.store.repository import Repository


class RefundStore:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def get(self, invoice_id: str, refund_id: str) -> Refund | None:
        try:
            item = RefundItem.get(invoice_pk(invoice_id), refund_sk(refund_id), consistent_read=True)
        except DoesNotExist:
            return None
        return refund_from_item(item)
