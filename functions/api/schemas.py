"""Request and response models of the admin API (they are also the OpenAPI schema).

Requests forbid unknown fields, so a typo is a 422 that names the field instead of a silent no-op.
Amounts are integer minor units (`*_cents`); quantities are decimal strings ("1.5000").
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice, InvoiceLine
from invoicing.store.repository import Customer

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
Text = Annotated[str, Field(max_length=500)]
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
ShortText = Annotated[str, Field(max_length=200)]
# keys are DynamoDB map keys: an empty one cannot be stored (and broke every later read of the item)
Metadata = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=40)], Annotated[str, Field(max_length=500)]],
    Field(max_length=50),
]
Cents = Annotated[StrictInt, Field(ge=-(10**12), le=10**12)]
Quantity = Annotated[
    StrictStr | StrictInt | StrictFloat,
    Field(description='Decimal, e.g. "1.5" or 2; at most 6 integer digits and 4 decimals'),
]
Status = Literal["draft", "open", "paid", "void", "uncollectible"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(Strict):
    line1: ShortText = ""
    line2: ShortText = ""
    city: ShortText = ""
    state: ShortText = ""
    postal_code: Annotated[str, Field(max_length=20)] = ""
    country: Annotated[str, Field(max_length=2, pattern=r"^([A-Z]{2})?$")] = ""


class CustomerCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    email: Email
    address: AddressIn | None = None
    currency: Annotated[str, Field(min_length=3, max_length=3)] = "USD"
    locale: Annotated[str, Field(min_length=2, max_length=20)] = "en_US"
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    tax_id: Annotated[str, Field(max_length=64)] = ""
    reminders_enabled: StrictBool = True
    metadata: Metadata | None = None


class CustomerUpdate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    email: Email | None = None
    address: AddressIn | None = None
    currency: Annotated[str, Field(min_length=3, max_length=3)] | None = None
    locale: Annotated[str, Field(min_length=2, max_length=20)] | None = None
    timezone: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    tax_id: Annotated[str, Field(max_length=64)] | None = None
    reminders_enabled: StrictBool | None = None
    metadata: Metadata | None = None


class AddressOut(BaseModel):
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""


class CustomerOut(BaseModel):
    id: str
    name: str
    email: str
    address: AddressOut
    currency: str
    locale: str
    timezone: str
    tax_id: str
    reminders_enabled: bool
    balances: dict[str, int] = Field(description="Customer balance per currency, in minor units (credit > 0)")
    metadata: dict[str, str]
    created_at: str
    updated_at: str


class LineIn(Strict):
    description: Annotated[str, Field(min_length=1, max_length=500)]
    quantity: Quantity = "1"
    unit_amount_cents: Cents
    tax_rate_id: Id | None = None


class LineUpdate(Strict):
    description: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    quantity: Quantity | None = None
    unit_amount_cents: Cents | None = None
    tax_rate_id: Id | None = None


class InvoiceCreate(Strict):
    customer_id: Id
    currency: Annotated[str, Field(min_length=3, max_length=3)] | None = None
    lines: Annotated[list[LineIn], Field(max_length=95)] = []
    subscription_id: Id | None = None
    period_start: date | None = None
    period_end: date | None = None
    due_date: date | None = None
    days_until_due: Annotated[StrictInt, Field(ge=0, le=3650)] | None = None
    memo: Text = ""
    metadata: Metadata | None = None


class InvoiceUpdate(Strict):
    currency: Annotated[str, Field(min_length=3, max_length=3)] | None = None
    due_date: date | None = None
    days_until_due: Annotated[StrictInt, Field(ge=0, le=3650)] | None = None
    memo: Text | None = None
    metadata: Metadata | None = None


class VoidRequest(Strict):
    reissue: StrictBool = False


class LineOut(BaseModel):
    id: str
    description: str
    quantity: str
    unit_amount_cents: int
    amount_cents: int
    tax_rate_id: str | None
    tax_percentage: str | None
    tax_inclusive: bool | None
    tax_cents: int | None
    tax_display_name: str | None


class CustomerSnapshotOut(BaseModel):
    name: str
    email: str
    address: AddressOut
    tax_id: str
    locale: str


class InvoiceOut(BaseModel):
    id: str
    customer_id: str
    status: Status
    currency: str
    invoice_number: str | None
    subscription_id: str | None
    period_start: date | None
    period_end: date | None
    due_date: date | None
    days_until_due: int
    memo: str
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    amount_paid_cents: int
    amount_remaining_cents: int
    credited_cents: int = Field(default=0, description="Sum of the invoice's issued credit notes")
    pre_payment_credited_cents: int = Field(default=0, description="Credit that reduced the amount due")
    post_payment_credited_cents: int = Field(default=0, description="Credit beyond the amount due (balance, refund)")
    refunded_cents: int = Field(default=0, description="Refunded through credit notes")
    starting_balance_cents: int = Field(default=0, description="Customer balance (credit) before finalization")
    applied_balance_cents: int = Field(default=0, description="Customer balance applied at finalization")
    usd_total_cents: int | None
    fx_rate: str | None
    fx_rate_source: str | None
    fx_rate_as_of: str | None
    customer: CustomerSnapshotOut | None
    lines: list[LineOut] | None = Field(description="Omitted (null) in list responses")
    pdf_status: str | None
    reissue_of: str | None = Field(description="The voided invoice this draft corrects")
    reissued_as: str | None = Field(description="Void with reissue: the id of the corrected draft made from this one")
    metadata: dict[str, str]
    version: int
    created_at: str
    updated_at: str
    finalized_at: str | None
    voided_at: str | None
    paid_at: str | None
    marked_uncollectible_at: str | None
    payment_url: str | None = Field(
        default=None, description="Only in the finalize response: the payment link, shown this once"
    )


class InvoiceList(BaseModel):
    data: list[InvoiceOut]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as starting_after to get the next page")


class EventOut(BaseModel):
    id: str
    type: str
    actor: str
    at: str
    request_id: str
    from_status: str | None
    to_status: str | None
    data: dict[str, Any]


class EventList(BaseModel):
    data: list[EventOut]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    error: ErrorDetail


def error_responses(*codes: int, success: int | tuple[int, ...] = 200) -> dict[int, dict[str, Any]]:
    """The documented responses of a route: its success status(es) plus 401, 403, 415 and `codes`.

    Passing `responses=` to a route replaces Powertools' default success entry, so the success
    statuses are listed here too; without them no 2xx (nor its body schema) would be in the OpenAPI
    document. A success entry without `content` is filled from the route's return annotation; 204 has
    no body.
    """
    documented: dict[int, dict[str, Any]] = {
        ok: {"description": "No content", "content": {}} if ok == 204 else {"description": "Success"}
        for ok in (success if isinstance(success, tuple) else (success,))
    }
    descriptions = {
        400: "Bad request",
        401: "Missing or invalid API key",
        403: "API key lacks the scope",
        404: "Not found",
        409: "Conflict with the invoice's state",
        415: "The request body is not JSON (send Content-Type: application/json)",
        422: "Invalid input",
        503: "A dependency is unavailable; nothing was changed",
    }
    documented.update(
        {
            c: {"description": descriptions[c], "content": {"application/json": {"model": ErrorOut}}}
            for c in (401, 403, 415, *codes)
        }
    )
    return documented


# ---------------------------------------------------------------- domain -> response
def customer_out(c: Customer) -> CustomerOut:
    return CustomerOut(
        id=c.id,
        name=c.name,
        email=c.email,
        address=AddressOut(**c.address.__dict__),
        currency=c.currency,
        locale=c.locale,
        timezone=c.timezone,
        tax_id=c.tax_id,
        reminders_enabled=c.reminders_enabled,
        balances=c.balances,
        metadata=c.metadata,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def line_out(line: InvoiceLine) -> LineOut:
    tax = line.tax
    return LineOut(
        id=line.id,
        description=line.description,
        quantity=f"{line.quantity:.4f}",
        unit_amount_cents=line.unit_amount_cents,
        amount_cents=line.amount_cents,
        tax_rate_id=tax.tax_rate_id if tax else line.tax_rate_id,
        tax_percentage=f"{tax.percentage:.4f}" if tax else None,
        tax_inclusive=tax.inclusive if tax else None,
        tax_cents=tax.tax_cents if tax else None,
        tax_display_name=(tax.display_name or None) if tax else None,
    )


def invoice_out(inv: Invoice, *, with_lines: bool = True) -> InvoiceOut:
    snap = inv.customer
    return InvoiceOut(
        id=inv.id,
        customer_id=inv.customer_id,
        status=inv.status.value,
        currency=inv.currency,
        invoice_number=inv.invoice_number,
        subscription_id=inv.subscription_id,
        period_start=inv.period_start,
        period_end=inv.period_end,
        due_date=inv.due_date,
        days_until_due=inv.days_until_due,
        memo=inv.memo,
        subtotal_cents=inv.subtotal_cents,
        tax_cents=inv.tax_cents,
        total_cents=inv.total_cents,
        amount_paid_cents=inv.amount_paid_cents,
        amount_remaining_cents=inv.amount_remaining_cents,
        credited_cents=inv.credited_cents,
        pre_payment_credited_cents=inv.pre_payment_credited_cents,
        post_payment_credited_cents=inv.post_payment_credited_cents,
        refunded_cents=inv.refunded_cents,
        starting_balance_cents=inv.starting_balance_cents,
        applied_balance_cents=inv.applied_balance_cents,
        usd_total_cents=inv.usd_total_cents,
        fx_rate=str(inv.fx_rate) if inv.fx_rate is not None else None,
        fx_rate_source=inv.fx_rate_source,
        fx_rate_as_of=inv.fx_rate_as_of,
        customer=CustomerSnapshotOut(
            name=snap.name,
            email=snap.email,
            address=AddressOut(**snap.address.__dict__),
            tax_id=snap.tax_id,
            locale=snap.locale,
        )
        if snap
        else None,
        lines=[line_out(ln) for ln in inv.lines] if with_lines else None,
        pdf_status=inv.pdf_status,
        reissue_of=inv.reissue_of,
        reissued_as=inv.reissued_as,
        metadata=inv.metadata,
        version=inv.version,
        created_at=inv.created_at,
        updated_at=inv.updated_at,
        finalized_at=inv.finalized_at,
        voided_at=inv.voided_at,
        paid_at=inv.paid_at,
        marked_uncollectible_at=inv.marked_uncollectible_at,
    )


def event_out(ev: InvoiceEvent) -> EventOut:
    return EventOut(
        id=ev.id,
        type=ev.type,
        actor=ev.actor,
        at=ev.at,
        request_id=ev.request_id,
        from_status=ev.from_status,
        to_status=ev.to_status,
        data=dict(ev.data),
    )
