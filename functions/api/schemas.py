"""Request and response models of the admin API (they are also the OpenAPI schema).

Requests forbid unknown fields, so a typo is a 422 that names the field instead of a silent no-op.
Amounts are integer minor units (`*_cents`); quantities are decimal strings ("1.5000").
"""

from __future__ import annotations

import copy
import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

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
from invoicing.domain.billing_runs import MAX_INLINE_DRAFTS
from invoicing.domain.events import InvoiceEvent
from invoicing.einvoice.codes import EAS_SCHEMES as _EAS
from invoicing.einvoice.codes import UNIT_CODES as _UNITS
from invoicing.schemas.objects import (  # noqa: F401  (re-exported: routes import them from here)
    AddressOut,
    CustomerOut,
    CustomerSnapshotOut,
    CustomFieldOut,
    InvoiceOut,
    LineOut,
    Status,
    customer_out,
    invoice_out,
    line_out,
)
from invoicing.store.cursor import CURSOR_PATTERN
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


EAS_SCHEMES: tuple[str, ...] = tuple(sorted(_EAS))
UnitCode = Annotated[
    code_type(tuple(sorted(_UNITS)), "a UN/ECE Recommendation 20 unit code, e.g. C62 (unit), HUR (hour), DAY, MON"),
    Field(description="BT-130 the unit of the quantity on e-invoices (UN/ECE Recommendation 20)"),
]
Currency = code_type(CURRENCIES, "an ISO 4217 code of a current currency, upper case, e.g. EUR")
ForeignCurrency = code_type(FOREIGN_CURRENCIES, "an ISO 4217 code of a current currency other than USD, e.g. EUR")
Country = code_type(COUNTRIES, "an ISO 3166-1 alpha-2 country code, upper case, e.g. DE")
Locale = code_type(LOCALES, "a CLDR locale identifier, e.g. en_US or de_DE")
Timezone = code_type(TIMEZONES, "an IANA time zone, e.g. Europe/Berlin")
DaysUntilDue = json_int(ge=0, le=3650)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Patch(Strict):
    """A partial update: the fields sent are the change, and what null means is stated per model, here
    and nowhere else. A field in `keep_on_null` (a required field) ignores null: it stays as it is. A
    field in `clear_to` clears to that empty value. Any other field passes null on (it clears).
    `changes()` is what the use case receives."""

    keep_on_null: ClassVar[frozenset[str]] = frozenset()
    clear_to: ClassVar[dict[str, Any]] = {}

    def changes(self) -> dict[str, Any]:
        changes = self.model_dump(exclude_unset=True)
        for key in [k for k, v in changes.items() if v is None]:
            if key in self.keep_on_null:
                del changes[key]
            elif key in self.clear_to:
                changes[key] = copy.deepcopy(self.clear_to[key])
        return changes


PurchaseOrder = Annotated[str, Field(max_length=200, description="The buyer's reference (purchase order number)")]


class CustomFieldIn(Strict):
    key: Annotated[str, Field(min_length=1, max_length=40, pattern=NOT_BLANK)]
    value: Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]


CustomFields = Annotated[
    list[CustomFieldIn],
    Field(max_length=4, description="Up to 4 key/value pairs printed on the invoice, in this order"),
]


class AddressIn(Strict):
    line1: ShortText = ""
    line2: ShortText = ""
    city: ShortText = ""
    state: ShortText = ""
    postal_code: Annotated[str, Field(max_length=20)] = ""
    country: Annotated[str, Field(max_length=2, pattern=r"^([A-Z]{2})?$")] = ""


EInvoiceFormat = Annotated[
    Literal["none", "ubl", "cii", "xrechnung"],
    Field(
        description="none: PDFs only. ubl (Peppol BIS 3), cii (CII; the PDF becomes Factur-X) or xrechnung: the "
        "customer receives e-invoices, and finalize checks every business term they need (docs/einvoicing.md)"
    ),
]
VatId = Annotated[
    str,
    Field(
        max_length=15,
        pattern=r"^([A-Z]{2}[A-Za-z0-9+*.]{2,13})?$",
        description="BT-48 the buyer's VAT identifier with its country prefix (DE123456789); empty: tax_id is used",
    ),
]
BuyerReference = Annotated[
    str, Field(max_length=200, description="BT-10 buyer reference (the Leitweg-ID of German public buyers)")
]
EasScheme = code_type(EAS_SCHEMES, "a Peppol EAS code, e.g. 0088 (GLN), 0204 (Leitweg-ID), 9930 (DE VAT), EM (e-mail)")


class ElectronicAddressIn(Strict):
    """BT-49: where the buyer receives e-invoices (its Peppol participant id, or an e-mail with scheme EM)."""

    scheme: EasScheme
    identifier: Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]


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
    einvoice_format: EInvoiceFormat = "none"
    vat_id: VatId = ""
    electronic_address: ElectronicAddressIn | None = None
    buyer_reference: BuyerReference = ""


class CustomerUpdate(Patch):
    keep_on_null = frozenset(
        {"name", "email", "currency", "locale", "timezone", "reminders_enabled", "einvoice_format"}
    )
    clear_to = {"tax_id": "", "address": {}, "metadata": {}, "vat_id": "", "buyer_reference": ""}

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    email: Email | None = None
    address: AddressIn | None = None
    currency: Currency | None = None
    locale: Locale | None = None
    timezone: Timezone | None = None
    tax_id: Annotated[str, Field(max_length=64)] | None = None
    reminders_enabled: StrictBool | None = None
    metadata: Metadata | None = None
    einvoice_format: EInvoiceFormat | None = None
    vat_id: VatId | None = Field(default=None, description="null clears it")
    electronic_address: ElectronicAddressIn | None = Field(default=None, description="null clears it")
    buyer_reference: BuyerReference | None = Field(default=None, description="null clears it")

    def changes(self) -> dict[str, Any]:
        changes = super().changes()
        if "electronic_address" in changes:  # stored flat: the pair is set or cleared together
            address = changes.pop("electronic_address") or {"scheme": "", "identifier": ""}
            changes["electronic_address"] = address["identifier"]
            changes["electronic_address_scheme"] = address["scheme"]
        return changes


class LineIn(Strict):
    description: LineDescription
    quantity: Quantity = "1"
    unit_amount_cents: Cents
    tax_rate_id: Id | None = None
    unit_code: UnitCode = "C62"


class LineUpdate(Patch):
    keep_on_null = frozenset({"description", "quantity", "unit_amount_cents", "unit_code"})

    description: LineDescription | None = None
    quantity: Quantity | None = None
    unit_amount_cents: Cents | None = None
    tax_rate_id: Id | None = Field(default=None, description="null removes the line's tax")
    unit_code: UnitCode | None = None

    def changes(self) -> dict[str, Any]:
        changes = super().changes()
        if "quantity" in changes:
            changes["quantity"] = money.parse_quantity(changes["quantity"])
        return changes


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


class BillingRunDraft(InvoiceCreate):
    """One invoice of a billing run: as POST /invoices takes it, with its subscription and period
    required (they make it idempotent: a re-submitted run creates nothing twice)."""

    subscription_id: Id
    period_start: Day
    period_end: Day = Field(description="Not before period_start")


class BillingRunCreate(Strict):
    invoices: Annotated[list[BillingRunDraft], Field(min_length=1, max_length=MAX_INLINE_DRAFTS)]
    finalize: StrictBool = Field(default=False, description="Finalize each invoice once created")


class BillingRunUploadCreate(Strict):
    finalize: StrictBool = Field(default=False, description="Finalize each invoice once created")


class InvoiceUpdate(Patch):
    keep_on_null = frozenset({"currency"})

    currency: Currency | None = None
    due_date: Day | None = None
    days_until_due: DaysUntilDue | None = None
    memo: Text | None = None
    metadata: Metadata | None = None
    purchase_order: PurchaseOrder | None = Field(default=None, description="null clears it")
    custom_fields: CustomFields | None = Field(default=None, description="Replaces them all; null or [] clears them")

    def changes(self) -> dict[str, Any]:
        changes = super().changes()
        if changes.get("custom_fields"):
            changes["custom_fields"] = [(field["key"], field["value"]) for field in changes["custom_fields"]]
        return changes


class VoidRequest(Strict):
    reissue: StrictBool = False


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
