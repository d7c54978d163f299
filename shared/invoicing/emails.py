"""Reminder e-mails: a view model and its rendering (Jinja2), HTML with a plain-text alternative.

Pure: no I/O beyond the package's own templates and catalogs. Templates live in `templates/emails/`:
`reminder_<kind>.txt` / `.html`, falling back to the step's category (`upcoming`, `due`, `overdue`)
for kinds without their own (a configured `second_notice:+7` uses the overdue mail). The text
template also sets the subject and the opening sentence (`{% set subject = ... %}`, `intro`), which
the HTML part reuses. HTML is autoescaped, text is not. The words are the customer's language
(i18n.localize: the customer's locale, else the seller's, else English).

Amounts are formatted for the invoice currency in the customer's locale with Babel (`format_money`:
JPY prints no decimals, KWD three), dates likewise. Only http(s) URLs are ever put in a link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from jinja2 import TemplateNotFound

from invoicing import i18n
from invoicing.documents import format_day, format_money
from invoicing.templating import environment

CATEGORIES = ("upcoming", "due", "overdue", "manual")


@dataclass(frozen=True)
class ReminderMail:
    kind: str
    category: str  # upcoming | due | overdue | manual
    locale: str
    customer_name: str
    invoice_number: str
    currency: str
    amount_due_cents: int
    due_date: date
    today: date
    seller_name: str
    seller_email: str = ""
    seller_locale: str = i18n.DEFAULT_LOCALE  # the words and formats when the customer's locale has none
    payment_url: str | None = None
    payment_link_replaces_earlier: bool = False
    pdf_url: str | None = None
    pdf_url_days: int = 7  # 0: the link lives as long as the payment link (no expiry note in the mail)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _template_base(kind: str, category: str) -> str:
    env = environment()
    for name in (kind, category):
        try:
            env.get_template(f"emails/reminder_{name}.txt")
        except TemplateNotFound:
            continue
        return f"emails/reminder_{name}"
    raise TemplateNotFound(f"emails/reminder_{kind}.txt")


def _web_url(value: str | None) -> str | None:
    return value if value and value.startswith(("https://", "http://")) else None


def render_reminder(mail: ReminderMail) -> RenderedEmail:
    if mail.category not in CATEGORIES:
        raise ValueError(f"unknown reminder category {mail.category!r}")
    loc = i18n.localize(mail.locale, mail.seller_locale)
    locale = loc.locale
    base = _template_base(mail.kind, mail.category)
    context = {
        "kind": mail.kind,
        "category": mail.category,
        "customer_name": mail.customer_name,
        "number": mail.invoice_number,
        "amount_due": format_money(mail.amount_due_cents, mail.currency, locale),
        "due_day": format_day(mail.due_date, locale),
        "days_until_due": (mail.due_date - mail.today).days,
        "days_overdue": (mail.today - mail.due_date).days,
        "payment_url": _web_url(mail.payment_url),
        "link_replaces_earlier": mail.payment_link_replaces_earlier,
        "pdf_url": _web_url(mail.pdf_url),
        "pdf_url_days": mail.pdf_url_days,
        "seller_name": mail.seller_name,
        "seller_email": mail.seller_email,
        "html_lang": loc.html_lang,
        "direction": loc.direction,
        **loc.jinja_globals(),
    }
    env = environment()
    text_module = env.get_template(f"{base}.txt").make_module(context)
    subject = " ".join(str(getattr(text_module, "subject", "")).split())
    if not subject:
        raise ValueError(f"{base}.txt sets no subject")
    intro = str(getattr(text_module, "intro", ""))
    html = env.get_template(f"{base}.html").render(subject=subject, intro=intro, **context)
    return RenderedEmail(subject=subject, text=str(text_module), html=html)
