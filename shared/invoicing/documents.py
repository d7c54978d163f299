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

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

from invoicing import i18n
from invoicing.domain.money import currency_exponent
from invoicing.i18n import N_
from invoicing.templating import environment

DocumentKind = Literal["invoice", "credit_note"]
DocumentStatus = Literal["draft", "open", "paid", "void", "uncollectible"]

_TEMPLATES: dict[str, str] = {"invoice": "invoice.html", "credit_note": "credit_note.html"}
_TITLES: dict[str, tuple[str, str, str]] = {
    # the legal title, with the number, and before the number is assigned
    "invoice": (N_("Invoice"), N_("Invoice %(number)s"), N_("Invoice (draft)")),
    "credit_note": (N_("Credit note"), N_("Credit note %(number)s"), N_("Credit note (draft)")),
}
# Large diagonal marks printed on every page: a draft must never pass for an issued invoice.
_WATERMARKS: dict[str, str] = {"draft": N_("DRAFT"), "void": N_("VOID")}
_BADGES: dict[str, str] = {
    "draft": N_("Draft"),
    "void": N_("Void"),
    "paid": N_("Paid"),
    "uncollectible": N_("Uncollectible"),
}
DEFAULT_ACCENT_COLOR = "#243b53"
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
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
class SellerBranding:
    """The seller's own words and colour on every document (settings: template parameters)."""

    accent_color: str = DEFAULT_ACCENT_COLOR  # "#rrggbb"; anything else prints the default
    bank_details: str = ""
    legal_lines: list[str] = field(default_factory=list)  # registration number, managing directors ...
    footer_text: str = ""


@dataclass(frozen=True)
class CustomField:
    key: str
    value: str


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
    locale: str  # the customer's, e.g. "en_US", "de_DE": the language and the formats (i18n.localize)
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
    purchase_order: str | None = None  # the buyer's reference
    custom_fields: list[CustomField] = field(default_factory=list)
    branding: SellerBranding = field(default_factory=SellerBranding)
    seller_locale: str = i18n.DEFAULT_LOCALE  # language and formats when the customer's locale has none


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


def localization(doc: InvoiceDocument) -> i18n.Localization:
    return i18n.localize(doc.locale, doc.seller_locale)


def document_title(doc: InvoiceDocument, loc: i18n.Localization | None = None) -> str:
    """E.g. "Invoice INV-2025-0042", "Rechnung INV-2025-0042", "Credit note (draft)"."""
    loc = loc or localization(doc)
    _, numbered, draft = _TITLES[doc.kind]
    return loc.gettext(numbered, number=doc.number) if doc.number else loc.gettext(draft)


def document_footer_text(doc: InvoiceDocument) -> str:
    """The text for `render_pdf(..., footer_text=...)`: number and seller on every page."""
    return f"{document_title(doc)} · {doc.seller.name}"


def render_document_html(doc: InvoiceDocument) -> str:
    """The complete, self-contained HTML of the document, in the customer's language. Every value is
    autoescaped; an Arabic document is laid out right to left as a whole (dir="rtl")."""
    template = environment().get_template(_TEMPLATES[doc.kind])
    loc = localization(doc)
    locale = loc.locale

    def money(minor_units: int) -> str:
        return format_money(minor_units, doc.currency, locale)

    # only web links become clickable; anything else (javascript:, file:) is never put in an href
    payment_url = doc.payment_url if _is_web_url(doc.payment_url) else None
    # Inclusive tax is already inside the line amounts: totals add only exclusive tax and mention the
    # included part, so Subtotal + Tax = Total always holds on paper.
    tax_included = sum(row.tax_cents for row in doc.tax_breakdown if row.inclusive)
    # the colour goes into CSS, where autoescaping protects nothing: only #rrggbb passes
    accent = doc.branding.accent_color if _HEX_COLOR.fullmatch(doc.branding.accent_color) else DEFAULT_ACCENT_COLOR
    badge = _BADGES.get(doc.status)
    watermark = _WATERMARKS.get(doc.status)
    return template.render(
        doc=doc,
        tax_added_cents=doc.tax_cents - tax_included,
        tax_included_cents=tax_included,
        title=document_title(doc, loc),
        html_lang=loc.html_lang,
        direction=loc.direction,
        accent_color=accent,
        watermark=loc.gettext(watermark) if watermark else "",
        badge=loc.gettext(badge) if badge else "",
        logo_src=doc.logo_url if doc.logo_url and doc.logo_url.startswith(_LOGO_PREFIXES) else None,
        payment_url=payment_url,
        money=money,
        quantity=lambda value: format_quantity(value, locale),
        rate=lambda value: format_rate(value, locale),
        day=lambda value: format_day(value, locale),
        **loc.jinja_globals(),
    )
