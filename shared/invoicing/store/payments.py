"""Payments, payment links and the pay pages' rate-limit counters: keys, conditions, transactions.

Items (docs/data-model.md):
- Payment             pk INVOICE#{iid}  sk PAYMENT#{pid}
- InvoicePaymentLink  pk INVOICE#{iid}  sk PAYLINK#{link_id}  gsi1 PAYTOKEN#{sha256(token)} / PAYLINK
- RateLimit           pk RATELIMIT#{client}#{window}  sk RATELIMIT  (ttl: deleted by DynamoDB)

This module reads, and counts the pay pages' hits (a counter, not a business record: one conditional
UpdateItem). Payments and links are written by typed writes of the unit of work
(store/writes/payments.py).
"""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, UpdateError

from invoicing.domain.payments import (
    Payment,
    PaymentLink,
)
from invoicing.store import keys
from invoicing.store.keys import invoice_pk, link_sk, payment_sk, token_gsi1pk
from invoicing.store.models import PaymentItem, PaymentLinkItem, RateLimitItem, TableItem
from invoicing.store.payment_mapping import link_from_item, payment_from_item
from invoicing.store.repository import Repository
from invoicing.store.transaction import is_condition_failure as _is_condition_failure


# ---------------------------------------------------------------- store
class PaymentStore:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    # -- payments
    def list_payments(self, invoice_id: str) -> list[Payment]:
        items = TableItem.query(invoice_pk(invoice_id), TableItem.sk.startswith(payment_sk("")), consistent_read=True)
        payments = [payment_from_item(i) for i in items if isinstance(i, PaymentItem)]
        return sorted(payments, key=lambda p: (p.recorded_at, p.id))

    def payments_paid_since(
        self, since: str, *, page_size: int = 100, max_pages: int = 5
    ) -> tuple[list[Payment], bool]:
        """Payments paid at or after ``since`` (ISO time), from the feed's shards (gsi2 `PAYMENTS#{0..3}`):
        at most ``max_pages`` Query pages per shard. The flag says whether every such payment was read."""
        found: list[Payment] = []
        complete = True
        for shard in range(keys.PAYMENT_FEED_SHARDS):
            results = TableItem.gsi2.query(
                keys.payment_feed_shard(shard), TableItem.gsi2sk >= since, page_size=page_size
            )
            pages = results.page_iter
            for n, raw_page in enumerate(pages, start=1):
                for raw in raw_page.get("Items", []):
                    item = TableItem.from_raw_data(raw)
                    if isinstance(item, PaymentItem):
                        found.append(payment_from_item(item))
                if pages.last_evaluated_key is None:
                    break
                if n >= max_pages:
                    complete = False
                    break
        return sorted(found, key=lambda p: (p.paid_at, p.id)), complete

    # -- payment links
    def list_links(self, invoice_id: str) -> list[PaymentLink]:
        items = TableItem.query(invoice_pk(invoice_id), TableItem.sk.startswith(link_sk("")), consistent_read=True)
        return [link_from_item(i) for i in items if isinstance(i, PaymentLinkItem)]

    def find_link(self, token_hash: str) -> PaymentLink | None:
        """By token hash: the index gives the key, then a consistent read gives the current state."""
        for hit in TableItem.gsi1.query(token_gsi1pk(token_hash), TableItem.gsi1sk == "PAYLINK", limit=1):
            try:
                item = PaymentLinkItem.get(hit.pk, hit.sk, consistent_read=True)
            except DoesNotExist:
                return None
            # the index is keyed on the hash; re-check it on the item itself
            return link_from_item(item) if item.token_hash == token_hash else None
        return None

    # -- rate limiting
    def take_rate_limit_slot(self, client_key: str, window: int, limit: int, expires_epoch: int) -> bool:
        """One hit in a fixed window; False once `limit` hits were counted. One conditional UpdateItem."""
        item = RateLimitItem(*keys.rate_limit_key(client_key, window))
        try:
            item.update(
                actions=[
                    RateLimitItem.type.set(RateLimitItem),
                    RateLimitItem.hits.add(1),
                    RateLimitItem.ttl.set(expires_epoch),
                ],
                condition=RateLimitItem.hits.does_not_exist() | (RateLimitItem.hits < limit),
            )
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True
