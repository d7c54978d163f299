"""Request and response models of the admin API (they are also the OpenAPI schema).

Requests forbid unknown fields, so a typo is a 422 that names the field instead of a silent no-op.
Amounts are integer minor units (`*_cents`); quantities are decimal strings ("1.5000").
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    WithJsonSchema,
)

from invoicing.domain import money
from invoicing.domain.events import InvoiceEvent
from invoicing.domain.invoice import Invoice, InvoiceLine
from invoicing.store.cursor import CURSOR_PATTERN
from invoicing.store.repository import Customer
from rules import (
    COUNTRIES,
    CURRENCIES,
    FOREIGN_CURRENCIES,
    LOCALES,
    TIMEZONES,
    decimal_pattern,
)


def _json_integer(value: object) -> object:
    # JSON has one number type: to a JSON Schema validator (and so to every client) 2.0 is the integer 2
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _iso_text(value: object) -> object:
    # a JSON string only: pydantic would also read a number as a Unix timestamp, which the document's
    # format (date, date-time) does not allow
    if isinstance(value, str | date):
        return value
    raise ValueError("must be an ISO 8601 string")


Day = Annotated[date, BeforeValidator(_iso_text)]
Instant = Annotated[datetime, BeforeValidator(_iso_text)]
AwareInstant = Annotated[AwareDatetime, BeforeValidator(_iso_text)]


def without_default(schema: dict[str, Any]) -> None:
    # optional, but null is not a value: the document shows no default: null
    schema.pop("default", None)


def json_int(**bounds: int) -> Any:
    """A JSON integer within `bounds` (ge, gt, le): 2 or 2.0, never "2" nor true. The bounds come before
    the validator that turns 2.0 into 2, so they stay minimum/maximum in the JSON schema."""
    return Annotated[StrictInt, Field(**bounds), BeforeValidator(_json_integer)]  # type: ignore[arg-type]


def decimal_type(name: str, int_digits: int, places: int, *, positive: bool, high: int, description: str) -> Any:
    """A decimal as a string (the exact text the domain parses) or a JSON integer, with the one pattern and
    the bounds that the spec states and this validator enforces (a float cannot carry an exact decimal)."""
    pattern = decimal_pattern(int_digits, places, zero=not positive, maximum=high)
    low = 1 if positive else 0

    def check(value: object) -> str | int:
        value = _json_integer(value)
        if isinstance(value, str) and re.fullmatch(pattern, value):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        raise ValueError(f"{name} must be {description}")

    schema = {
        "anyOf": [
            {"type": "string", "pattern": f"^{pattern}$"},
            {"type": "integer", "minimum": low, "maximum": high},
        ],
        "description": f"{description[0].upper()}{description[1:]}",
    }
    return Annotated[str | int, PlainValidator(check), WithJsonSchema(schema)]


# a page's next_cursor; any text of its pattern is a position in any listing (repository.py)
StartingAfter = Annotated[
    str | None,
    Query(pattern=CURSOR_PATTERN, description="A page's next_cursor: the next page starts after it (created_at~id)"),
]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
Text = Annotated[str, Field(max_length=500)]
# Whitespace spelled out: `\s` means three different sets in Python (str.strip), ECMA-262 (JSON Schema
# validators and generators) and pydantic's Rust regex engine, so a pattern with it admits text the
# server refuses. These escapes read alike in all three.
SPACE = r"\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NOT_BLANK = f"[^{SPACE}]"  # somewhere a character that str.strip() keeps: the text is not blank
_EMAIL_PART = rf"[^@\x00-\x08\x7f{SPACE}]+"
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$")]
LineDescription = Annotated[str, Field(min_length=1, max_length=500, pattern=NOT_BLANK)]
ShortText = Annotated[str, Field(max_length=200)]
# keys are DynamoDB map keys: an empty one cannot be stored (and broke every later read of the item)
Metadata = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=40)], Annotated[str, Field(max_length=500)]],
    Field(max_length=50),
]
Cents = json_int(ge=-money.MAX_UNIT_AMOUNT, le=money.MAX_UNIT_AMOUNT)
Quantity = decimal_type(
    "quantity",
    6,
    4,
    positive=True,
    high=int(money.MAX_QUANTITY),
    description='a decimal string greater than 0 with at most 6 integer digits and 4 decimals ("1.5", "0.25"), or an integer',
)


def code_type(values: tuple[str, ...], what: str) -> Any:
    """One of `values`, spelled exactly so (the document lists them as an enum); the error names the
    rule instead of listing hundreds of values."""
    allowed = frozenset(values)

    def check(value: object) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        raise ValueError(f"must be {what}")

    return Annotated[str, PlainValidator(check), WithJsonSchema({"type": "string", "enum": list(values)})]


Currency = code_type(CURRENCIES, "an ISO 4217 code of a current currency, upper case, e.g. EUR")
ForeignCurrency = code_type(FOREIGN_CURRENCIES, "an ISO 4217 code of a current currency other than USD, e.g. EUR")
Country = code_type(COUNTRIES, "an ISO 3166-1 alpha-2 country code, upper case, e.g. DE")
Locale = code_type(LOCALES, "a CLDR locale identifier, e.g. en_US or de_DE")
Timezone = code_type(TIMEZONES, "an IANA time zone, e.g. Europe/Berlin")
DaysUntilDue = json_int(ge=0, le=3650)
Status = Literal["draft", "open", "paid", "void", "uncollectible"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


PurchaseOrder = Annotated[str, Field(max_length=200, description="The buyer's reference (purchase order number)")]


class CustomFieldIn(Strict):
    key: Annotated[str, Field(min_length=1, max_length=40, pattern=NOT_BLANK)]
    value: Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]


CustomFields = Annotated[
    list[CustomFieldIn],
    Field(max_length=4, description="Up to 4 key/value pairs printed on the invoice, in this order"),
]


class CustomFieldOut(BaseModel):
    key: str
    value: str


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
    currency: Currency = "USD"
    locale: Locale = "en_US"
    timezone: Timezone = "UTC"
    tax_id: Annotated[str, Field(max_length=64)] = ""
    reminders_enabled: StrictBool = True
    metadata: Metadata | None = None


class CustomerUpdate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    email: Email | None = None
    address: AddressIn | None = None
    currency: Currency | None = None
    locale: Locale | None = None
    timezone: Timezone | None = None
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
    description: LineDescription
    quantity: Quantity = "1"
    unit_amount_cents: Cents
    tax_rate_id: Id | None = None


class LineUpdate(Strict):
    description: LineDescription | None = None
    quantity: Quantity | None = None
    unit_amount_cents: Cents | None = None
    tax_rate_id: Id | None = None


class InvoiceCreate(Strict):
    """A billing run's invoice names subscription_id, period_start and period_end together (all or none;
    null is not "none" for them, so that the document's dependentRequired is the whole rule), and
    period_end is not before period_start."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "dependentRequired": {
                "subscription_id": ["period_start", "period_end"],
                "period_start": ["subscription_id", "period_end"],
                "period_end": ["subscription_id", "period_start"],
            }
        },
    )

    customer_id: Id
    currency: Currency | None = None
    lines: Annotated[list[LineIn], Field(max_length=95)] = []
    subscription_id: Id = Field(default=None, json_schema_extra=without_default)  # type: ignore[assignment]
    period_start: Day = Field(default=None, json_schema_extra=without_default)  # type: ignore[assignment]
    period_end: Day = Field(default=None, json_schema_extra=without_default, description="Not before period_start")  # type: ignore[assignment]
    due_date: Day | None = None
    days_until_due: DaysUntilDue | None = None
    memo: Text = ""
    metadata: Metadata | None = None
    purchase_order: PurchaseOrder = ""
    custom_fields: CustomFields = []


class InvoiceUpdate(Strict):
    currency: Currency | None = None
    due_date: Day | None = None
    days_until_due: DaysUntilDue | None = None
    memo: Text | None = None
    metadata: Metadata | None = None
    purchase_order: PurchaseOrder | None = Field(default=None, description="null clears it")
    custom_fields: CustomFields | None = Field(default=None, description="Replaces them all; null or [] clears them")


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
    purchase_order: str = Field(description="The buyer's reference; empty when none")
    custom_fields: list[CustomFieldOut]
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
        purchase_order=inv.purchase_order,
        custom_fields=[CustomFieldOut(key=key, value=value) for key, value in inv.custom_fields],
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
