"""HTML of the finance console: the Jinja2 environment, Babel formatting in the person's locale, static
assets under content-hashed names, form parsing, and error codes in plain words.

Templates live beside this module (templates/), static files in static/ (htmx comes from the npm
registry at build time: scripts/prepare_console_assets.py). Asset URLs carry the first 12 hex digits
of the file's SHA-256, so they are served with a one-year immutable cache lifetime.
"""

from __future__ import annotations

import hashlib
import mimetypes
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import ChainableUndefined, Environment, FileSystemLoader

from invoicing import i18n
from invoicing.domain import money
from invoicing.i18n import N_

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
DEFAULT_LOCALE = "en_US"
MAX_FORM_FIELDS = 200
TEXT_ASSETS = (".css", ".js")  # served as text (UTF-8); the API has no binary media types

# The language of the request being served (Page sets it from Accept-Language): Python-side words
# (titles, notices, field errors) are translated with it, as the templates are.
_LANGUAGE: ContextVar[str] = ContextVar("console_locale", default=DEFAULT_LOCALE)


def use_locale(locale: str) -> None:
    _LANGUAGE.set(locale)


def _(message: str, **variables: Any) -> str:
    """`message` in the current request's language (English when its catalog leaves it untranslated)."""
    return console_localization(_LANGUAGE.get()).gettext(message, **variables)


# Our error codes, as a person would say them (the message of the error adds the specifics)
PLAIN_WORDS = {
    "validation_error": N_("Please check this value."),
    "not_found": N_("It no longer exists, or the link is wrong."),
    "invalid_transition": N_("The invoice's status does not allow this any more; the page shows its status now."),
    "invoice_not_draft": N_("Only a draft can be changed; this invoice is already finalized."),
    "invoice_not_open": N_("Only an open invoice takes this action."),
    "concurrent_modification": N_("Someone changed this invoice at the same moment; please look and try again."),
    "sequence_conflict": N_("Another invoice took the number at the same moment; please try again."),
    "service_unavailable": N_(
        "A service we depend on is not answering; nothing was changed. Please try again shortly."
    ),
    "credit_exceeds_creditable": N_("That is more than can still be credited on this invoice."),
    "refund_exceeds_paid": N_("That is more than was paid on this invoice."),
    "amount_exceeds_remaining": N_("That is more than is still due on this invoice."),
    "idempotency_in_progress": N_("This form is still being processed; wait a moment and reload."),
    "idempotency_key_reused": N_("This form was already sent with other values; reload the page and fill it in again."),
}


# The invoice statuses as the console shows them (`_(status | capitalize)` in the templates)
STATUS_LABELS = (N_("Draft"), N_("Open"), N_("Paid"), N_("Void"), N_("Uncollectible"))


def plain_words(code: str, message: str) -> str:
    lead = _(PLAIN_WORDS[code]) if code in PLAIN_WORDS else ""
    return f"{lead} ({message})" if lead and message else (lead or message)


# ---------------------------------------------------------------- locale and formatting
def negotiate_locale(accept_language: str | None) -> str:
    """The person's locale from Accept-Language (q-ordered), one Babel knows; en_US otherwise."""
    wanted: list[tuple[float, str]] = []
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*":
            wanted.append((quality, tag.replace("-", "_")))
    for _, tag in sorted(wanted, key=lambda w: -w[0]):
        try:
            locale = Locale.parse(tag)
        except (UnknownLocaleError, ValueError):
            continue
        if locale.territory is None:  # "de" alone: Babel's likely territory, for dates and currency
            locale = Locale.parse(Locale.parse(tag).language + "_" + (_likely_territory(locale) or "US"))
        return str(locale)
    return DEFAULT_LOCALE


def _likely_territory(locale: Locale) -> str | None:
    from babel.core import get_global

    likely = get_global("likely_subtags").get(locale.language, "")
    parts = likely.split("_")
    return parts[-1] if len(parts) > 1 and parts[-1].isupper() else None


def fmt_money(minor: int | None, currency: str, locale: str) -> str:
    if minor is None:
        return ""
    exponent = money.currency_exponent(currency)
    return format_currency(Decimal(minor).scaleb(-exponent), currency, locale=locale)


def fmt_day(value: date | str | None, locale: str) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    return format_date(value, format="medium", locale=locale)


def fmt_time(value: str | None, locale: str) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return format_datetime(moment, format="medium", tzinfo=moment.tzinfo, locale=locale)


def fmt_quantity(value: Decimal, locale: str) -> str:
    return format_decimal(value, locale=locale)


def major_units(minor: int, currency: str) -> str:
    """12.50 for 1250 EUR: what an amount field shows (no locale: it is read back by parse_amount)."""
    exponent = money.currency_exponent(currency)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


class FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_amount(raw: str | None, currency: str, field: str) -> int:
    """A person's amount ("1,250.50" or "1250.5") in the currency's minor units; FieldError otherwise."""
    text = (raw or "").strip().replace(",", "").replace(" ", "")
    if not text:
        raise FieldError(field, _("Enter an amount."))
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise FieldError(field, _("Enter an amount as digits, like 1250.50.")) from None
    exponent = money.currency_exponent(currency)
    minor = value.scaleb(exponent)
    if not value.is_finite() or minor != minor.to_integral_value():
        raise FieldError(
            field, _("%(currency)s amounts have at most %(places)s decimal places.", currency=currency, places=exponent)
        )
    if minor <= 0 or minor > 10**13:
        raise FieldError(field, _("Enter an amount above zero."))
    return int(minor)


# ---------------------------------------------------------------- forms
@dataclass(frozen=True)
class Form:
    fields: dict[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return self.fields.get(name, [])


def parse_form(body: str | None) -> Form:
    try:
        return Form(parse_qs(body or "", keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))
    except ValueError:  # too many fields, or not text
        return Form({})


def query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "", False)})


# ---------------------------------------------------------------- static assets
@lru_cache(maxsize=1)
def asset_names() -> dict[str, str]:
    """file name -> hashed name ("console.css" -> "console.3f2a9c0d1b2e.css"), for every static file."""
    names: dict[str, str] = {}
    for path in sorted(STATIC.rglob("*")):
        if path.is_file() and path.suffix in TEXT_ASSETS:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            stem, dot, suffix = path.name.partition(".")
            names[path.name] = f"{stem}.{digest}.{suffix}" if dot else f"{stem}.{digest}"
    return names


@lru_cache(maxsize=1)
def assets_by_hashed_name() -> dict[str, Path]:
    files = {path.name: path for path in STATIC.rglob("*") if path.is_file() and path.suffix in TEXT_ASSETS}
    return {hashed: files[name] for name, hashed in asset_names().items()}


def static_file(hashed_name: str) -> tuple[bytes, str] | None:
    path = assets_by_hashed_name().get(hashed_name)
    if path is None:
        return None
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    return path.read_bytes(), content_type


# ---------------------------------------------------------------- templates
@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=ChainableUndefined,  # a missing error key or flag reads as empty
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],  # gettext/_ come per render from the person's language
    )
    env.globals["plain_words"] = plain_words
    env.globals["major_units"] = major_units
    return env


def console_localization(locale: str) -> i18n.Localization:
    """The person's language for the console's words: the catalog of their Accept-Language locale's
    language when we ship one, else English; dates and numbers follow the locale itself."""
    return i18n.localize(locale, seller_locale=DEFAULT_LOCALE)


def render(template: str, **context: Any) -> str:
    locale = context.get("locale", DEFAULT_LOCALE)
    base = context.get("base", "")
    loc = console_localization(locale)
    context.setdefault("html_lang", loc.html_lang)
    context.setdefault("direction", loc.direction)
    helpers = {
        "money": lambda minor, currency: fmt_money(minor, currency, locale),
        "day": lambda value: fmt_day(value, locale),
        "moment": lambda value: fmt_time(value, locale),
        "qty": lambda value: fmt_quantity(value, locale),
        "asset": lambda name: f"{base}/console/static/{asset_names()[name]}",
        "url": lambda path, **params: f"{base}/console{path}" + (f"?{query(**params)}" if query(**params) else ""),
    }
    return environment().get_template(template).render(**helpers, **loc.jinja_globals(), **context)
