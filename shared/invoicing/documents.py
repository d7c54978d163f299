"""The printable document: a view model of an invoice or credit note, and its HTML.

Pure: no I/O beyond reading the package's own templates, no AWS. The PDF worker maps the stored
invoice onto `InvoiceDocument`, calls `render_document_html`, and hands the HTML to the Chromium
adapter. Amounts stay integers in minor units until `format_money` turns them into text for the
document's currency and locale (Babel/CLDR), so JPY prints no decimals and KWD prints three.

The HTML is self-contained (inline CSS, the bundled Open Sans, no scripts): the renderer gives
Chromium no network. For the same reason a logo is only shown when `logo_url` is a `data:image/...`
URL; the caller inlines a remote logo if it wants one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import Environment, PackageLoader, StrictUndefined

from invoicing.domain.money import currency_exponent

DocumentKind = Literal["invoice", "credit_note"]
DocumentStatus = Literal["draft", "open", "paid", "void", "uncollectible"]

_TEMPLATES: dict[str, str] = {"invoice": "invoice.html", "credit_note": "credit_note.html"}
_TITLES: dict[str, str] = {"invoice": "Invoice", "credit_note": "Credit note"}
# Large diagonal marks printed on every page: a draft must never pass for an issued invoice.
_WATERMARKS: dict[str, str] = {"draft": "DRAFT", "void": "VOID"}
_LOGO_PREFIXES = (
    "data:image/png",
    "data:image/jpeg",
    "data:image/gif",
    "data:image/webp",
    "data:image/svg+xml",
)


@dataclass(frozen=True)
class Party:
    """The seller or the customer as printed (the customer is the snapshot taken at finalization)."""

    name: str
    email: str = ""
    address_lines: list[str] = field(default_factory=list)
    tax_id: str = ""


@dataclass(frozen=True)
class DocumentLine:
    description: str
    quantity: Decimal
    unit_amount_cents: int
    amount_cents: int
    tax_rate_label: str | None = None
    tax_cents: int = 0


@dataclass(frozen=True)
class TaxBreakdownRow:
    """One tax rate's total: e.g. "VAT 19 %" on 1,000.00 taxable gives 190.00 (or 159.66 inclusive)."""

    label: str
    rate_percent: Decimal
    inclusive: bool
    taxable_cents: int
    tax_cents: int


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything a printed invoice or credit note shows. Amounts are minor units of `currency`."""

    kind: DocumentKind
    number: str | None  # None for a draft: the number is assigned at finalization
    status: DocumentStatus
    currency: str  # ISO 4217
    locale: str  # e.g. "en_US", "de_DE": number, money and date formats
    issue_date: date | None
    due_date: date | None
    seller: Party
    customer: Party
    lines: list[DocumentLine]
    tax_breakdown: list[TaxBreakdownRow]
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    amount_paid_cents: int = 0
    amount_due_cents: int = 0
    payment_url: str | None = None
    memo: str | None = None
    logo_url: str | None = None  # shown only as a data:image/... URL (Chromium has no network)
    reference_number: str | None = None  # for a credit note: the number of the invoice it credits


def format_money(minor_units: int, currency: str, locale: str) -> str:
    """Minor units -> localized text with the ISO 4217 exponent: USD 123456 en_US -> "$1,234.56",
    EUR de_DE -> "1.234,56\u00a0€" (CLDR puts a no-break space before the sign), JPY 1235 -> "¥1,235",
    KWD 1234 -> "KWD1.234"."""
    amount = Decimal(minor_units).scaleb(-currency_exponent(currency))
    return format_currency(amount, currency, locale=locale)


def format_quantity(quantity: Decimal, locale: str) -> str:
    """2.0000 -> "2", 1.5000 -> "1.5" (de_DE "1,5"): stored quantities carry 4 places, print what matters."""
    return format_decimal(_trim(quantity), locale=locale, decimal_quantization=False)


def format_rate(rate_percent: Decimal, locale: str) -> str:
    """19 -> "19%" (de_DE "19\u00a0%"), 8.875 -> "8.875%"."""
    return format_percent(_trim(rate_percent) / 100, locale=locale, decimal_quantization=False)


def format_day(value: date | None, locale: str) -> str:
    return format_date(value, "medium", locale=locale) if value is not None else ""


def _is_web_url(value: str | None) -> bool:
    return bool(value) and str(value).startswith(("https://", "http://"))


def _trim(value: Decimal) -> Decimal:
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def document_title(doc: InvoiceDocument) -> str:
    """E.g. "Invoice INV-2025-0042", "Credit note CN-2025-0003", "Invoice (draft)"."""
    title = _TITLES[doc.kind]
    return f"{title} {doc.number}" if doc.number else f"{title} (draft)"


def document_footer_text(doc: InvoiceDocument) -> str:
    """The text for `render_pdf(..., footer_text=...)`: number and seller on every page."""
    return f"{document_title(doc)} · {doc.seller.name}"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Built once per process (Lambda container): template compilation is the costly part.
    return Environment(
        loader=PackageLoader("invoicing", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_document_html(doc: InvoiceDocument) -> str:
    """The complete, self-contained HTML of the document. Every value is autoescaped."""
    template = _environment().get_template(_TEMPLATES[doc.kind])
    locale = doc.locale

    def money(minor_units: int) -> str:
        return format_money(minor_units, doc.currency, locale)

    # only web links become clickable; anything else (javascript:, file:) is never put in an href
    payment_url = doc.payment_url if _is_web_url(doc.payment_url) else None
    # Inclusive tax is already inside the line amounts: totals add only exclusive tax and mention the
    # included part, so Subtotal + Tax = Total always holds on paper.
    tax_included = sum(row.tax_cents for row in doc.tax_breakdown if row.inclusive)
    return template.render(
        doc=doc,
        tax_added_cents=doc.tax_cents - tax_included,
        tax_included_cents=tax_included,
        title=document_title(doc),
        html_lang=locale.replace("_", "-"),
        watermark=_WATERMARKS.get(doc.status, ""),
        logo_src=doc.logo_url if doc.logo_url and doc.logo_url.startswith(_LOGO_PREFIXES) else None,
        payment_url=payment_url,
        money=money,
        quantity=lambda value: format_quantity(value, locale),
        rate=lambda value: format_rate(value, locale),
        day=lambda value: format_day(value, locale),
    )
