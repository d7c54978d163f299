"""Declarative mapping between domain objects and items: one `*_to_item` and one `*_from_item` per
entity, and the helpers that turn nested values (addresses, taxes, snapshots) into maps and back.

No key is spelled here (store/keys.py) and no condition is decided here (the stores and the unit of
work): a mapper only says which attribute holds which field.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pynamodb.attributes import MapAttribute
from pynamodb.expressions.operand import Value
from pynamodb.expressions.update import Action

from invoicing.domain.credit import BalanceTransaction
from invoicing.domain.customer import Customer
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import (
    DEFAULT_UNIT_CODE,
    Address,
    CustomerSnapshot,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineTax,
)
from invoicing.domain.payments import PaymentLink
from invoicing.store import keys
from invoicing.store.models import (
    BalanceTransactionItem,
    CustomerItem,
    EventItem,
    InvoiceItem,
    LineItem,
    PaymentLinkItem,
)


def _address_to_map(address: Address) -> dict[str, str]:
    return {k: v for k, v in address.__dict__.items() if v}


def _address_from_map(raw: Any) -> Address:
    data = plain(raw) or {}
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


def plain(value: Any) -> Any:
    """MapAttribute (raw) -> plain dict."""
    if value is None:
        return None
    if hasattr(value, "as_dict"):
        return value.as_dict()
    return value


def tax_to_map(tax: LineTax) -> dict[str, Any]:
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


def tax_from_map(raw: Any) -> LineTax:
    data = plain(raw)
    return LineTax(
        tax_rate_id=data.get("tax_rate_id"),
        percentage=Decimal(str(data.get("percentage", "0"))),
        inclusive=bool(data.get("inclusive", False)),
        tax_cents=int(data.get("tax_cents", 0)),
        display_name=str(data.get("display_name", "")),
    )


def snapshot_to_map(snap: CustomerSnapshot) -> dict[str, Any]:
    return {
        "name": snap.name,
        "email": snap.email,
        "address": _address_to_map(snap.address),
        "tax_id": snap.tax_id,
        "locale": snap.locale,
    }


def snapshot_from_map(raw: Any) -> CustomerSnapshot | None:
    data = plain(raw)
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
        balances={k: int(v) for k, v in (plain(item.balances) or {}).items()},
        metadata={k: str(v) for k, v in (plain(item.metadata) or {}).items()},
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=int(item.version or 0),
        einvoice_format=item.einvoice_format or "none",
        vat_id=item.vat_id or "",
        electronic_address=item.electronic_address or "",
        electronic_address_scheme=item.electronic_address_scheme or "",
        buyer_reference=item.buyer_reference or "",
    )


def customer_to_item(c: Customer) -> CustomerItem:
    return CustomerItem(
        keys.customer_pk(c.id),
        keys.CUSTOMER_SK,
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
        version=c.version,
        einvoice_format=c.einvoice_format if c.einvoice_format != "none" else None,
        vat_id=c.vat_id or None,
        electronic_address=c.electronic_address or None,
        electronic_address_scheme=c.electronic_address_scheme or None,
        buyer_reference=c.buyer_reference or None,
        gsi1pk=keys.CUSTOMERS_LIST,
        gsi1sk=keys.customers_list_sk(c.created_at, c.id),
    )


def line_from_item(item: LineItem) -> InvoiceLine:
    return InvoiceLine(
        id=item.line_id,
        description=item.description,
        quantity=Decimal(item.quantity),
        unit_amount_cents=int(item.unit_amount_cents),
        tax_rate_id=item.tax_rate_id,
        created_at=item.created_at,
        tax=tax_from_map(item.tax_preview) if item.tax_preview else None,
        unit_code=item.unit_code or DEFAULT_UNIT_CODE,
    )


def line_to_item(invoice_id: str, line: InvoiceLine) -> LineItem:
    return LineItem(
        keys.invoice_pk(invoice_id),
        keys.line_sk(line.id),
        invoice_id=invoice_id,
        line_id=line.id,
        description=line.description,
        quantity=str(line.quantity),
        unit_amount_cents=line.unit_amount_cents,
        amount_cents=line.amount_cents,
        tax_rate_id=line.tax_rate_id,
        tax_preview=tax_to_map(line.tax) if line.tax else None,
        created_at=line.created_at,
        unit_code=line.unit_code if line.unit_code != DEFAULT_UNIT_CODE else None,
    )


def _opt_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def invoice_from_item(item: InvoiceItem, lines: list[InvoiceLine] | None = None) -> Invoice:
    line_taxes = {k: tax_from_map(v) for k, v in (plain(item.line_taxes) or {}).items()}
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
                unit_code=ln.unit_code,
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
        customer=snapshot_from_map(item.customer_snapshot),
        line_taxes=line_taxes,
        lines=tuple(resolved_lines),
        pdf_status=item.pdf_status,
        pdf_s3_key=item.pdf_s3_key,
        pdf_requested_at=item.pdf_requested_at,
        pdf_rendered_at=item.pdf_rendered_at,
        reissue_of=item.reissue_of,
        reissued_as=item.reissued_as,
        metadata={k: str(v) for k, v in (plain(item.metadata) or {}).items()},
        purchase_order=item.purchase_order or "",
        custom_fields=custom_fields_from_list(item.custom_fields),
        links_tracked=bool(item.links_tracked),
        active_link_id=item.link_id,
        active_link_expires_at=item.link_expires_at,
    )


def custom_fields_to_list(fields: tuple[tuple[str, str], ...]) -> list[dict[str, str]] | None:
    return [{"key": key, "value": value} for key, value in fields] or None


def custom_fields_from_list(raw: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(entry["key"]), str(entry["value"])) for entry in (plain(raw) or []))


def invoice_to_item(inv: Invoice) -> InvoiceItem:
    """A draft header (finalized fields are only ever written by finalize's update)."""
    return InvoiceItem(
        keys.invoice_pk(inv.id),
        keys.INVOICE_SK,
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
        purchase_order=inv.purchase_order or None,
        custom_fields=custom_fields_to_list(inv.custom_fields),
        gsi1pk=keys.customer_pk(inv.customer_id),
        gsi1sk=keys.customer_invoice_sk(inv.created_at, inv.id),
        gsi2pk=keys.status_pk(inv.status.value, inv.id),
        gsi2sk=keys.status_sk(inv.created_at, inv.id),
    )


def event_to_item(ev: InvoiceEvent) -> EventItem:
    return EventItem(
        keys.invoice_pk(ev.invoice_id),
        keys.event_sk(ev.at, ev.id),
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
        data=plain(item.data) or {},
    )


def equals_or_absent(attr: Any, old: int) -> Any:
    """`attr = :old`, where a missing attribute counts as 0 (items written before the feature)."""
    return (attr == old) | attr.does_not_exist() if old == 0 else attr == old


def balance_txn_to_item(t: BalanceTransaction) -> BalanceTransactionItem:
    return BalanceTransactionItem(
        keys.customer_pk(t.customer_id),
        keys.balance_txn_sk(t.created_at, t.id),
        balance_transaction_id=t.id,
        customer_id=t.customer_id,
        currency=t.currency,
        amount_cents=t.amount_cents,
        ending_balance_cents=t.ending_balance_cents,
        kind=t.kind,
        credit_note_id=t.credit_note_id,
        invoice_id=t.invoice_id,
        created_at=t.created_at,
        actor=t.actor,
    )


def link_create_actions(link: PaymentLink) -> list[Any]:
    """A new payment link as update actions (it is created by an update: see UnitOfWork.add_link)."""
    return [
        PaymentLinkItem.type.set(PaymentLinkItem),
        PaymentLinkItem.invoice_id.set(link.invoice_id),
        PaymentLinkItem.link_id.set(link.id),
        PaymentLinkItem.token_hash.set(link.token_hash),
        PaymentLinkItem.created_at.set(link.created_at),
        PaymentLinkItem.created_by.set(link.created_by or "system"),
        PaymentLinkItem.expires_at.set(link.expires_at),
        PaymentLinkItem.gsi1pk.set(keys.token_gsi1pk(link.token_hash)),
        PaymentLinkItem.gsi1sk.set("PAYLINK"),
    ]
