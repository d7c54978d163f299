"""The invoice aggregate: statuses, the legal transitions, lines, frozen tax results and totals.

Pure: no I/O, no AWS. The store persists these objects; use cases apply these rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from invoicing.domain import money
from invoicing.domain.events import Actor, InvoiceEvent, new_event
from invoicing.errors import Conflict, InvalidTransition, InvoiceNotDraft, ValidationFailed

MAX_LINES = 500
MAX_DESCRIPTION = 500
DEFAULT_UNIT_CODE = "C62"  # UN/ECE Rec 20 "one": a unit (lines written before unit codes read as it)


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


# draft -> open (finalize); open -> paid | void | uncollectible; uncollectible -> paid | void.
# Nothing else, and nothing goes back.
TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.DRAFT: frozenset({InvoiceStatus.OPEN}),
    InvoiceStatus.OPEN: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE}),
    InvoiceStatus.UNCOLLECTIBLE: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID}),
    InvoiceStatus.PAID: frozenset(),
    InvoiceStatus.VOID: frozenset(),
}


def can_transition(source: InvoiceStatus, target: InvoiceStatus) -> bool:
    return target in TRANSITIONS[source]


def sources_of(target: InvoiceStatus) -> frozenset[InvoiceStatus]:
    """Every status from which `target` may be reached (used as the store's write condition)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def ensure_transition(source: InvoiceStatus, target: InvoiceStatus) -> None:
    if not can_transition(source, target):
        if source is InvoiceStatus.DRAFT:
            from invoicing.errors import InvoiceNotOpen

            raise InvoiceNotOpen(f"invoice is a draft; it cannot become {target.value}")
        raise InvalidTransition(f"an invoice that is {source.value} cannot become {target.value}")


@dataclass(frozen=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""

    def lines(self) -> list[str]:
        city_line = " ".join(p for p in (self.postal_code, self.city) if p)
        if self.state:
            city_line = f"{city_line}, {self.state}" if city_line else self.state
        return [p for p in (self.line1, self.line2, city_line, self.country) if p]


@dataclass(frozen=True)
class CustomerSnapshot:
    """The customer as it was at finalization; later customer edits never reach an issued invoice."""

    name: str
    email: str
    address: Address
    tax_id: str = ""
    locale: str = "en_US"


@dataclass(frozen=True)
class LineTax:
    """One line's tax result: which rate, the percentage used, inclusive or not, and the tax."""

    tax_rate_id: str | None
    percentage: Decimal
    inclusive: bool
    tax_cents: int
    display_name: str = ""

    @classmethod
    def none(cls) -> LineTax:
        return cls(tax_rate_id=None, percentage=Decimal("0"), inclusive=False, tax_cents=0)


@dataclass(frozen=True)
class InvoiceLine:
    id: str
    description: str
    quantity: Decimal
    unit_amount_cents: int
    tax_rate_id: str | None = None
    created_at: str = ""
    tax: LineTax | None = None  # the draft preview, or the frozen result once finalized
    unit_code: str = DEFAULT_UNIT_CODE  # BT-130, UN/ECE Recommendation 20

    @property
    def amount_cents(self) -> int:
        return money.line_amount(self.quantity, self.unit_amount_cents)


def validate_line_fields(description: str, quantity: Decimal, unit_amount_cents: int) -> None:
    if not description or not description.strip():
        raise ValidationFailed("description must not be empty", details={"field": "description"})
    if len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(
            f"description must be at most {MAX_DESCRIPTION} characters", details={"field": "description"}
        )
    money.check_unit_amount(unit_amount_cents)
    if quantity <= 0 or quantity > money.MAX_QUANTITY:
        raise ValidationFailed("quantity is out of range", details={"field": "quantity"})


@dataclass(frozen=True)
class Totals:
    subtotal_cents: int
    tax_cents: int
    total_cents: int


def compute_totals(lines: list[InvoiceLine], taxes: dict[str, LineTax]) -> Totals:
    """subtotal = sum of line amounts; tax = sum of per-line (already rounded) tax;
    total = subtotal + exclusive tax (inclusive tax is already inside the amounts)."""
    subtotal = sum(line.amount_cents for line in lines)
    tax = 0
    exclusive = 0
    for line in lines:
        result = taxes.get(line.id)
        if result is None:
            continue
        tax += result.tax_cents
        if not result.inclusive:
            exclusive += result.tax_cents
    return Totals(subtotal_cents=subtotal, tax_cents=tax, total_cents=subtotal + exclusive)


def tax_for_line(amount_cents: int, percentage: Decimal, inclusive: bool) -> int:
    return money.inclusive_tax(amount_cents, percentage) if inclusive else money.exclusive_tax(amount_cents, percentage)


@dataclass(frozen=True)
class Invoice:
    id: str
    customer_id: str
    status: InvoiceStatus
    currency: str
    created_at: str
    updated_at: str
    version: int = 1
    subscription_id: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    due_date: date | None = None
    days_until_due: int = 30
    memo: str = ""
    invoice_number: str | None = None
    finalized_at: str | None = None
    voided_at: str | None = None
    paid_at: str | None = None
    marked_uncollectible_at: str | None = None
    subtotal_cents: int = 0
    tax_cents: int = 0
    total_cents: int = 0
    amount_paid_cents: int = 0
    amount_remaining_cents: int = 0
    # derived by credit notes and the customer balance (docs/decisions.md "Credit notes")
    credited_cents: int = 0
    pre_payment_credited_cents: int = 0
    post_payment_credited_cents: int = 0
    refunded_cents: int = 0
    starting_balance_cents: int = 0
    applied_balance_cents: int = 0
    usd_total_cents: int | None = None
    fx_rate: Decimal | None = None
    fx_rate_source: str | None = None
    fx_rate_as_of: str | None = None
    customer: CustomerSnapshot | None = None
    line_taxes: dict[str, LineTax] = field(default_factory=dict)
    lines: tuple[InvoiceLine, ...] = ()
    pdf_status: str | None = None
    pdf_s3_key: str | None = None
    pdf_requested_at: str | None = None
    pdf_rendered_at: str | None = None
    reissue_of: str | None = None
    reissued_as: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    purchase_order: str = ""  # the buyer's reference, printed on the documents
    custom_fields: tuple[tuple[str, str], ...] = ()  # (key, value) printed on the documents, at most 4
    # The invoice's one payment link that may still be active (docs/data-model.md, "Payment links"),
    # kept on the header by every write that issues, revokes or uses a link, so a reminder knows
    # without reading the links. `links_tracked` is False on invoices finalized before it was kept:
    # their readers query the links.
    links_tracked: bool = False
    active_link_id: str | None = None
    active_link_expires_at: str | None = None

    @property
    def is_draft(self) -> bool:
        return self.status is InvoiceStatus.DRAFT

    def require_draft(self) -> None:
        if not self.is_draft:
            raise InvoiceNotDraft(f"invoice {self.id} is {self.status.value}; only drafts can be changed")

    def with_lines(self, lines: list[InvoiceLine]) -> Invoice:
        return replace(self, lines=tuple(lines))

    def link_active(self, now: str) -> bool | None:
        """Whether the invoice has a payment link that is active at `now` (ISO instant), from the
        header alone; None when the header does not track its links (read them)."""
        return LinkState.of(self).link_active(now)

    def effective_taxes(self) -> dict[str, LineTax]:
        """Frozen results once finalized; the lines' own previews while a draft."""
        if not self.is_draft:
            return dict(self.line_taxes)
        return {line.id: line.tax for line in self.lines if line.tax is not None}

    def draft_totals(self) -> Totals:
        return compute_totals(list(self.lines), self.effective_taxes())


_STAMPS = {InvoiceStatus.VOID: "voided_at", InvoiceStatus.UNCOLLECTIBLE: "marked_uncollectible_at"}


def transitioned(invoice: Invoice, target: InvoiceStatus, at: str, *, reissued_as: str | None = None) -> Invoice:
    """An issued invoice moved to `target` (void, uncollectible) at `at`: the status, its timestamp
    and the next version. Raises when the state machine does not allow it."""
    ensure_transition(invoice.status, target)
    stamps: dict[str, Any] = {_STAMPS[target]: at}
    return replace(
        invoice,
        status=target,
        updated_at=at,
        version=invoice.version + 1,
        reissued_as=reissued_as or invoice.reissued_as,
        **stamps,
    )


def mark_uncollectible(
    invoice: Invoice, actor: Actor, at: str, *, data: dict[str, object] | None = None
) -> tuple[Invoice, InvoiceEvent]:
    """open -> uncollectible (bad debt; it may still be paid or voided later), and its audit event.
    The one rule for both ways there: an admin's write-off and dunning (`data` says why)."""
    after = transitioned(invoice, InvoiceStatus.UNCOLLECTIBLE, at)
    event = new_event(
        invoice.id,
        "invoice.marked_uncollectible",
        actor,
        at,
        from_status=invoice.status.value,
        to_status=InvoiceStatus.UNCOLLECTIBLE.value,
        data=data,
    )
    return after, event


def ensure_finalizable(invoice: Invoice, totals: Totals) -> None:
    invoice.require_draft()
    # the draft's content, not the (empty) request, stands in the way: 409 like any other state
    if not invoice.lines:
        raise Conflict(
            "an invoice needs at least one line to be finalized",
            code="invoice_has_no_lines",
            details={"field": "lines"},
        )
    if totals.total_cents < 0:
        raise Conflict(
            "the invoice total is below zero; add lines or remove discounts",
            code="invoice_total_below_zero",
            details={"field": "lines"},
        )


def settle_if_nothing_due(finalized: Invoice) -> Invoice:
    """An invoice finalized with nothing to pay (a zero total, e.g. a free period from a billing run)
    is paid at once, as Stripe does: otherwise it would sit open for ever, be reminded of and dunned
    for 0.00, and get a payment link nobody can use. (The customer balance covering the whole amount
    is settled the same way where it is applied.)"""
    if finalized.status is InvoiceStatus.OPEN and finalized.amount_remaining_cents == 0:
        return replace(finalized, status=InvoiceStatus.PAID, paid_at=finalized.finalized_at)
    return finalized


def due_date_for(finalized_on: date, days_until_due: int, explicit: date | None) -> date:
    from datetime import timedelta

    return explicit if explicit is not None else finalized_on + timedelta(days=days_until_due)


def parse_date(raw: str, field_name: str) -> date:
    try:
        return date.fromisoformat(raw)
    except (TypeError, ValueError):
        raise ValidationFailed(f"{field_name} must be a date YYYY-MM-DD", details={"field": field_name}) from None


# ---------------------------------------------------------------- the buyer's references
MAX_PURCHASE_ORDER = 200
MAX_CUSTOM_FIELDS = 4
MAX_CUSTOM_FIELD_KEY = 40
MAX_CUSTOM_FIELD_VALUE = 200


def check_purchase_order(value: str | None) -> str:
    text = (value or "").strip()
    if len(text) > MAX_PURCHASE_ORDER:
        raise ValidationFailed(
            f"purchase_order must be at most {MAX_PURCHASE_ORDER} characters", details={"field": "purchase_order"}
        )
    return text


def check_custom_fields(fields: list[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    """At most 4 (key, value) pairs, both non-blank; printed in the order given."""
    fields = list(fields or [])
    if len(fields) > MAX_CUSTOM_FIELDS:
        raise ValidationFailed(f"at most {MAX_CUSTOM_FIELDS} custom_fields", details={"field": "custom_fields"})
    checked = []
    for index, (key, value) in enumerate(fields):
        key, value = key.strip(), value.strip()
        if not key or len(key) > MAX_CUSTOM_FIELD_KEY:
            raise ValidationFailed(
                f"custom_fields.{index}.key must be 1 to {MAX_CUSTOM_FIELD_KEY} characters, not blank",
                details={"field": f"custom_fields.{index}.key"},
            )
        if not value or len(value) > MAX_CUSTOM_FIELD_VALUE:
            raise ValidationFailed(
                f"custom_fields.{index}.value must be 1 to {MAX_CUSTOM_FIELD_VALUE} characters, not blank",
                details={"field": f"custom_fields.{index}.value"},
            )
        checked.append((key, value))
    return tuple(checked)


@dataclass(frozen=True)
class LinkState:
    """What issuing or revoking payment links needs of an invoice's header: whether it takes
    payments, its due date (a link's expiry) and the one link it names. Read from the header, or
    carried by a reminder job that read it (the job's claim checked it is still the header's)."""

    invoice_id: str
    status: InvoiceStatus
    due_date: date | None
    links_tracked: bool
    link_id: str | None
    link_expires_at: str | None

    @classmethod
    def of(cls, invoice: Invoice) -> LinkState:
        return cls(
            invoice_id=invoice.id,
            status=invoice.status,
            due_date=invoice.due_date,
            links_tracked=invoice.links_tracked,
            link_id=invoice.active_link_id,
            link_expires_at=invoice.active_link_expires_at,
        )

    def link_active(self, now: str) -> bool | None:
        """Whether the link the header names is active at `now` (ISO instant): named and not expired
        (a header names its link only while it is unused and unrevoked, docs/data-model.md). None
        when the header does not track its links (read them)."""
        if not self.links_tracked:
            return None
        return self.link_id is not None and (self.link_expires_at or "") > now
