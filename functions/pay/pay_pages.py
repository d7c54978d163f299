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
from typing import Any

from invoicing import clock, i18n
from invoicing.documents import format_day, format_money, format_quantity
from invoicing.domain.invoice import Invoice
from invoicing.i18n import N_
from invoicing.settings import Settings
from invoicing.templating import environment
from invoicing.use_cases.pay_page import PayPage


@dataclass(frozen=True)
class Neutral:
    status: int
    heading: str
    message: str


# One page for unknown, expired, revoked and used links and for invoices that no longer take
# payments: the same status and the same words, so a guesser learns nothing. It still tells a payer
# who already paid that nothing more is needed.
# The words are message ids, translated when the page is rendered (the seller's language: a neutral
# page knows no invoice, so no customer).
NOT_ACTIVE = Neutral(
    404,
    N_("This payment link is not active"),
    N_(
        "The link may have expired or been replaced, or the invoice is already paid. If you have already paid, "
        "the invoice is settled and there is nothing more to do. For a new link, please contact us."
    ),
)
RATE_LIMITED = Neutral(429, N_("Too many requests"), N_("Please wait a minute and try again."))
FAILED = Neutral(500, N_("Something went wrong"), N_("Nothing was charged. Please try again in a few minutes."))
UNAVAILABLE = Neutral(
    503, N_("Payments are unavailable right now"), N_("Nothing was charged. Please try again in a few minutes.")
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
    purchase_order: str
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
        purchase_order=invoice.purchase_order,
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
    loc = i18n.localize(invoice.customer.locale if invoice.customer else None, settings.seller_locale)
    locale = loc.locale
    view = _invoice_view(invoice)
    return (
        environment()
        .get_template("pay.html")
        .render(
            html_lang=loc.html_lang,
            direction=loc.direction,
            nonce=nonce,
            seller=_seller(settings),
            title=loc.gettext("Invoice %(number)s", number=view.number),
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
            **loc.jinja_globals(),
        )
    )


def render_neutral_page(settings: Settings, neutral: Neutral, *, nonce: str) -> str:
    loc = i18n.localize(None, settings.seller_locale)
    return (
        environment()
        .get_template("pay_neutral.html")
        .render(
            html_lang=loc.html_lang,
            direction=loc.direction,
            nonce=nonce,
            seller=_seller(settings),
            heading=loc.gettext(neutral.heading),
            message=loc.gettext(neutral.message),
            **loc.jinja_globals(),
        )
    )
