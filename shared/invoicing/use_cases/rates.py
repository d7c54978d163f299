"""Tax rates and exchange rates: the reference data finalization reads (see docs/money.md).

Who: reads need invoices:read, writes invoices:write (the authorizer maps GET/other methods).

create_tax_rate — a new, unused rate. percentage is a decimal 0..100 with at most 4 decimals;
  country is an ISO 3166-1 alpha-2 code.
update_tax_rate — the terms (display_name, description, percentage, inclusive, country, jurisdiction)
  may change only while the rate has never been used on a finalized invoice; otherwise 409
  `tax_rate_in_use` (archive it and create a new one). `active` (archive / unarchive) is always
  allowed. A field sent with its current value is not a change. The "never used" condition is
  checked by DynamoDB in the edit's own write, so no edit lands once a finalization marked the rate.
(An archived or unknown rate cannot be put on a new or edited draft line: use_cases/invoices.py.)
put_exchange_rate / get_exchange_rate — USD per one unit of a currency. USD itself is the base:
  its rate is always 1 (PUT is a 422, GET answers the identity). An invoice locks the rate at
  finalization and is never re-converted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from invoicing import clock
from invoicing.changes import UNSET, Changes, Unset
from invoicing.domain import money
from invoicing.einvoice import codes
from invoicing.errors import Conflict, NotFound, ValidationFailed
from invoicing.ids import new_id
from invoicing.observability import logger
from invoicing.services import Services
from invoicing.store.tax_rates import ExchangeRate, TaxRate

BASE_CURRENCY = "USD"
TERMS = (
    "display_name",
    "description",
    "percentage",
    "inclusive",
    "country",
    "jurisdiction",
    "vat_category",
    "exemption_reason_code",
    "exemption_reason",
)
# BT-118: UNTDID 5305 as EN 16931 restricts it (einvoice/model.py VatCategory)
VAT_CATEGORIES = ("S", "Z", "E", "AE", "K", "G", "O", "L", "M")
MAX_EXEMPTION_REASON = 500
MAX_DISPLAY_NAME = 100
MAX_JURISDICTION = 200
MAX_DESCRIPTION = 500

# Babel's territory list also holds ISO 3166's exceptionally reserved codes (AC, CP, DG, EA, IC, TA),
# CLDR's groupings (EU, EZ, UN, QO), user-assigned codes (XA, XB, XK) and the unknown region (ZZ).
_NOT_ISO_3166_ASSIGNED = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ"}
)


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    from babel import Locale

    return frozenset(
        code
        for code in Locale("en").territories
        if isinstance(code, str) and len(code) == 2 and code.isalpha() and code not in _NOT_ISO_3166_ASSIGNED
    )


def _country(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().upper() not in _countries():
        raise ValidationFailed(
            f"country {value!r} is not an ISO 3166-1 alpha-2 country code (e.g. DE, US)", details={"field": "country"}
        )
    return value.strip().upper()


def _text(value: object, field: str, max_length: int, *, required: bool = False) -> str | None:
    text = str(value).strip() if value is not None else ""
    if required and not text:
        raise ValidationFailed(f"{field} must not be empty", details={"field": field})
    if len(text) > max_length:
        raise ValidationFailed(f"{field} must be at most {max_length} characters", details={"field": field})
    return text or None


def _clean_terms(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validates the fields present in `changes`; returns domain values (None clears an optional field)."""
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "display_name":
            clean[key] = _text(value, key, MAX_DISPLAY_NAME, required=True)
        elif key == "percentage":
            clean[key] = money.parse_percent(value)
        elif key in ("inclusive", "active"):
            if not isinstance(value, bool):
                raise ValidationFailed(f"{key} must be true or false", details={"field": key})
            clean[key] = value
        elif key == "country":
            clean[key] = _country(value)
        elif key == "jurisdiction":
            clean[key] = _text(value, key, MAX_JURISDICTION)
        elif key == "description":
            clean[key] = _text(value, key, MAX_DESCRIPTION)
        elif key == "vat_category":
            if value not in VAT_CATEGORIES:
                raise ValidationFailed(
                    f"vat_category must be one of {', '.join(VAT_CATEGORIES)}", details={"field": key}
                )
            clean[key] = value
        elif key == "exemption_reason_code":
            if value is not None and value != "" and value not in codes.VATEX_CODES:
                raise ValidationFailed(
                    f"exemption_reason_code {value!r} is not a VATEX code (e.g. VATEX-EU-AE)", details={"field": key}
                )
            clean[key] = value or None
        elif key == "exemption_reason":
            clean[key] = _text(value, key, MAX_EXEMPTION_REASON)
        else:
            raise ValidationFailed(f"{key} cannot be set on a tax rate", details={"field": key})
    return clean


def create_tax_rate(
    svc: Services,
    *,
    display_name: str,
    percentage: object,
    inclusive: bool,
    country: str | None = None,
    jurisdiction: str | None = None,
    description: str | None = None,
    active: bool = True,
    vat_category: str = "S",
    exemption_reason_code: str | None = None,
    exemption_reason: str | None = None,
) -> TaxRate:
    """A new rate, unused (so still editable). An inactive rate is created archived."""
    clean = _clean_terms(
        {
            "display_name": display_name,
            "percentage": percentage,
            "inclusive": inclusive,
            "country": country,
            "jurisdiction": jurisdiction,
            "description": description,
            "active": active,
            "vat_category": vat_category,
            "exemption_reason_code": exemption_reason_code,
            "exemption_reason": exemption_reason,
        }
    )
    now = clock.iso(clock.now())
    rate = TaxRate(
        id=new_id("txr"),
        display_name=clean["display_name"],
        percentage=clean["percentage"],
        inclusive=clean["inclusive"],
        country=clean["country"],
        jurisdiction=clean["jurisdiction"],
        description=clean["description"],
        active=clean["active"],
        used=False,
        created_at=now,
        archived_at=None if clean["active"] else now,
        vat_category=clean["vat_category"],
        exemption_reason_code=clean["exemption_reason_code"],
        exemption_reason=clean["exemption_reason"],
    )
    with svc.uow() as tx:
        tx.add_tax_rate(rate)
    logger.info("tax rate created", extra={"tax_rate_id": rate.id})
    return rate


def list_tax_rates(svc: Services, *, active: bool | None = None) -> list[TaxRate]:
    """Newest first; `active` filters archived (False) or usable (True) rates."""
    return list(reversed(svc.tax_rates.list(active=active)))


def get_tax_rate(svc: Services, tax_rate_id: str) -> TaxRate:
    return svc.tax_rates.get(tax_rate_id)


@dataclass(frozen=True)
class UpdateTaxRate(Changes):
    """PATCH /tax-rates/{id}: the fields given (invoicing.changes); None clears an optional text."""

    display_name: str | Unset = UNSET
    percentage: str | int | Decimal | Unset = UNSET
    inclusive: bool | Unset = UNSET
    country: str | Unset | None = UNSET
    jurisdiction: str | Unset | None = UNSET
    description: str | Unset | None = UNSET
    active: bool | Unset = UNSET
    vat_category: str | Unset = UNSET
    exemption_reason_code: str | Unset | None = UNSET
    exemption_reason: str | Unset | None = UNSET


def update_tax_rate(svc: Services, tax_rate_id: str, cmd: UpdateTaxRate) -> TaxRate:
    """See the module docstring: terms only while unused; archiving always."""
    current = svc.tax_rates.get(tax_rate_id)
    clean = _clean_terms(cmd.given())
    diff = {k: v for k, v in clean.items() if v != getattr(current, k)}
    if not diff:
        return current
    terms = sorted(k for k in diff if k in TERMS)
    if terms and current.used:
        raise Conflict(
            f"tax rate {tax_rate_id} has been used on an invoice, so {', '.join(terms)} cannot change; "
            "archive it and create a new one",
            code="tax_rate_in_use",
        )
    if "active" in diff:
        diff["archived_at"] = None if diff["active"] else clock.iso(clock.now())
    updated = replace(current, **diff)
    with svc.uow() as tx:
        tx.edit_tax_rate(updated, sorted(diff), terms=bool(terms))
    logger.info("tax rate updated", extra={"tax_rate_id": tax_rate_id, "fields": sorted(diff)})
    return updated


def _foreign_currency(currency: str) -> str:
    code = money.normalize_currency(currency)
    if code == BASE_CURRENCY:
        raise ValidationFailed(
            "USD is the base currency; its rate to USD is always 1 and cannot be set", details={"field": "currency"}
        )
    return code


def put_exchange_rate(
    svc: Services, currency: str, *, rate_to_usd: object, source: str, as_of: datetime
) -> ExchangeRate:
    """Sets (or replaces) the rate to USD of a currency. Invoices already finalized keep theirs."""
    code = _foreign_currency(currency)
    if as_of.tzinfo is None:
        raise ValidationFailed("as_of must carry a timezone, e.g. 2026-11-24T00:00:00Z", details={"field": "as_of"})
    rate = ExchangeRate(
        currency=code,
        rate_to_usd=money.parse_rate(rate_to_usd, field="rate_to_usd"),
        source=_text(source, "source", 100, required=True) or "",
        as_of=clock.iso(as_of),
        updated_at=clock.iso(clock.now()),
    )
    with svc.uow() as tx:
        tx.set_exchange_rate(rate)
    logger.info("exchange rate set", extra={"currency": code, "source": rate.source})
    return rate


def get_exchange_rate(svc: Services, currency: str) -> ExchangeRate:
    code = money.normalize_currency(currency)
    if code == BASE_CURRENCY:
        now = clock.iso(clock.now())
        return ExchangeRate(currency=code, rate_to_usd=Decimal("1"), source="identity", as_of=now, updated_at=now)
    rate = svc.exchange_rates.get(code)
    if rate is None:
        raise NotFound(f"no exchange rate to USD for {code}", code="exchange_rate_not_found")
    return rate
