"""Draft invoices: create (idempotently for billing runs), read, list, edit, delete, lines.

Rules for every use case here:
- only drafts change; the store re-checks `status = draft AND version = :v` in the same transaction,
  so a concurrent finalization or edit can never be overwritten;
- every change writes an audit event in the same transaction;
- amounts are integer minor units, quantities Decimal (see domain.money).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from invoicing import clock
from invoicing.adapters.tax import taxes_from_rates
from invoicing.changes import UNSET, Changes, Unset
from invoicing.domain import money
from invoicing.domain.customer import Customer
from invoicing.domain.events import Actor, InvoiceEvent, new_event
from invoicing.domain.invoice import (
    DEFAULT_UNIT_CODE,
    MAX_LINES,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineTax,
    check_custom_fields,
    check_purchase_order,
    compute_totals,
    validate_line_fields,
)
from invoicing.einvoice import codes
from invoicing.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from invoicing.ids import new_id
from invoicing.observability import logger
from invoicing.services import Services
from invoicing.store.keys import billing_run_pk
from invoicing.store.repository import BillingRunExists, InvoiceSearch, Page, SearchPage
from invoicing.store.tax_rates import TaxRate
from invoicing.store.uow import TRANSACTION_LIMIT


@dataclass(frozen=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_amount_cents: int
    tax_rate_id: str | None = None
    unit_code: str = DEFAULT_UNIT_CODE


def _check_unit_code(code: str, field: str = "unit_code") -> str:
    if code not in codes.UNIT_CODES:
        raise ValidationFailed(
            f"{field} {code!r} is not a UN/ECE Recommendation 20 unit code (e.g. C62 unit, HUR hour, DAY, MON)",
            details={"field": field},
        )
    return code


@dataclass(frozen=True)
class CreateInvoice:
    customer_id: str
    currency: str | None = None
    lines: tuple[LineInput, ...] = ()
    subscription_id: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    due_date: date | None = None
    days_until_due: int | None = None
    memo: str = ""
    metadata: dict[str, str] | None = None
    purchase_order: str = ""
    custom_fields: tuple[tuple[str, str], ...] = ()

    def to_message(self) -> dict[str, object]:
        """The command as JSON, for a billing run's queue message (read back by `from_message`)."""
        return {
            "customer_id": self.customer_id,
            "currency": self.currency,
            "lines": [
                {
                    "description": li.description,
                    "quantity": str(li.quantity),
                    "unit_amount_cents": li.unit_amount_cents,
                    "tax_rate_id": li.tax_rate_id,
                    "unit_code": li.unit_code,
                }
                for li in self.lines
            ],
            "subscription_id": self.subscription_id,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "days_until_due": self.days_until_due,
            "memo": self.memo,
            "metadata": self.metadata,
            "purchase_order": self.purchase_order,
            "custom_fields": [list(pair) for pair in self.custom_fields],
        }

    @classmethod
    def from_message(cls, data: Mapping[str, object]) -> CreateInvoice:
        def day(value: object) -> date | None:
            return date.fromisoformat(str(value)) if value else None

        lines = data.get("lines") or []
        assert isinstance(lines, list)
        return cls(
            customer_id=str(data["customer_id"]),
            currency=str(data["currency"]) if data.get("currency") else None,
            lines=tuple(
                LineInput(
                    description=str(li["description"]),
                    quantity=Decimal(str(li["quantity"])),
                    unit_amount_cents=int(li["unit_amount_cents"]),
                    tax_rate_id=li.get("tax_rate_id"),
                    unit_code=str(li.get("unit_code") or DEFAULT_UNIT_CODE),
                )
                for li in lines
            ),
            subscription_id=str(data["subscription_id"]) if data.get("subscription_id") else None,
            period_start=day(data.get("period_start")),
            period_end=day(data.get("period_end")),
            due_date=day(data.get("due_date")),
            days_until_due=int(data["days_until_due"]) if data.get("days_until_due") is not None else None,  # type: ignore[call-overload]
            memo=str(data.get("memo") or ""),
            metadata=dict(data["metadata"]) if data.get("metadata") else None,  # type: ignore[call-overload]
            purchase_order=str(data.get("purchase_order") or ""),
            custom_fields=tuple((str(k), str(v)) for k, v in (data.get("custom_fields") or [])),  # type: ignore[attr-defined]
        )


def _new_line(data: LineInput, created_at: str) -> InvoiceLine:
    validate_line_fields(data.description, data.quantity, data.unit_amount_cents)
    return InvoiceLine(
        id=new_id("il"),
        description=data.description.strip(),
        quantity=data.quantity,
        unit_amount_cents=data.unit_amount_cents,
        tax_rate_id=data.tax_rate_id,
        created_at=created_at,
        unit_code=_check_unit_code(data.unit_code),
    )


def _with_previews(
    svc: Services,
    invoice: Invoice,
    lines: list[InvoiceLine],
    customer: Customer,
    checked: dict[str, TaxRate] | None = None,
) -> list[InvoiceLine]:
    """A draft line carries the tax it would have today. Finalization recomputes and freezes it.
    An unknown tax rate is a 422; an unreachable external tax service leaves the preview empty.

    `checked`: the rates `check_rates_assignable` just read for these lines; when they cover every
    line's rate, the preview uses them instead of reading them again (create and add-line read the
    rates once, issue #20)."""
    if not lines:
        return lines
    wanted = {ln.tax_rate_id for ln in lines if ln.tax_rate_id}
    if checked is not None and wanted <= checked.keys():
        results = taxes_from_rates(lines, checked)
        return [replace(line, tax=results.get(line.id, LineTax.none())) for line in lines]
    try:
        results = svc.tax.calculate(invoice, lines, customer)
    except ServiceUnavailable:
        logger.warning("tax preview unavailable", extra={"invoice_id": invoice.id})
        return lines
    return [replace(line, tax=results.get(line.id, LineTax.none())) for line in lines]


def _check_currency_amounts(currency: str) -> str:
    return money.normalize_currency(currency)


def create_invoice(svc: Services, actor: Actor, cmd: CreateInvoice) -> tuple[Invoice, bool]:
    """Creates a draft. Returns (invoice, created).

    A billing-run create (subscription_id + period_start + period_end) is idempotent for good:
    the uniqueness item is written in the same transaction as the invoice, and a repeat returns
    the existing invoice with created=False.
    """
    run_fields = (cmd.subscription_id, cmd.period_start, cmd.period_end)
    run_key = None
    if any(v is not None for v in run_fields):
        if not all(v is not None for v in run_fields):
            raise ValidationFailed(
                "a billing-run invoice needs subscription_id, period_start and period_end together",
                details={"field": "subscription_id"},
            )
        assert cmd.subscription_id and cmd.period_start and cmd.period_end
        if cmd.period_end < cmd.period_start:
            raise ValidationFailed("period_end is before period_start", details={"field": "period_end"})
        run_key = billing_run_pk(cmd.customer_id, cmd.subscription_id, cmd.period_start, cmd.period_end)
        existing = svc.repo.get_billing_run_invoice_id(run_key)
        if existing:
            return svc.repo.get_invoice(existing), False

    customer = svc.repo.get_customer(cmd.customer_id)
    rates = check_rates_assignable(svc, {f"lines.{i}.tax_rate_id": li.tax_rate_id for i, li in enumerate(cmd.lines)})
    currency = _check_currency_amounts(cmd.currency or customer.currency)
    if len(cmd.lines) > MAX_LINES:
        raise ValidationFailed(f"an invoice has at most {MAX_LINES} lines", details={"field": "lines"})
    now = clock.iso(clock.now())
    invoice = Invoice(
        id=new_id("in"),
        customer_id=customer.id,
        status=InvoiceStatus.DRAFT,
        currency=currency,
        created_at=now,
        updated_at=now,
        subscription_id=cmd.subscription_id,
        period_start=cmd.period_start,
        period_end=cmd.period_end,
        due_date=cmd.due_date,
        days_until_due=cmd.days_until_due if cmd.days_until_due is not None else svc.settings.default_days_until_due,
        memo=cmd.memo,
        metadata=dict(cmd.metadata or {}),
        purchase_order=check_purchase_order(cmd.purchase_order),
        custom_fields=check_custom_fields(list(cmd.custom_fields)),
    )
    lines = _with_previews(svc, invoice, [_new_line(li, now) for li in cmd.lines], customer, rates)
    totals = compute_totals(lines, {ln.id: ln.tax for ln in lines if ln.tax})
    invoice = replace(
        invoice,
        lines=tuple(lines),
        subtotal_cents=totals.subtotal_cents,
        tax_cents=totals.tax_cents,
        total_cents=totals.total_cents,
    )
    event = new_event(
        invoice.id,
        "invoice.created",
        actor,
        now,
        to_status="draft",
        data={"lines": len(lines), **({"subscription_id": cmd.subscription_id} if run_key else {})},
    )
    if len(lines) + 4 > TRANSACTION_LIMIT:  # header, event, its outbox record, billing run
        raise ValidationFailed(
            f"create with at most {TRANSACTION_LIMIT - 4} lines, then add more with POST /lines",
            details={"field": "lines"},
        )
    try:
        with svc.uow() as tx:
            tx.create_draft(invoice, run_key)
            tx.add_events(event)
    except BillingRunExists:
        assert run_key is not None
        winner = svc.repo.get_billing_run_invoice_id(run_key)
        if winner is None:  # the winner was a draft deleted meanwhile; a retry by the caller creates anew
            raise
        return svc.repo.get_invoice(winner), False
    logger.info("invoice created", extra={"invoice_id": invoice.id, "customer_id": customer.id})
    return invoice, True


def get_invoice(svc: Services, invoice_id: str) -> Invoice:
    return svc.repo.get_invoice(invoice_id)


def _check_listing(status: str | None, limit: int) -> None:
    if status is not None:
        try:
            InvoiceStatus(status)
        except ValueError:
            raise ValidationFailed(
                f"status must be one of {[s.value for s in InvoiceStatus]}", details={"field": "status"}
            ) from None
    if not 1 <= limit <= 100:
        raise ValidationFailed("limit must be between 1 and 100", details={"field": "limit"})


def list_invoices(
    svc: Services, *, customer_id: str | None, status: str | None, limit: int, starting_after: str | None
) -> Page:
    _check_listing(status, limit)
    return svc.repo.list_invoices(customer_id=customer_id, status=status, limit=limit, cursor=starting_after)


SEARCH_READ_SIZE = 100  # invoices per Query while a filter narrows a listing
SEARCH_MAX_READS = 5  # Queries per page at most


def search_invoices(
    svc: Services,
    *,
    customer_id: str | None,
    status: str | None,
    due_from: date | None = None,
    due_to: date | None = None,
    number: str = "",
    limit: int,
    starting_after: str | None,
) -> SearchPage:
    """One customer's invoices or one status' (as list_invoices), narrowed in DynamoDB by a due-date
    range and a part of the number. Bounded: at most 5 Queries of 100 invoices per page; a page cut by
    that bound holds fewer than ``limit`` and its cursor goes on from where the reading stopped."""
    _check_listing(status, limit)
    if due_from and due_to and due_from > due_to:
        raise ValidationFailed("the due range ends before it starts", details={"field": "due_to"})
    search = InvoiceSearch(
        due_from=due_from.isoformat() if due_from else None,
        due_to=due_to.isoformat() if due_to else None,
        number=number.strip().upper()[:64] or None,
    )
    return svc.repo.search_invoices(
        customer_id=customer_id,
        status=status,
        search=search,
        limit=limit,
        cursor=starting_after,
        read_size=SEARCH_READ_SIZE,
        max_reads=SEARCH_MAX_READS,
    )


def list_events(svc: Services, invoice_id: str) -> list[InvoiceEvent]:
    svc.repo.get_invoice_header(invoice_id)  # 404 for an unknown invoice, not an empty list
    return svc.repo.list_events(invoice_id)


_UNSET = object()


@dataclass(frozen=True)
class UpdateInvoice(Changes):
    """PATCH /invoices/{id} of a draft: the fields given (invoicing.changes); None clears memo,
    metadata, purchase_order, custom_fields and due_date, and leaves days_until_due as it is."""

    currency: str | Unset = UNSET
    due_date: date | Unset | None = UNSET
    days_until_due: int | Unset | None = UNSET
    memo: str | Unset | None = UNSET
    metadata: dict[str, str] | Unset | None = UNSET
    purchase_order: str | Unset | None = UNSET
    custom_fields: list[tuple[str, str]] | Unset | None = UNSET


@dataclass(frozen=True)
class UpdateLine(Changes):
    """PATCH /invoices/{id}/lines/{line_id}: the fields given (invoicing.changes); a None tax_rate_id
    removes the line's tax."""

    description: str | Unset = UNSET
    quantity: Decimal | Unset = UNSET
    unit_amount_cents: int | Unset = UNSET
    tax_rate_id: str | Unset | None = UNSET
    unit_code: str | Unset = UNSET


def update_invoice(svc: Services, actor: Actor, invoice_id: str, cmd: UpdateInvoice) -> Invoice:
    """Draft only: currency, due date, days until due, memo, metadata, purchase order, custom fields
    (null or absent: purchase_order and custom_fields as memo, null clears)."""
    changes = cmd.given()
    invoice = svc.repo.get_invoice(invoice_id)
    invoice.require_draft()
    updated = invoice
    if "currency" in changes:
        updated = replace(updated, currency=_check_currency_amounts(str(changes["currency"])))
    if "due_date" in changes:
        updated = replace(updated, due_date=changes["due_date"])  # type: ignore[arg-type]
    if "days_until_due" in changes and changes["days_until_due"] is not None:
        updated = replace(updated, days_until_due=int(changes["days_until_due"]))  # type: ignore[call-overload]
    if "memo" in changes:
        updated = replace(updated, memo=str(changes["memo"] or ""))
    if "metadata" in changes:
        updated = replace(updated, metadata=dict(changes["metadata"] or {}))  # type: ignore[call-overload]
    if "purchase_order" in changes:
        updated = replace(updated, purchase_order=check_purchase_order(changes["purchase_order"]))  # type: ignore[arg-type]
    if "custom_fields" in changes:
        updated = replace(updated, custom_fields=check_custom_fields(changes["custom_fields"]))  # type: ignore[arg-type]
    now = clock.iso(clock.now())
    updated = replace(updated, updated_at=now, version=invoice.version + 1)
    event = new_event(invoice.id, "invoice.updated", actor, now, data={"fields": sorted(changes)})
    with svc.uow() as tx:
        tx.update_draft(invoice, updated)
        tx.add_events(event)
    return svc.repo.get_invoice(invoice_id)


def delete_invoice(svc: Services, actor: Actor, invoice_id: str) -> None:
    """Drafts only. Open, paid, void and uncollectible invoices are never physically deleted."""
    invoice = svc.repo.get_invoice(invoice_id)
    invoice.require_draft()
    run_key = None
    if invoice.subscription_id and invoice.period_start and invoice.period_end:
        run_key = billing_run_pk(invoice.customer_id, invoice.subscription_id, invoice.period_start, invoice.period_end)
    deleted = new_event(invoice.id, "invoice.deleted", actor, clock.iso(clock.now()), from_status="draft")
    with svc.uow() as tx:
        tx.delete_draft(invoice, run_key)
        tx.add_events(deleted)  # purged with the draft's other items; its outbox record stays 30 days
    logger.info("draft deleted", extra={"invoice_id": invoice_id, "actor": actor.principal})


def _write_line(
    svc: Services,
    actor: Actor,
    invoice: Invoice,
    new_lines: list[InvoiceLine],
    changed: InvoiceLine | None,
    removed_id: str | None,
    event_type: str,
    line_id: str,
) -> Invoice:
    totals = compute_totals(new_lines, {ln.id: ln.tax for ln in new_lines if ln.tax})
    now = clock.iso(clock.now())
    event = new_event(invoice.id, event_type, actor, now, data={"line_id": line_id})
    after = replace(
        invoice,
        lines=tuple(new_lines),
        subtotal_cents=totals.subtotal_cents,
        tax_cents=totals.tax_cents,
        total_cents=totals.total_cents,
        updated_at=now,
    )
    with svc.uow() as tx:
        tx.write_line(invoice, after, line=changed, removed_line_id=removed_id)
        tx.add_events(event)
    return svc.repo.get_invoice(invoice.id)


def add_line(svc: Services, actor: Actor, invoice_id: str, data: LineInput) -> Invoice:
    invoice = svc.repo.get_invoice(invoice_id)
    invoice.require_draft()
    if len(invoice.lines) >= MAX_LINES:  # the draft's state, not the request's form: 409
        raise Conflict(f"an invoice has at most {MAX_LINES} lines", code="invoice_full", details={"field": "lines"})
    customer = svc.repo.get_customer(invoice.customer_id)
    rates = check_rates_assignable(svc, {"tax_rate_id": data.tax_rate_id})
    line = _with_previews(svc, invoice, [_new_line(data, clock.iso(clock.now()))], customer, rates)[0]
    return _write_line(svc, actor, invoice, [*invoice.lines, line], line, None, "invoice.line_added", line.id)


def _find_line(invoice: Invoice, line_id: str) -> InvoiceLine:
    for line in invoice.lines:
        if line.id == line_id:
            return line
    raise NotFound(f"line {line_id} not found on invoice {invoice.id}", code="line_not_found")


def update_line(svc: Services, actor: Actor, invoice_id: str, line_id: str, cmd: UpdateLine) -> Invoice:
    changes = cmd.given()
    invoice = svc.repo.get_invoice(invoice_id)
    invoice.require_draft()
    line = _find_line(invoice, line_id)
    merged = LineInput(
        description=str(changes.get("description", line.description)),
        quantity=changes.get("quantity", line.quantity),  # type: ignore[arg-type]
        unit_amount_cents=changes.get("unit_amount_cents", line.unit_amount_cents),  # type: ignore[arg-type]
        tax_rate_id=changes.get("tax_rate_id", line.tax_rate_id),  # type: ignore[arg-type]
        unit_code=_check_unit_code(str(changes.get("unit_code", line.unit_code))),
    )
    validate_line_fields(merged.description, merged.quantity, merged.unit_amount_cents)
    rates = None
    if merged.tax_rate_id != line.tax_rate_id:  # a line keeps a rate archived meanwhile; a new one must be active
        rates = check_rates_assignable(svc, {"tax_rate_id": merged.tax_rate_id})
    customer = svc.repo.get_customer(invoice.customer_id)
    updated = InvoiceLine(
        id=line.id,
        description=merged.description.strip(),
        quantity=merged.quantity,
        unit_amount_cents=merged.unit_amount_cents,
        tax_rate_id=merged.tax_rate_id,
        created_at=line.created_at,
        unit_code=merged.unit_code,
    )
    updated = _with_previews(svc, invoice, [updated], customer, rates)[0]
    new_lines = [updated if ln.id == line_id else ln for ln in invoice.lines]
    return _write_line(svc, actor, invoice, new_lines, updated, None, "invoice.line_updated", line_id)


def delete_line(svc: Services, actor: Actor, invoice_id: str, line_id: str) -> Invoice:
    invoice = svc.repo.get_invoice(invoice_id)
    invoice.require_draft()
    _find_line(invoice, line_id)
    new_lines = [ln for ln in invoice.lines if ln.id != line_id]
    return _write_line(svc, actor, invoice, new_lines, None, line_id, "invoice.line_deleted", line_id)


def check_rates_assignable(svc: Services, rate_ids: Mapping[str, str | None]) -> dict[str, TaxRate] | None:
    """An archived or unknown rate cannot be put on a new or edited draft line (409
    `tax_rate_archived` / 404 `tax_rate_not_found`). A draft line that already carries a rate archived
    meanwhile keeps it, and finalization still uses it (as Stripe does).

    `rate_ids` maps the request field (e.g. "lines.0.tax_rate_id") to the rate put on a line.

    Only with the default tax service: with TAX_SERVICE=http a line's tax_rate_id is the external
    service's tax code, not a TaxRate record (returns None: the preview asks that service).

    Returns the rates read (none when no line names one), for the tax preview to use.
    """
    if svc.settings.tax_service != "rates":
        return None
    wanted = {field: rid for field, rid in rate_ids.items() if rid}
    if not wanted:
        return {}
    found = svc.tax_rates.get_many(sorted(set(wanted.values())))
    for field, rid in wanted.items():
        rate = found.get(rid)
        # a well-formed request that names a missing or archived rate: 404 and 409 like any reference to
        # another item (customer_not_found, ...), not a 422, which would say the request itself is malformed
        if rate is None:
            raise NotFound(f"tax rate {rid} does not exist", code="tax_rate_not_found", details={"field": field})
        if not rate.active:
            raise Conflict(
                f"tax rate {rid} is archived and cannot be put on a line; use an active rate",
                code="tax_rate_archived",
                details={"field": field},
            )
    return found
