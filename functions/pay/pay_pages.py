"""HTML of the public pay pages, and the security headers every pay response carries.

Templates: shared/invoicing/templates/pay.html and pay_neutral.html (Jinja2, autoescaped). The CSS is
inline and allowed by a per-response nonce, so the Content-Security-Policy can forbid everything
else: no scripts, no frames, no third-party requests. Money is formatted with Babel for the
invoice's currency and the customer's locale (documents.format_money).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from jinja2 import Environment, PackageLoader, StrictUndefined

from invoicing import clock
from invoicing.documents import format_day, format_money, format_quantity
from invoicing.domain.invoice import Invoice
from invoicing.settings import Settings
from invoicing.use_cases.payments import PayPage

DEFAULT_LOCALE = "en_US"


@dataclass(frozen=True)
class Neutral:
    status: int
    heading: str
    message: str


# One page for unknown, expired, revoked and used links and for invoices that no longer take
# payments: the same status and the same words, so a guesser learns nothing. It still tells a payer
# who already paid that nothing more is needed.
NOT_ACTIVE = Neutral(
    404,
    "This payment link is not active",
    "The link may have expired or been replaced, or the invoice is already paid. If you have already paid, "
    "the invoice is settled and there is nothing more to do. For a new link, please contact us.",
)
RATE_LIMITED = Neutral(429, "Too many requests", "Please wait a minute and try again.")
FAILED = Neutral(500, "Something went wrong", "Nothing was charged. Please try again in a few minutes.")
UNAVAILABLE = Neutral(
    503, "Payments are unavailable right now", "Nothing was charged. Please try again in a few minutes."
)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("invoicing", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def security_headers(nonce: str, form_action_origins: tuple[str, ...] = ()) -> dict[str, str]:
    form_action = " ".join(["'self'", *form_action_origins])
    csp = "; ".join(
        [
            "default-src 'none'",
            f"style-src 'nonce-{nonce}'",
            # the 303 to the provider's checkout follows a form POST, so its origin is listed too
            f"form-action {form_action}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
    }


def _locale(raw: str | None) -> str:
    try:
        return str(Locale.parse(raw or DEFAULT_LOCALE))
    except (UnknownLocaleError, ValueError, TypeError):
        return DEFAULT_LOCALE


@dataclass(frozen=True)
class _Seller:
    name: str
    email: str
    tax_id: str
    address_lines: list[str]


def _seller(settings: Settings) -> _Seller:
    lines = [part.strip() for part in settings.seller_address.split(",") if part.strip()]
    return _Seller(settings.seller_name, settings.seller_email, settings.seller_tax_id, lines)


@dataclass(frozen=True)
class _InvoiceView:
    number: str
    issue_date: date | None
    due_date: date | None
    customer_name: str
    lines: list[Any]
    subtotal_cents: int
    tax_cents: int
    total_cents: int
    amount_paid_cents: int
    amount_due_cents: int


def _invoice_view(invoice: Invoice) -> _InvoiceView:
    snap = invoice.customer
    return _InvoiceView(
        number=invoice.invoice_number or "",
        issue_date=clock.parse_iso(invoice.finalized_at).date() if invoice.finalized_at else None,
        due_date=invoice.due_date,
        customer_name=snap.name if snap else "",
        lines=list(invoice.lines),
        subtotal_cents=invoice.subtotal_cents,
        tax_cents=invoice.tax_cents,
        total_cents=invoice.total_cents,
        amount_paid_cents=invoice.amount_paid_cents,
        amount_due_cents=invoice.amount_remaining_cents,
    )


def render_invoice_page(
    settings: Settings,
    invoice: Invoice,
    *,
    nonce: str,
    state: str,
    page: PayPage | None = None,
    amount_changed: bool = False,
    paid_amount_cents: int = 0,
) -> str:
    """state: payable | processing (back from checkout, not yet confirmed) | paid (just now)."""
    locale = _locale(invoice.customer.locale if invoice.customer else None)
    view = _invoice_view(invoice)
    return (
        _environment()
        .get_template("pay.html")
        .render(
            html_lang=locale.replace("_", "-"),
            nonce=nonce,
            seller=_seller(settings),
            title=f"Invoice {view.number}",
            invoice=view,
            state=state,
            amount_changed=amount_changed,
            paid_amount_cents=paid_amount_cents,
            pay_action=page.pay_action if page else "none",
            pdf_url=page.pdf_url if page else None,
            bank_transfer_instructions=settings.bank_transfer_instructions,
            money=lambda minor: format_money(minor, invoice.currency, locale),
            quantity=lambda q: format_quantity(Decimal(q), locale),
            day=lambda d: format_day(d, locale),
        )
    )


def render_neutral_page(settings: Settings, neutral: Neutral, *, nonce: str) -> str:
    return (
        _environment()
        .get_template("pay_neutral.html")
        .render(
            html_lang="en",
            nonce=nonce,
            seller=_seller(settings),
            heading=neutral.heading,
            message=neutral.message,
        )
    )
