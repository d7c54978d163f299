"""The invoice repository: customers, invoices and their lines, events, PDFs and API keys.

It reads and returns domain objects, never raw items. Keys come from store/keys.py, items from
store/mapping.py. It writes nothing itself: every write is a typed write on the unit of work
(`repo.uow()`, store/uow.py), which also turns condition failures into domain errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, DoesNotExist

from invoicing.domain.customer import Customer
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice, InvoiceLine
from invoicing.errors import InvoiceNotDraft, NotFound, NumberTaken, SequenceConflict, StaleInvoice, ValidationFailed
from invoicing.store import keys
from invoicing.store.api_keys import ApiKey, ApiKeyRecords
from invoicing.store.cursor import parse_position, position_cursor
from invoicing.store.mapping import customer_from_item, event_from_item, invoice_from_item, line_from_item
from invoicing.store.models import (
    BillingRunItem,
    CustomerItem,
    EventItem,
    ExchangeRateItem,
    InvoiceItem,
    LineItem,
    SequenceItem,
    TableItem,
    TaxRateItem,
    bind,
)
from invoicing.store.pdfs import InvoiceNotOpenForPdf, PdfRecords, PendingPdf
from invoicing.store.shards import ShardRead, merge_shards
from invoicing.store.tax_rates import ExchangeRate, TaxRate, exchange_rate_from_item, rate_from_item
from invoicing.store.transaction import Transaction
from invoicing.store.uow import UnitOfWork
from invoicing.store.writes.invoices import BillingRunExists


@dataclass(frozen=True)
class FinalizeInputs:
    """What finalize reads besides the draft, in one consistent BatchGetItem."""

    customer: Customer
    next_number: int  # the customer's counter for the year (1 when the year has none yet)
    tax_rates: dict[str, TaxRate]  # the rates asked for that exist
    exchange_rate: ExchangeRate | None  # None for USD, or when the currency has no rate


@dataclass(frozen=True)
class Page:
    items: list[Invoice]
    next_cursor: str | None


@dataclass(frozen=True)
class InvoiceSearch:
    """What narrows a listing of one customer's invoices or of one status' (DynamoDB filters them)."""

    due_from: str | None = None  # yyyy-mm-dd, inclusive
    due_to: str | None = None
    number: str | None = None  # a part of the invoice number

    def __bool__(self) -> bool:
        return bool(self.due_from or self.due_to or self.number)


@dataclass(frozen=True)
class SearchPage:
    items: list[Invoice]
    next_cursor: str | None  # after the last shown, or after the last read when the read bound ended the page
    read: int  # invoices DynamoDB read (before its filter) for this page
    reads: int  # Queries made
    cut: bool  # the read bound ended the page before it was full


@dataclass(frozen=True)
class CustomerPage:
    items: list[Customer]
    next_cursor: str | None  # the position of the last customer read, when more follow


def _status_position(invoice: Invoice) -> str:
    """An invoice's place in its status listing: its gsi2 sort key."""
    return keys.status_sk(invoice.created_at, invoice.id)


# ---------------------------------------------------------------- repository
class Repository(PdfRecords, ApiKeyRecords):
    """Customers, invoices, lines and events here; PDFs (store/pdfs.py) and API keys (store/api_keys.py)
    are the same table's other records, mixed in so callers keep one `svc.repo`."""

    def __init__(self, table_name: str, region: str, *, index_shards: int = keys.DEFAULT_INDEX_SHARDS) -> None:
        bind(table_name, region)
        keys.configure_index_shards(index_shards)
        self.table_name = table_name
        self.region = region
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        """The transactions' connection, bound like the models (TableItem.Meta: region, and the endpoint
        and credentials a script may set there, e.g. scripts/create_api_key.py against a local table)."""
        if self._connection is None:
            meta = TableItem.Meta
            self._connection = Connection(
                region=self.region,
                host=getattr(meta, "host", None),
                aws_access_key_id=getattr(meta, "aws_access_key_id", None),
                aws_secret_access_key=getattr(meta, "aws_secret_access_key", None),
                aws_session_token=getattr(meta, "aws_session_token", None),
            )
        return self._connection

    def transaction(self) -> Transaction:
        return Transaction(connection=self.connection)

    def uow(self) -> UnitOfWork:
        """A unit of work over this table: `with repo.uow() as tx: tx.finalize(...); ...`."""
        return UnitOfWork(self)

    # -- customers
    def get_customer(self, customer_id: str) -> Customer:
        try:
            item = CustomerItem.get(*keys.customer_key(customer_id), consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"customer {customer_id} not found", code="customer_not_found") from None
        return customer_from_item(item)

    def list_customers(self, *, limit: int, cursor: str | None) -> CustomerPage:
        """Every customer, newest first (gsi1 `CUSTOMERS`): one Query of at most ``limit`` + 1 items."""
        position = parse_position(cursor)
        last_key = None
        if position:
            created_at, customer_id = position
            pk, sk = keys.customer_key(customer_id)
            last_key = {
                "pk": {"S": pk},
                "sk": {"S": sk},
                "gsi1pk": {"S": keys.CUSTOMERS_LIST},
                "gsi1sk": {"S": keys.customers_list_sk(created_at, customer_id)},
            }
        results = TableItem.gsi1.query(
            keys.CUSTOMERS_LIST, scan_index_forward=False, limit=limit + 1, last_evaluated_key=last_key
        )
        items = [customer_from_item(item) for item in results if isinstance(item, CustomerItem)]
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            next_cursor = position_cursor(items[-1].created_at, items[-1].id)
        return CustomerPage(items=items, next_cursor=next_cursor)

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
            return self._list_by_status(status, position, limit)
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

    def search_invoices(
        self,
        *,
        customer_id: str | None,
        status: str | None,
        search: InvoiceSearch,
        limit: int,
        cursor: str | None,
        read_size: int = 100,
        max_reads: int = 5,
    ) -> SearchPage:
        """A listing (pattern 2, 3 or 4) with DynamoDB filtering on the due date and the number, read
        one Query page of ``read_size`` at a time and never more than ``max_reads`` of them: a rare
        match in a long listing ends the page early, with a cursor after the last invoice read."""
        position = parse_position(cursor)
        condition: Any = None

        def both(left: Any, right: Any) -> Any:
            return right if left is None else left & right

        if customer_id and status:
            condition = both(condition, InvoiceItem.status == status)
        if search.due_from:
            condition = both(condition, InvoiceItem.due_date >= search.due_from)
        if search.due_to:
            condition = both(condition, InvoiceItem.due_date <= search.due_to)
        if search.number:
            condition = both(condition, InvoiceItem.invoice_number.contains(search.number))
        if customer_id:
            last_key = self._invoice_index_key(*position, customer_id=customer_id) if position else None
            results = TableItem.gsi1.query(
                keys.customer_pk(customer_id),
                TableItem.gsi1sk.startswith(keys.CUSTOMER_INVOICE_PREFIX),
                filter_condition=condition,
                scan_index_forward=False,
                page_size=read_size,
                last_evaluated_key=last_key,
            )
        elif status:
            return self._search_by_status(status, position, condition, limit, read_size)
        else:
            raise ValidationFailed("filter by customer_id or status", details={"field": "customer_id"})
        items: list[Invoice] = []
        reads = 0
        pages = results.page_iter
        for raw_page in pages:
            reads += 1
            for raw in raw_page.get("Items", []):
                item = TableItem.from_raw_data(raw)
                if isinstance(item, InvoiceItem):
                    items.append(invoice_from_item(item))
            if len(items) > limit or pages.last_evaluated_key is None or reads >= max_reads:
                break
        read = pages.total_scanned_count
        if len(items) > limit:
            items = items[:limit]
            return SearchPage(items, position_cursor(items[-1].created_at, items[-1].id), read, reads, cut=False)
        last = pages.last_evaluated_key
        if last is None:
            return SearchPage(items, None, read, reads, cut=False)
        # the index key says where the read stopped: "INVOICE#{created_at}#{invoice_id}"
        created_at, _, invoice_id = str(last["gsi1sk"]["S"]).removeprefix(keys.CUSTOMER_INVOICE_PREFIX).rpartition("#")
        return SearchPage(items, position_cursor(created_at, invoice_id), read, reads, cut=len(items) < limit)

    # -- invoices by status: N shards, merged (store/shards.py)
    def _status_shard_query(
        self, status: str, shard: int, position: tuple[str, str] | None, condition: Any = None, **read: Any
    ) -> Any:
        last_key = self._invoice_index_key(*position, status=status, shard=shard) if position else None
        return TableItem.gsi2.query(
            keys.status_shard_pk(status, shard),
            filter_condition=condition,
            scan_index_forward=False,
            last_evaluated_key=last_key,
            **read,
        )

    def _list_by_status(self, status: str, position: tuple[str, str] | None, limit: int) -> Page:
        """Every shard of `STATUS#{status}`: N Queries of at most ``limit`` + 1 items, merged newest first."""
        reads: list[ShardRead[Invoice]] = []
        for shard in range(keys.index_shards()):
            results = self._status_shard_query(status, shard, position, limit=limit + 1)
            items = [invoice_from_item(item) for item in results if isinstance(item, InvoiceItem)]
            reads.append(ShardRead(items, _status_position(items[-1]) if len(items) > limit else None))
        merged = merge_shards(reads, sort_key=_status_position, limit=limit)
        next_cursor = None
        if merged.more:
            next_cursor = position_cursor(merged.items[-1].created_at, merged.items[-1].id)
        return Page(items=merged.items, next_cursor=next_cursor)

    def _search_by_status(
        self, status: str, position: tuple[str, str] | None, condition: Any, limit: int, read_size: int
    ) -> SearchPage:
        """One filtered Query page of ``read_size`` per shard, merged; the page ends where the shard
        that read least far stopped (the frontier), so nothing is skipped or shown twice."""
        reads: list[ShardRead[Invoice]] = []
        scanned = 0
        for shard in range(keys.index_shards()):
            pages = self._status_shard_query(status, shard, position, condition, page_size=read_size).page_iter
            raw_page: dict[str, Any] = next(iter(pages), {})
            items = [
                invoice_from_item(item)
                for item in (TableItem.from_raw_data(raw) for raw in raw_page.get("Items", []))
                if isinstance(item, InvoiceItem)
            ]
            scanned += pages.total_scanned_count
            last = pages.last_evaluated_key
            reads.append(ShardRead(items, str(last["gsi2sk"]["S"]) if last else None))
        merged = merge_shards(reads, sort_key=_status_position, limit=limit)
        cursor = None
        if merged.more and merged.last_position:
            created_at, _, invoice_id = merged.last_position.rpartition("#")
            cursor = position_cursor(created_at, invoice_id)
        cut = merged.more and len(merged.items) < limit
        return SearchPage(merged.items, cursor, scanned, keys.index_shards(), cut=cut)

    @staticmethod
    def _invoice_index_key(
        created_at: str,
        invoice_id: str,
        *,
        customer_id: str | None = None,
        status: str | None = None,
        shard: int = 0,
    ) -> dict[str, Any]:
        """The ExclusiveStartKey of a position in the customer's (gsi1) or a status shard's (gsi2)
        listing: a position, the item need not exist (DynamoDB starts after the key wherever it would
        sort), so one cursor is every shard's position."""
        key = {"pk": {"S": keys.invoice_pk(invoice_id)}, "sk": {"S": keys.INVOICE_SK}}
        if customer_id:
            key["gsi1pk"] = {"S": keys.customer_pk(customer_id)}
            key["gsi1sk"] = {"S": keys.customer_invoice_sk(created_at, invoice_id)}
        else:
            key["gsi2pk"] = {"S": keys.status_shard_pk(str(status), shard)}
            key["gsi2sk"] = {"S": keys.status_sk(created_at, invoice_id)}
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

    # -- what the unit of work reads and does around a commit
    def draft_conflict(self, invoice_id: str) -> Exception:
        """Why a write conditioned on "still this draft" failed: no longer a draft, or edited meanwhile.
        Raises NotFound if it was deleted meanwhile."""
        current = self.get_invoice_header(invoice_id)
        if not current.is_draft:
            return InvoiceNotDraft(f"invoice {invoice_id} is {current.status.value}; only drafts can be changed")
        return StaleInvoice(f"invoice {invoice_id} changed meanwhile; retry")

    def purge_invoice_items(self, invoice_id: str) -> None:
        """A deleted draft's lines and events, after the header's conditional delete committed: in
        batches, as nothing reads them once the header is gone."""
        with TableItem.batch_write() as batch:
            for item in TableItem.query(keys.invoice_pk(invoice_id)):
                batch.delete(item)

    # -- finalize and transitions
    def finalize_inputs(
        self, customer_id: str, year: int, tax_rate_ids: list[str], currency: str | None
    ) -> FinalizeInputs:
        """The customer, its invoice counter for `year`, the tax rates and the exchange rate of
        `currency` (None: not needed), strongly consistent, in one BatchGetItem (PynamoDB pages
        beyond 100 keys, which a draft's 95 lines can never need)."""
        wanted = [keys.customer_key(customer_id), keys.sequence_key(customer_id, "INV", year)]
        wanted += [keys.tax_rate_key(r) for r in sorted(set(tax_rate_ids))]
        if currency is not None:
            wanted.append(keys.exchange_rate_key(currency))
        customer: Customer | None = None
        next_number, rates, fx = 1, {}, None
        for item in TableItem.batch_get(wanted, consistent_read=True):
            if isinstance(item, CustomerItem):
                customer = customer_from_item(item)
            elif isinstance(item, SequenceItem):
                next_number = int(item.next_value)
            elif isinstance(item, TaxRateItem):
                rates[item.tax_rate_id] = rate_from_item(item)
            elif isinstance(item, ExchangeRateItem):
                fx = exchange_rate_from_item(item)
        if customer is None:
            raise NotFound(f"customer {customer_id} not found", code="customer_not_found")
        return FinalizeInputs(customer, next_number, rates, fx)

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
