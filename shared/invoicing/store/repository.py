"""The invoice repository: customers, invoices and their lines, events, PDFs and API keys.

It returns domain objects, never raw items, and turns DynamoDB condition failures into domain
errors. Keys come from store/keys.py, items from store/mapping.py; a write that spans items goes
through the unit of work (store/uow.py) or one `Transaction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import (
    DeleteError,
    DoesNotExist,
    PutError,
    TransactWriteError,
    UpdateError,
)

from invoicing.domain.customer import Customer
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice, InvoiceLine, InvoiceStatus
from invoicing.errors import (
    Conflict,
    InvoiceNotDraft,
    NotFound,
    NumberTaken,
    SequenceConflict,
    StaleInvoice,
    ValidationFailed,
)
from invoicing.store import keys
from invoicing.store.api_keys import ApiKey, ApiKeyRecords
from invoicing.store.cursor import parse_position, position_cursor
from invoicing.store.mapping import (
    customer_from_item,
    customer_to_item,
    event_from_item,
    event_to_item,
    invoice_from_item,
    invoice_to_item,
    line_from_item,
    line_to_item,
    set_value,
)
from invoicing.store.models import (
    BillingRunItem,
    CustomerItem,
    EventItem,
    InvoiceItem,
    LineItem,
    SequenceItem,
    TableItem,
    bind,
)
from invoicing.store.pdfs import InvoiceNotOpenForPdf, PdfRecords, PendingPdf
from invoicing.store.transaction import Transaction, is_condition_failure
from invoicing.store.uow import UnitOfWork
from invoicing.store.webhooks import invoice_outbox, outbox_to_item

TRANSACTION_LIMIT = 100


@dataclass(frozen=True)
class Page:
    items: list[Invoice]
    next_cursor: str | None


# ---------------------------------------------------------------- repository
class Repository(PdfRecords, ApiKeyRecords):
    """Customers, invoices, lines and events here; PDFs (store/pdfs.py) and API keys (store/api_keys.py)
    are the same table's other records, mixed in so callers keep one `svc.repo`."""

    def __init__(self, table_name: str, region: str) -> None:
        bind(table_name, region)
        self.table_name = table_name
        self.region = region
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = Connection(region=self.region)
        return self._connection

    def transaction(self) -> Transaction:
        return Transaction(connection=self.connection)

    def uow(self) -> UnitOfWork:
        """A unit of work over this table: `with repo.uow() as tx: tx.finalize(...); ...`."""
        return UnitOfWork(self)

    # -- customers
    def put_customer(self, customer: Customer) -> None:
        try:
            customer_to_item(customer).save(condition=TableItem.pk.does_not_exist())
        except PutError as exc:
            raise Conflict(f"customer {customer.id} already exists") from exc

    def get_customer(self, customer_id: str) -> Customer:
        try:
            item = CustomerItem.get(*keys.customer_key(customer_id), consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"customer {customer_id} not found", code="customer_not_found") from None
        return customer_from_item(item)

    def update_customer(self, customer_id: str, changes: dict[str, Any], updated_at: str) -> Customer:
        item = CustomerItem(*keys.customer_key(customer_id))
        actions = [set_value(getattr(CustomerItem, k), v) for k, v in changes.items()]
        actions.append(CustomerItem.updated_at.set(updated_at))
        try:
            item.update(actions=actions, condition=TableItem.pk.exists())
        except UpdateError as exc:
            if is_condition_failure(exc):
                raise NotFound(f"customer {customer_id} not found", code="customer_not_found") from exc
            raise
        return self.get_customer(customer_id)

    # -- invoices: reads
    def get_invoice(self, invoice_id: str, *, consistent: bool = True) -> Invoice:
        header: InvoiceItem | None = None
        lines: list[InvoiceLine] = []
        for item in TableItem.query(
            keys.invoice_pk(invoice_id),
            TableItem.sk.between(keys.INVOICE_SK, keys.LINES_END),
            consistent_read=consistent,
        ):
            if isinstance(item, InvoiceItem):
                header = item
            elif isinstance(item, LineItem):
                lines.append(line_from_item(item))
        if header is None:
            raise NotFound(f"invoice {invoice_id} not found", code="invoice_not_found")
        return invoice_from_item(header, lines)

    def get_invoice_header(self, invoice_id: str) -> Invoice:
        try:
            item = InvoiceItem.get(*keys.header_key(invoice_id), consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"invoice {invoice_id} not found", code="invoice_not_found") from None
        return invoice_from_item(item)

    def list_invoices(self, *, customer_id: str | None, status: str | None, limit: int, cursor: str | None) -> Page:
        position = parse_position(cursor)
        if customer_id:
            last_key = self._invoice_index_key(*position, customer_id=customer_id) if position else None
            results = TableItem.gsi1.query(
                keys.customer_pk(customer_id),
                TableItem.gsi1sk.startswith(keys.CUSTOMER_INVOICE_PREFIX),
                filter_condition=(InvoiceItem.status == status) if status else None,
                scan_index_forward=False,
                limit=limit + 1,
                last_evaluated_key=last_key,
            )
        elif status:
            last_key = self._invoice_index_key(*position, status=status) if position else None
            results = TableItem.gsi2.query(
                keys.status_pk(status),
                scan_index_forward=False,
                limit=limit + 1,
                last_evaluated_key=last_key,
            )
        else:
            raise ValidationFailed("filter by customer_id or status", details={"field": "customer_id"})
        # PynamoDB's `limit` keeps reading pages of the partition until that many items matched the
        # filter; one more than asked tells whether another page exists.
        items = [invoice_from_item(item) for item in results if isinstance(item, InvoiceItem)]
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            next_cursor = position_cursor(items[-1].created_at, items[-1].id)
        return Page(items=items, next_cursor=next_cursor)

    @staticmethod
    def _invoice_index_key(
        created_at: str, invoice_id: str, *, customer_id: str | None = None, status: str | None = None
    ) -> dict[str, Any]:
        """The ExclusiveStartKey of a position in the customer's (gsi1) or the status' (gsi2) listing: a
        position, the item need not exist (DynamoDB starts after the key wherever it would sort)."""
        key = {"pk": {"S": keys.invoice_pk(invoice_id)}, "sk": {"S": keys.INVOICE_SK}}
        if customer_id:
            key["gsi1pk"] = {"S": keys.customer_pk(customer_id)}
            key["gsi1sk"] = {"S": keys.customer_invoice_sk(created_at, invoice_id)}
        else:
            key["gsi2pk"] = {"S": keys.status_pk(str(status))}
            key["gsi2sk"] = {"S": f"{created_at}#{invoice_id}"}
        return key

    def list_events(self, invoice_id: str) -> list[InvoiceEvent]:
        return [
            event_from_item(item)
            for item in TableItem.query(keys.invoice_pk(invoice_id), TableItem.sk.startswith(keys.EVENT_PREFIX))
            if isinstance(item, EventItem)
        ]

    def get_billing_run_invoice_id(self, pk: str) -> str | None:
        try:
            return BillingRunItem.get(pk, keys.BILLING_RUN_SK, consistent_read=True).invoice_id
        except DoesNotExist:
            return None

    # -- invoices: draft writes
    def create_invoice(self, invoice: Invoice, event: InvoiceEvent, billing_run_pk: str | None) -> None:
        """Header + lines + `created` event (+ the billing-run uniqueness item) in one transaction.

        Raises `BillingRunExists` when another create took the same billing-run key first.
        """
        lines = list(invoice.lines)
        if len(lines) + 4 > TRANSACTION_LIMIT:  # + header, event, outbox record, billing-run key
            raise ValidationFailed(
                f"create with at most {TRANSACTION_LIMIT - 4} lines, then add more with POST /lines",
                details={"field": "lines"},
            )
        try:
            with self.transaction() as tx:
                tx.save(invoice_to_item(invoice), condition=TableItem.pk.does_not_exist())
                for line in lines:
                    tx.save(line_to_item(invoice.id, line))
                tx.save(event_to_item(event))
                for public in invoice_outbox((event,), invoice):  # until this write is on the unit of work
                    tx.save(outbox_to_item(public), condition=TableItem.pk.does_not_exist())
                if billing_run_pk:
                    tx.save(
                        BillingRunItem(billing_run_pk, keys.BILLING_RUN_SK, invoice_id=invoice.id),
                        condition=TableItem.pk.does_not_exist(),
                    )
        except TransactWriteError as exc:
            if billing_run_pk and (billing_run_pk, keys.BILLING_RUN_SK) in tx.failed(exc):
                raise BillingRunExists(billing_run_pk) from exc
            raise

    def _draft_header_update(self, tx: Transaction, invoice: Invoice, actions: list, updated_at: str) -> None:
        item = InvoiceItem(*keys.header_key(invoice.id))
        tx.update(
            item,
            actions=[InvoiceItem.version.set(invoice.version + 1), InvoiceItem.updated_at.set(updated_at), *actions],
            condition=(InvoiceItem.status == InvoiceStatus.DRAFT.value) & (InvoiceItem.version == invoice.version),
        )

    def _raise_draft_conflict(self, tx: Transaction, exc: TransactWriteError, invoice_id: str) -> None:
        if keys.header_key(invoice_id) in tx.failed(exc) or tx.conflicted(exc):
            raise self.draft_conflict(invoice_id) from exc
        raise exc

    def draft_conflict(self, invoice_id: str) -> Exception:
        """Why a write conditioned on "still this draft" failed: no longer a draft, or edited meanwhile.
        Raises NotFound if it was deleted meanwhile."""
        current = self.get_invoice_header(invoice_id)
        if not current.is_draft:
            return InvoiceNotDraft(f"invoice {invoice_id} is {current.status.value}; only drafts can be changed")
        return StaleInvoice(f"invoice {invoice_id} changed meanwhile; retry")

    def update_draft(self, invoice: Invoice, updated: Invoice, event: InvoiceEvent) -> None:
        actions = [
            InvoiceItem.currency.set(updated.currency),
            InvoiceItem.memo.set(updated.memo) if updated.memo else InvoiceItem.memo.remove(),
            InvoiceItem.days_until_due.set(updated.days_until_due),
            InvoiceItem.due_date.set(updated.due_date.isoformat())
            if updated.due_date
            else InvoiceItem.due_date.remove(),
            set_value(InvoiceItem.metadata, dict(updated.metadata))
            if updated.metadata
            else InvoiceItem.metadata.remove(),
            InvoiceItem.subtotal_cents.set(updated.subtotal_cents),
            InvoiceItem.tax_cents.set(updated.tax_cents),
            InvoiceItem.total_cents.set(updated.total_cents),
        ]
        try:
            with self.transaction() as tx:
                self._draft_header_update(tx, invoice, actions, updated.updated_at)
                tx.save(event_to_item(event))
                for public in invoice_outbox((event,), updated):  # until this write is on the unit of work
                    tx.save(outbox_to_item(public), condition=TableItem.pk.does_not_exist())
        except TransactWriteError as exc:
            self._raise_draft_conflict(tx, exc, invoice.id)

    def write_line(
        self,
        invoice: Invoice,
        line: InvoiceLine | None,
        removed_line_id: str | None,
        totals: tuple[int, int, int],
        line_count: int,
        event: InvoiceEvent,
        updated_at: str,
    ) -> None:
        """Add, replace or delete one line, conditioned on the header still being the same draft."""
        subtotal, tax, total = totals
        actions = [
            InvoiceItem.subtotal_cents.set(subtotal),
            InvoiceItem.tax_cents.set(tax),
            InvoiceItem.total_cents.set(total),
            InvoiceItem.line_count.set(line_count),
        ]
        try:
            with self.transaction() as tx:
                self._draft_header_update(tx, invoice, actions, updated_at)
                if line is not None:
                    tx.save(line_to_item(invoice.id, line))
                if removed_line_id is not None:
                    tx.delete(
                        LineItem(keys.invoice_pk(invoice.id), keys.line_sk(removed_line_id)),
                        condition=TableItem.pk.exists(),
                    )
                tx.save(event_to_item(event))
        except TransactWriteError as exc:
            self._raise_draft_conflict(tx, exc, invoice.id)

    def delete_draft(self, invoice: Invoice, billing_run_pk: str | None) -> None:
        """Deletes a draft. The header delete is conditioned on `status = draft` and the version, so
        an open invoice can never be deleted; lines and events follow in batches."""
        try:
            with self.transaction() as tx:
                tx.delete(
                    InvoiceItem(*keys.header_key(invoice.id)),
                    condition=(InvoiceItem.status == InvoiceStatus.DRAFT.value)
                    & (InvoiceItem.version == invoice.version),
                )
                if billing_run_pk:
                    tx.delete(BillingRunItem(billing_run_pk, keys.BILLING_RUN_SK))
        except TransactWriteError as exc:
            self._raise_draft_conflict(tx, exc, invoice.id)
        with TableItem.batch_write() as batch:
            for item in TableItem.query(keys.invoice_pk(invoice.id)):
                batch.delete(item)

    # -- finalize and transitions
    def get_sequence(self, customer_id: str, kind: str, year: int) -> int:
        """The next free number (1 when the year has none yet)."""
        try:
            return int(
                SequenceItem.get(
                    keys.customer_pk(customer_id), keys.sequence_sk(kind, year), consistent_read=True
                ).next_value
            )
        except DoesNotExist:
            return 1

    def add_sequence_claim(self, tx: Transaction, customer_id: str, kind: str, year: int, expected_next: int) -> None:
        """Claim number `expected_next`: the counter must still hold it (or not exist for the first)."""
        pk, sk = keys.sequence_key(customer_id, kind, year)
        if expected_next == 1:
            tx.save(
                SequenceItem(pk, sk, customer_id=customer_id, next_value=2), condition=TableItem.pk.does_not_exist()
            )
        else:
            tx.update(
                SequenceItem(pk, sk),
                actions=[SequenceItem.next_value.set(expected_next + 1)],
                condition=SequenceItem.next_value == expected_next,
            )


class BillingRunExists(Conflict):
    code = "billing_run_exists"

    def __init__(self, key: str) -> None:
        super().__init__("an invoice for this billing run already exists")
        self.key = key


__all__ = [
    "ApiKey",
    "BillingRunExists",
    "Customer",
    "DeleteError",
    "InvoiceNotOpenForPdf",
    "NumberTaken",
    "Page",
    "PendingPdf",
    "Repository",
    "SequenceConflict",
]
