"""The repository: the only code that knows keys, conditions and transactions.

It returns domain objects, never raw items, and turns DynamoDB condition failures into domain
errors. Every state change is written together with its audit event in one TransactWriteItems.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pynamodb.attributes import MapAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import (
    DeleteError,
    DoesNotExist,
    PutError,
    TransactWriteError,
    UpdateError,
)
from pynamodb.expressions.operand import Value
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import (
    Address,
    CustomerSnapshot,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineTax,
)
from invoicing.errors import (
    ConcurrentModification,
    Conflict,
    InvoiceNotDraft,
    NotFound,
    ValidationFailed,
)
from invoicing.store.models import (
    ApiKeyItem,
    BillingRunItem,
    CustomerItem,
    EventItem,
    InvoiceItem,
    LineItem,
    SequenceItem,
    TableItem,
    bind,
)

TRANSACTION_LIMIT = 100


# ---------------------------------------------------------------- keys
def customer_pk(customer_id: str) -> str:
    return f"CUSTOMER#{customer_id}"


def invoice_pk(invoice_id: str) -> str:
    return f"INVOICE#{invoice_id}"


def sequence_sk(kind: str, year: int) -> str:
    return f"SEQ#{kind}#{year:04d}"


PDF_PENDING_SHARDS = 4


def pdf_pending_pk(invoice_id: str) -> str:
    """The sparse pending-PDF index is spread over a few partitions so that a billing run's burst of
    finalizations never concentrates on one index partition."""
    import zlib

    return f"PDFPENDING#{zlib.crc32(invoice_id.encode()) % PDF_PENDING_SHARDS}"


def billing_run_pk(customer_id: str, subscription_id: str, start: date, end: date) -> str:
    return f"BILLINGRUN#{customer_id}#{subscription_id}#{start.isoformat()}#{end.isoformat()}"


# ---------------------------------------------------------------- domain objects owned by the store
@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    email: str
    address: Address
    currency: str
    locale: str
    timezone: str
    tax_id: str
    reminders_enabled: bool
    balances: dict[str, int]
    metadata: dict[str, str]
    created_at: str
    updated_at: str

    def snapshot(self) -> CustomerSnapshot:
        return CustomerSnapshot(
            name=self.name, email=self.email, address=self.address, tax_id=self.tax_id, locale=self.locale
        )


@dataclass(frozen=True)
class ApiKey:
    key_hash: str
    name: str
    scopes: tuple[str, ...]
    hint: str
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class Page:
    items: list[Invoice]
    next_cursor: str | None


# ---------------------------------------------------------------- conversions
def _address_to_map(address: Address) -> dict[str, str]:
    return {k: v for k, v in address.__dict__.items() if v}


def _address_from_map(raw: Any) -> Address:
    data = _plain(raw) or {}
    return Address(**{k: str(v) for k, v in data.items() if k in Address.__dataclass_fields__})


def set_value(attr: Any, value: Any) -> Action:
    """`attr.set(value)`, with a dict always written as a map.

    PynamoDB's `Value` takes a one-key dict whose key is a DynamoDB type name (`{"S": ""}`,
    `{"N": "1"}`, `{"M": {...}}`) for a value that is already serialized. Metadata `{"S": ""}` from a
    client was therefore stored as the string "", and every later read of the item failed to
    deserialize it (found by the API fuzz). A dict is serialized here, so its keys are only keys."""
    if isinstance(value, dict):
        return attr.set(Value({"M": MapAttribute().serialize(value)}))
    return attr.set(value)


def _plain(value: Any) -> Any:
    """MapAttribute (raw) -> plain dict."""
    if value is None:
        return None
    if hasattr(value, "as_dict"):
        return value.as_dict()
    return value


def _tax_to_map(tax: LineTax) -> dict[str, Any]:
    out: dict[str, Any] = {
        "percentage": str(tax.percentage),
        "inclusive": tax.inclusive,
        "tax_cents": tax.tax_cents,
    }
    if tax.tax_rate_id:
        out["tax_rate_id"] = tax.tax_rate_id
    if tax.display_name:
        out["display_name"] = tax.display_name
    return out


def _tax_from_map(raw: Any) -> LineTax:
    data = _plain(raw)
    return LineTax(
        tax_rate_id=data.get("tax_rate_id"),
        percentage=Decimal(str(data.get("percentage", "0"))),
        inclusive=bool(data.get("inclusive", False)),
        tax_cents=int(data.get("tax_cents", 0)),
        display_name=str(data.get("display_name", "")),
    )


def _snapshot_to_map(snap: CustomerSnapshot) -> dict[str, Any]:
    return {
        "name": snap.name,
        "email": snap.email,
        "address": _address_to_map(snap.address),
        "tax_id": snap.tax_id,
        "locale": snap.locale,
    }


def _snapshot_from_map(raw: Any) -> CustomerSnapshot | None:
    data = _plain(raw)
    if not data:
        return None
    return CustomerSnapshot(
        name=data.get("name", ""),
        email=data.get("email", ""),
        address=_address_from_map(data.get("address")),
        tax_id=data.get("tax_id", "") or "",
        locale=data.get("locale", "en_US"),
    )


def customer_from_item(item: CustomerItem) -> Customer:
    return Customer(
        id=item.customer_id,
        name=item.name,
        email=item.email,
        address=_address_from_map(item.address),
        currency=item.currency,
        locale=item.locale,
        timezone=item.timezone,
        tax_id=item.tax_id or "",
        reminders_enabled=bool(item.reminders_enabled),
        balances={k: int(v) for k, v in (_plain(item.balances) or {}).items()},
        metadata={k: str(v) for k, v in (_plain(item.metadata) or {}).items()},
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def customer_to_item(c: Customer) -> CustomerItem:
    return CustomerItem(
        customer_pk(c.id),
        "CUSTOMER",
        customer_id=c.id,
        name=c.name,
        email=c.email,
        address=_address_to_map(c.address),
        currency=c.currency,
        locale=c.locale,
        timezone=c.timezone,
        tax_id=c.tax_id or None,
        reminders_enabled=c.reminders_enabled,
        balances=dict(c.balances),
        metadata=dict(c.metadata),
        created_at=c.created_at,
        updated_at=c.updated_at,
        gsi1pk="CUSTOMERS",
        gsi1sk=f"{c.created_at}#{c.id}",
    )


def line_from_item(item: LineItem) -> InvoiceLine:
    return InvoiceLine(
        id=item.line_id,
        description=item.description,
        quantity=Decimal(item.quantity),
        unit_amount_cents=int(item.unit_amount_cents),
        tax_rate_id=item.tax_rate_id,
        created_at=item.created_at,
        tax=_tax_from_map(item.tax_preview) if item.tax_preview else None,
    )


def line_to_item(invoice_id: str, line: InvoiceLine) -> LineItem:
    return LineItem(
        invoice_pk(invoice_id),
        f"LINE#{line.id}",
        invoice_id=invoice_id,
        line_id=line.id,
        description=line.description,
        quantity=str(line.quantity),
        unit_amount_cents=line.unit_amount_cents,
        amount_cents=line.amount_cents,
        tax_rate_id=line.tax_rate_id,
        tax_preview=_tax_to_map(line.tax) if line.tax else None,
        created_at=line.created_at,
    )


def _opt_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def invoice_from_item(item: InvoiceItem, lines: list[InvoiceLine] | None = None) -> Invoice:
    line_taxes = {k: _tax_from_map(v) for k, v in (_plain(item.line_taxes) or {}).items()}
    status = InvoiceStatus(item.status)
    resolved_lines = list(lines or [])
    if status is not InvoiceStatus.DRAFT:
        # finalized: each line shows its frozen result (see docs/data-model.md)
        resolved_lines = [
            InvoiceLine(
                id=ln.id,
                description=ln.description,
                quantity=ln.quantity,
                unit_amount_cents=ln.unit_amount_cents,
                tax_rate_id=ln.tax_rate_id,
                created_at=ln.created_at,
                tax=line_taxes.get(ln.id, LineTax.none()),
            )
            for ln in resolved_lines
        ]
    return Invoice(
        id=item.invoice_id,
        customer_id=item.customer_id,
        status=status,
        currency=item.currency,
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=int(item.version),
        subscription_id=item.subscription_id,
        period_start=_opt_date(item.period_start),
        period_end=_opt_date(item.period_end),
        due_date=_opt_date(item.due_date),
        days_until_due=int(item.days_until_due or 0),
        memo=item.memo or "",
        invoice_number=item.invoice_number,
        finalized_at=item.finalized_at,
        voided_at=item.voided_at,
        paid_at=item.paid_at,
        marked_uncollectible_at=item.marked_uncollectible_at,
        subtotal_cents=int(item.subtotal_cents or 0),
        tax_cents=int(item.tax_cents or 0),
        total_cents=int(item.total_cents or 0),
        amount_paid_cents=int(item.amount_paid_cents or 0),
        amount_remaining_cents=int(item.amount_remaining_cents or 0),
        credited_cents=int(item.credited_cents or 0),
        pre_payment_credited_cents=int(item.pre_payment_credited_cents or 0),
        post_payment_credited_cents=int(item.post_payment_credited_cents or 0),
        refunded_cents=int(item.refunded_cents or 0),
        starting_balance_cents=int(item.starting_balance_cents or 0),
        applied_balance_cents=int(item.applied_balance_cents or 0),
        usd_total_cents=int(item.usd_total_cents) if item.usd_total_cents is not None else None,
        fx_rate=Decimal(item.fx_rate) if item.fx_rate else None,
        fx_rate_source=item.fx_rate_source,
        fx_rate_as_of=item.fx_rate_as_of,
        customer=_snapshot_from_map(item.customer_snapshot),
        line_taxes=line_taxes,
        lines=tuple(resolved_lines),
        pdf_status=item.pdf_status,
        pdf_s3_key=item.pdf_s3_key,
        pdf_requested_at=item.pdf_requested_at,
        pdf_rendered_at=item.pdf_rendered_at,
        reissue_of=item.reissue_of,
        reissued_as=item.reissued_as,
        metadata={k: str(v) for k, v in (_plain(item.metadata) or {}).items()},
    )


def invoice_to_item(inv: Invoice) -> InvoiceItem:
    """A draft header (finalized fields are only ever written by finalize's update)."""
    return InvoiceItem(
        invoice_pk(inv.id),
        "INVOICE",
        invoice_id=inv.id,
        customer_id=inv.customer_id,
        status=inv.status.value,
        currency=inv.currency,
        version=inv.version,
        created_at=inv.created_at,
        updated_at=inv.updated_at,
        subscription_id=inv.subscription_id,
        period_start=inv.period_start.isoformat() if inv.period_start else None,
        period_end=inv.period_end.isoformat() if inv.period_end else None,
        due_date=inv.due_date.isoformat() if inv.due_date else None,
        days_until_due=inv.days_until_due,
        memo=inv.memo or None,
        subtotal_cents=inv.subtotal_cents,
        tax_cents=inv.tax_cents,
        total_cents=inv.total_cents,
        line_count=len(inv.lines),
        reissue_of=inv.reissue_of,
        metadata=dict(inv.metadata) or None,
        gsi1pk=customer_pk(inv.customer_id),
        gsi1sk=f"INVOICE#{inv.created_at}#{inv.id}",
        gsi2pk=f"STATUS#{inv.status.value}",
        gsi2sk=f"{inv.created_at}#{inv.id}",
    )


def event_to_item(ev: InvoiceEvent) -> EventItem:
    return EventItem(
        invoice_pk(ev.invoice_id),
        f"EVENT#{ev.at}#{ev.id}",
        invoice_id=ev.invoice_id,
        event_id=ev.id,
        event_type=ev.type,
        actor=ev.actor,
        at=ev.at,
        request_id=ev.request_id or None,
        from_status=ev.from_status,
        to_status=ev.to_status,
        data=dict(ev.data) or None,
    )


def event_op(ev: InvoiceEvent) -> Callable[[TransactWrite], None]:
    """The event as an action in another use case's transaction (finalize's `extra`)."""

    def op(tx: TransactWrite) -> None:
        tx.save(event_to_item(ev))

    return op


def event_from_item(item: EventItem) -> InvoiceEvent:
    return InvoiceEvent(
        id=item.event_id,
        invoice_id=item.invoice_id,
        type=item.event_type,
        actor=item.actor,
        at=item.at,
        request_id=item.request_id or "",
        from_status=item.from_status,
        to_status=item.to_status,
        data=_plain(item.data) or {},
    )


class Transaction(TransactWrite):
    """PynamoDB sends a transaction's items grouped by kind (condition checks, deletes, puts,
    updates), not in call order, so DynamoDB's cancellation reasons are matched back to items by
    key here. Callers then ask which item's condition failed instead of trusting positions."""

    def _wire_order_keys(self) -> list[tuple[str, str]]:
        ordered = [*self._condition_check_items, *self._delete_items, *self._put_items, *self._update_items]
        keys = []
        for op in ordered:
            key = op.get("Key") or op.get("Item") or {}
            keys.append((key.get("pk", {}).get("S", ""), key.get("sk", {}).get("S", "")))
        return keys

    def reasons(self, exc: TransactWriteError) -> dict[tuple[str, str], str | None]:
        codes = [r.code if r is not None else None for r in (getattr(exc, "cancellation_reasons", None) or [])]
        return dict(zip(self._wire_order_keys(), codes, strict=False))

    def failed(self, exc: TransactWriteError) -> set[tuple[str, str]]:
        """Keys of the items whose condition failed."""
        return {k for k, code in self.reasons(exc).items() if code == "ConditionalCheckFailed"}

    def conflicted(self, exc: TransactWriteError) -> bool:
        """Another transaction was writing one of these items at the same time (retryable)."""
        return any(code == "TransactionConflict" for code in self.reasons(exc).values())


def header_key(invoice_id: str) -> tuple[str, str]:
    return (invoice_pk(invoice_id), "INVOICE")


# A cursor is a position in a newest-first listing: the created_at and the id of the last item shown,
# "2026-11-24T10:00:00.123Z~in_01J...". The next page starts just after that position, in whichever
# listing the cursor is used with (another customer's, another status'), so any text of this shape is
# a valid cursor and the API document's pattern is the whole rule. (A cursor used to be a DynamoDB key
# in base64: most strings of its documented shape were refused with a 422.)
CURSOR_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z~[A-Za-z0-9_\-]{1,64}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def position_cursor(created_at: str, item_id: str) -> str:
    return f"{created_at}~{item_id}"


def parse_position(cursor: str | None) -> tuple[str, str] | None:
    """(created_at, id) of a cursor; None for no cursor; a 422 for text that is not a cursor."""
    if not cursor:
        return None
    if not _CURSOR.fullmatch(cursor):
        raise ValidationFailed(
            "starting_after is not a cursor (the next_cursor of a page)", details={"field": "starting_after"}
        )
    created_at, _, item_id = cursor.partition("~")
    return created_at, item_id


# ---------------------------------------------------------------- repository
class Repository:
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

    # -- customers
    def put_customer(self, customer: Customer) -> None:
        try:
            customer_to_item(customer).save(condition=TableItem.pk.does_not_exist())
        except PutError as exc:
            raise Conflict(f"customer {customer.id} already exists") from exc

    def get_customer(self, customer_id: str) -> Customer:
        try:
            item = CustomerItem.get(customer_pk(customer_id), "CUSTOMER", consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"customer {customer_id} not found", code="customer_not_found") from None
        return customer_from_item(item)

    def update_customer(self, customer_id: str, changes: dict[str, Any], updated_at: str) -> Customer:
        item = CustomerItem(customer_pk(customer_id), "CUSTOMER")
        actions = [set_value(getattr(CustomerItem, k), v) for k, v in changes.items()]
        actions.append(CustomerItem.updated_at.set(updated_at))
        try:
            item.update(actions=actions, condition=TableItem.pk.exists())
        except UpdateError as exc:
            if _is_condition_failure(exc):
                raise NotFound(f"customer {customer_id} not found", code="customer_not_found") from exc
            raise
        return self.get_customer(customer_id)

    # -- invoices: reads
    def get_invoice(self, invoice_id: str, *, consistent: bool = True) -> Invoice:
        header: InvoiceItem | None = None
        lines: list[InvoiceLine] = []
        for item in TableItem.query(
            invoice_pk(invoice_id), TableItem.sk.between("INVOICE", "LINE#~"), consistent_read=consistent
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
            item = InvoiceItem.get(invoice_pk(invoice_id), "INVOICE", consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"invoice {invoice_id} not found", code="invoice_not_found") from None
        return invoice_from_item(item)

    def list_invoices(self, *, customer_id: str | None, status: str | None, limit: int, cursor: str | None) -> Page:
        position = parse_position(cursor)
        if customer_id:
            last_key = self._invoice_index_key(*position, customer_id=customer_id) if position else None
            results = TableItem.gsi1.query(
                customer_pk(customer_id),
                TableItem.gsi1sk.startswith("INVOICE#"),
                filter_condition=(InvoiceItem.status == status) if status else None,
                scan_index_forward=False,
                limit=limit + 1,
                last_evaluated_key=last_key,
            )
        elif status:
            last_key = self._invoice_index_key(*position, status=status) if position else None
            results = TableItem.gsi2.query(
                f"STATUS#{status}",
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
        key = {"pk": {"S": invoice_pk(invoice_id)}, "sk": {"S": "INVOICE"}}
        if customer_id:
            key["gsi1pk"] = {"S": customer_pk(customer_id)}
            key["gsi1sk"] = {"S": f"INVOICE#{created_at}#{invoice_id}"}
        else:
            key["gsi2pk"] = {"S": f"STATUS#{status}"}
            key["gsi2sk"] = {"S": f"{created_at}#{invoice_id}"}
        return key

    def list_events(self, invoice_id: str) -> list[InvoiceEvent]:
        return [
            event_from_item(item)
            for item in TableItem.query(invoice_pk(invoice_id), TableItem.sk.startswith("EVENT#"))
            if isinstance(item, EventItem)
        ]

    def get_billing_run_invoice_id(self, pk: str) -> str | None:
        try:
            return BillingRunItem.get(pk, "BILLINGRUN", consistent_read=True).invoice_id
        except DoesNotExist:
            return None

    # -- invoices: draft writes
    def create_invoice(self, invoice: Invoice, event: InvoiceEvent, billing_run_pk: str | None) -> None:
        """Header + lines + `created` event (+ the billing-run uniqueness item) in one transaction.

        Raises `BillingRunExists` when another create took the same billing-run key first.
        """
        lines = list(invoice.lines)
        if len(lines) + 3 > TRANSACTION_LIMIT:
            raise ValidationFailed(
                f"create with at most {TRANSACTION_LIMIT - 3} lines, then add more with POST /lines",
                details={"field": "lines"},
            )
        try:
            with self.transaction() as tx:
                tx.save(invoice_to_item(invoice), condition=TableItem.pk.does_not_exist())
                for line in lines:
                    tx.save(line_to_item(invoice.id, line))
                tx.save(event_to_item(event))
                if billing_run_pk:
                    tx.save(
                        BillingRunItem(billing_run_pk, "BILLINGRUN", invoice_id=invoice.id),
                        condition=TableItem.pk.does_not_exist(),
                    )
        except TransactWriteError as exc:
            if billing_run_pk and (billing_run_pk, "BILLINGRUN") in tx.failed(exc):
                raise BillingRunExists(billing_run_pk) from exc
            raise

    def _draft_header_update(self, tx: Transaction, invoice: Invoice, actions: list, updated_at: str) -> None:
        item = InvoiceItem(invoice_pk(invoice.id), "INVOICE")
        tx.update(
            item,
            actions=[InvoiceItem.version.set(invoice.version + 1), InvoiceItem.updated_at.set(updated_at), *actions],
            condition=(InvoiceItem.status == InvoiceStatus.DRAFT.value) & (InvoiceItem.version == invoice.version),
        )

    def _raise_draft_conflict(self, tx: Transaction, exc: TransactWriteError, invoice_id: str) -> None:
        if header_key(invoice_id) in tx.failed(exc) or tx.conflicted(exc):
            current = self.get_invoice_header(invoice_id)  # raises NotFound if deleted meanwhile
            if not current.is_draft:
                raise InvoiceNotDraft(
                    f"invoice {invoice_id} is {current.status.value}; only drafts can be changed"
                ) from exc
            raise ConcurrentModification(f"invoice {invoice_id} changed meanwhile; retry") from exc
        raise exc

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
                        LineItem(invoice_pk(invoice.id), f"LINE#{removed_line_id}"), condition=TableItem.pk.exists()
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
                    InvoiceItem(invoice_pk(invoice.id), "INVOICE"),
                    condition=(InvoiceItem.status == InvoiceStatus.DRAFT.value)
                    & (InvoiceItem.version == invoice.version),
                )
                if billing_run_pk:
                    tx.delete(BillingRunItem(billing_run_pk, "BILLINGRUN"))
        except TransactWriteError as exc:
            self._raise_draft_conflict(tx, exc, invoice.id)
        with TableItem.batch_write() as batch:
            for item in TableItem.query(invoice_pk(invoice.id)):
                batch.delete(item)

    # -- finalize and transitions
    def get_sequence(self, customer_id: str, kind: str, year: int) -> int:
        """The next free number (1 when the year has none yet)."""
        try:
            return int(
                SequenceItem.get(customer_pk(customer_id), sequence_sk(kind, year), consistent_read=True).next_value
            )
        except DoesNotExist:
            return 1

    def add_sequence_claim(self, tx: Transaction, customer_id: str, kind: str, year: int, expected_next: int) -> None:
        """Claim number `expected_next`: the counter must still hold it (or not exist for the first)."""
        if expected_next == 1:
            tx.save(
                SequenceItem(customer_pk(customer_id), sequence_sk(kind, year), customer_id=customer_id, next_value=2),
                condition=TableItem.pk.does_not_exist(),
            )
        else:
            tx.update(
                SequenceItem(customer_pk(customer_id), sequence_sk(kind, year)),
                actions=[SequenceItem.next_value.set(expected_next + 1)],
                condition=SequenceItem.next_value == expected_next,
            )

    def finalize_invoice(
        self,
        *,
        invoice: Invoice,
        finalized: Invoice,
        sequence_year: int,
        sequence_next: int,
        event: InvoiceEvent,
        extra: list[Any] | None = None,
    ) -> None:
        """The number, the status flip, the frozen totals and the event in one transaction,
        conditioned on the counter's old value and on the invoice still being the same draft.

        Raises NumberTaken when another finalization took the number (read the counter again and
        retry), SequenceConflict when the customer's balance moved (re-read the customer), InvoiceNotDraft
        when the invoice is no longer a draft, ConcurrentModification when a draft edit raced.
        """
        assert finalized.due_date is not None and finalized.customer is not None
        assert finalized.invoice_number is not None and finalized.finalized_at is not None
        line_taxes = {line_id: _tax_to_map(t) for line_id, t in finalized.line_taxes.items()}
        # open, or paid at once when the customer balance covered the whole amount (credit notes)
        status = finalized.status if finalized.status is InvoiceStatus.PAID else InvoiceStatus.OPEN
        actions: list[Action] = [
            InvoiceItem.status.set(status.value),
            InvoiceItem.version.set(invoice.version + 1),
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
            set_value(InvoiceItem.customer_snapshot, _snapshot_to_map(finalized.customer)),
            set_value(InvoiceItem.line_taxes, line_taxes) if line_taxes else InvoiceItem.line_taxes.remove(),
            InvoiceItem.pdf_status.set(finalized.pdf_status or "pending"),
            InvoiceItem.gsi2pk.set(f"STATUS#{status.value}"),
            InvoiceItem.pdf_requested_at.set(finalized.finalized_at),
            InvoiceItem.pdf_pk.set(pdf_pending_pk(invoice.id)),
            InvoiceItem.pdf_sk.set(f"{finalized.finalized_at}#{invoice.id}"),
        ]
        if status is InvoiceStatus.OPEN:  # the due index is sparse: open invoices only
            actions += [
                InvoiceItem.due_pk.set(f"DUE#{finalized.due_date.isoformat()}"),
                InvoiceItem.due_sk.set(invoice.id),
            ]
        elif finalized.paid_at:
            actions.append(InvoiceItem.paid_at.set(finalized.paid_at))
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
        try:
            with self.transaction() as tx:
                tx.update(
                    InvoiceItem(invoice_pk(invoice.id), "INVOICE"),
                    actions=actions,
                    condition=(InvoiceItem.status == InvoiceStatus.DRAFT.value)
                    & (InvoiceItem.version == invoice.version),
                )
                self.add_sequence_claim(tx, invoice.customer_id, "INV", sequence_year, sequence_next)
                tx.save(event_to_item(event))
                for op in extra or []:
                    op(tx)
        except TransactWriteError as exc:
            failed = tx.failed(exc)
            if header_key(invoice.id) in failed:
                self._raise_draft_conflict(tx, exc, invoice.id)
            # Only the counter failed: another finalization committed the number, so taking the next
            # one is enough. The customer item fails when its balance moved since it was read (credit
            # notes), and a conflict means a transaction was writing one of these items: re-read.
            counter = (customer_pk(invoice.customer_id), sequence_sk("INV", sequence_year))
            if failed == {counter} and not tx.conflicted(exc):
                raise NumberTaken(invoice.customer_id) from exc
            if failed or tx.conflicted(exc):
                raise SequenceConflict(invoice.customer_id) from exc
            raise

    def transition(
        self,
        *,
        invoice: Invoice,
        target: InvoiceStatus,
        allowed_from: frozenset[InvoiceStatus],
        timestamp_field: str,
        at: str,
        event: InvoiceEvent,
        extra: list[Any] | None = None,
        reissued_as: str | None = None,
    ) -> None:
        """Move an issued invoice to `target`; the condition re-checks the source status."""
        actions = [
            InvoiceItem.status.set(target.value),
            InvoiceItem.version.set(invoice.version + 1),
            InvoiceItem.updated_at.set(at),
            getattr(InvoiceItem, timestamp_field).set(at),
            InvoiceItem.gsi2pk.set(f"STATUS#{target.value}"),
        ]
        if target is not InvoiceStatus.OPEN:
            actions += [InvoiceItem.due_pk.remove(), InvoiceItem.due_sk.remove()]
        if reissued_as:
            actions.append(InvoiceItem.reissued_as.set(reissued_as))
        condition = InvoiceItem.status.is_in(*[s.value for s in allowed_from]) & (
            InvoiceItem.version == invoice.version
        )
        try:
            with self.transaction() as tx:
                tx.update(InvoiceItem(invoice_pk(invoice.id), "INVOICE"), actions=actions, condition=condition)
                tx.save(event_to_item(event))
                for op in extra or []:
                    op(tx)
        except TransactWriteError as exc:
            if header_key(invoice.id) in tx.failed(exc) or tx.conflicted(exc):
                raise ConcurrentModification(f"invoice {invoice.id} changed meanwhile; retry") from exc
            raise

    def save_linked_draft(self, tx: Transaction, draft: Invoice, event: InvoiceEvent) -> None:
        tx.save(invoice_to_item(draft), condition=TableItem.pk.does_not_exist())
        for line in draft.lines:
            tx.save(line_to_item(draft.id, line))
        tx.save(event_to_item(event))

    # -- PDFs
    def request_pdf(self, invoice_id: str, at: str) -> Invoice:
        """Mark a (re-)render as requested: `pending` unless a PDF already exists (the old one stays
        downloadable until the new one replaces it), and put the invoice on the pending index."""
        item = InvoiceItem(invoice_pk(invoice_id), "INVOICE")
        try:
            item.update(
                actions=[
                    InvoiceItem.pdf_requested_at.set(at),
                    InvoiceItem.pdf_status.set(InvoiceItem.pdf_status | "pending"),
                    InvoiceItem.pdf_pk.set(pdf_pending_pk(invoice_id)),
                    InvoiceItem.pdf_sk.set(f"{at}#{invoice_id}"),
                ],
                condition=TableItem.pk.exists() & (InvoiceItem.status != InvoiceStatus.DRAFT.value),
            )
        except UpdateError as exc:
            if _is_condition_failure(exc):
                self.get_invoice_header(invoice_id)
                raise InvoiceNotOpenForPdf(invoice_id) from exc
            raise
        return self.get_invoice_header(invoice_id)

    def mark_pdf_rendered(
        self, *, invoice_id: str, key: str, job_id: str, requested_at: str, at: str, event: InvoiceEvent
    ) -> bool:
        """Record the rendered PDF and its audit event together. Returns False when this job was
        already recorded (a redelivery): the condition on the job id makes the write happen once.
        The pending marker is cleared only if no newer render was requested meanwhile."""
        actions: list[Action] = [
            InvoiceItem.pdf_status.set("rendered"),
            InvoiceItem.pdf_s3_key.set(key),
            InvoiceItem.pdf_job_id.set(job_id),
            InvoiceItem.pdf_rendered_at.set(at),
        ]
        header = self.get_invoice_header(invoice_id)
        if header.pdf_requested_at is None or header.pdf_requested_at <= requested_at:
            actions += [InvoiceItem.pdf_pk.remove(), InvoiceItem.pdf_sk.remove()]
        condition = (
            TableItem.pk.exists()
            & (InvoiceItem.status != InvoiceStatus.DRAFT.value)
            & (InvoiceItem.pdf_job_id.does_not_exist() | (InvoiceItem.pdf_job_id != job_id))
        )
        try:
            with self.transaction() as tx:
                tx.update(InvoiceItem(invoice_pk(invoice_id), "INVOICE"), actions=actions, condition=condition)
                tx.save(event_to_item(event))
        except TransactWriteError as exc:
            if header_key(invoice_id) in tx.failed(exc):
                return False
            raise
        return True

    def pending_pdfs(self, requested_before: str, limit: int = 500) -> list[PendingPdf]:
        """Documents whose PDF was requested before `requested_before` and is not rendered yet:
        invoices (sk INVOICE) and credit notes (sk CREDITNOTE#{id}), both in the invoice's collection."""
        out: list[PendingPdf] = []
        for shard in range(PDF_PENDING_SHARDS):
            for item in TableItem.pdf_pending.query(
                f"PDFPENDING#{shard}", TableItem.pdf_sk < requested_before, limit=limit
            ):
                invoice_id = item.pk.removeprefix("INVOICE#")
                if item.sk == "INVOICE":
                    out.append(PendingPdf(invoice_id))
                elif item.sk.startswith("CREDITNOTE#"):
                    out.append(PendingPdf(invoice_id, credit_note_id=item.sk.removeprefix("CREDITNOTE#")))
        return out[:limit]

    # -- API keys
    def put_api_key(self, key: ApiKey) -> None:
        ApiKeyItem(
            f"APIKEY#{key.key_hash}",
            "APIKEY",
            name=key.name,
            scopes=list(key.scopes),
            hint=key.hint,
            created_at=key.created_at,
            gsi2pk="APIKEYS",
            gsi2sk=f"{key.created_at}#{key.name}",
        ).save(condition=TableItem.pk.does_not_exist())

    def get_api_key(self, key_hash: str) -> ApiKey | None:
        try:
            item = ApiKeyItem.get(f"APIKEY#{key_hash}", "APIKEY")
        except DoesNotExist:
            return None
        return ApiKey(
            key_hash=key_hash,
            name=item.name,
            scopes=tuple(str(scope) for scope in item.scopes or []),
            hint=item.hint,
            created_at=item.created_at,
            revoked_at=item.revoked_at,
        )

    def list_api_keys(self) -> list[ApiKey]:
        out = []
        for item in TableItem.gsi2.query("APIKEYS"):
            if isinstance(item, ApiKeyItem):
                out.append(
                    ApiKey(
                        key_hash=item.pk.removeprefix("APIKEY#"),
                        name=item.name,
                        scopes=tuple(str(scope) for scope in item.scopes or []),
                        hint=item.hint,
                        created_at=item.created_at,
                        revoked_at=item.revoked_at,
                    )
                )
        return out

    def revoke_api_key(self, key_hash: str, at: str) -> None:
        try:
            ApiKeyItem(f"APIKEY#{key_hash}", "APIKEY").update(
                actions=[ApiKeyItem.revoked_at.set(at)], condition=TableItem.pk.exists()
            )
        except UpdateError as exc:
            raise NotFound("api key not found") from exc


class BillingRunExists(Conflict):
    code = "billing_run_exists"

    def __init__(self, key: str) -> None:
        super().__init__("an invoice for this billing run already exists")
        self.key = key


class InvoiceNotOpenForPdf(NotFound):
    code = "invoice_not_found"

    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"invoice {invoice_id} is a draft; drafts have no PDF")


@dataclass(frozen=True)
class PendingPdf:
    """A document whose render job may have been lost: an invoice, or one of its credit notes."""

    invoice_id: str
    credit_note_id: str | None = None


class SequenceConflict(Conflict):
    code = "sequence_conflict"

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"another finalization for customer {customer_id} took the number; retry")


class NumberTaken(SequenceConflict):
    """Only the counter moved: the next number can be taken at once, nothing else is stale."""


def _is_condition_failure(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


__all__ = [
    "ApiKey",
    "BillingRunExists",
    "Customer",
    "DeleteError",
    "NumberTaken",
    "Page",
    "PendingPdf",
    "Repository",
    "SequenceConflict",
]
