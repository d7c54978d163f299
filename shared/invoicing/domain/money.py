"""Money rules: minor units, decimal quantities, the one rounding rule, currencies, USD conversion.

Every amount is an int in the currency's minor unit (ISO 4217 exponent: USD 2, JPY 0, KWD 3).
Quantities, percentages and exchange rates are `Decimal`. Nothing here ever touches a float.

The rounding rule is ROUND_HALF_UP as Python's decimal module defines it: halves round away from
zero (2.5 -> 3, -2.5 -> -3). It is applied in exactly one function, `round_minor`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from invoicing.errors import ValidationFailed

ROUNDING = ROUND_HALF_UP
QUANTITY_PLACES = Decimal("0.0001")
MAX_QUANTITY = Decimal("999999.9999")  # DECIMAL(10,4)
MAX_UNIT_AMOUNT = 10**12  # minor units; keeps every product far inside int64 and DynamoDB's 38 digits
MAX_PERCENT = Decimal("100")


def round_minor(value: Decimal) -> int:
    """The single rounding point of the service: a Decimal amount of minor units -> int."""
    return int(value.quantize(Decimal(1), rounding=ROUNDING))


def parse_quantity(raw: object, field: str = "quantity") -> Decimal:
    """Accept a JSON string or number; return a Decimal with exactly 4 places.

    Numbers are read through their text (`str(1.1)` is "1.1"), so no binary float error leaks in.
    """
    if isinstance(raw, bool) or raw is None:
        raise ValidationFailed(f"{field} must be a decimal number", details={"field": field})
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{field} must be a decimal number, got {raw!r}", details={"field": field}) from None
    if not value.is_finite():
        raise ValidationFailed(f"{field} must be finite", details={"field": field})
    if value <= 0:
        raise ValidationFailed(f"{field} must be greater than 0", details={"field": field})
    if value != value.quantize(QUANTITY_PLACES, rounding=ROUNDING):
        raise ValidationFailed(f"{field} has more than 4 decimal places", details={"field": field})
    if value > MAX_QUANTITY:
        raise ValidationFailed(f"{field} must be at most {MAX_QUANTITY}", details={"field": field})
    return value.quantize(QUANTITY_PLACES)


def check_unit_amount(value: int, field: str = "unit_amount_cents") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{field} must be an integer number of minor units", details={"field": field})
    if abs(value) > MAX_UNIT_AMOUNT:
        raise ValidationFailed(
            f"{field} must be between -{MAX_UNIT_AMOUNT} and {MAX_UNIT_AMOUNT}", details={"field": field}
        )
    return value


def line_amount(quantity: Decimal, unit_amount_cents: int) -> int:
    """amount_cents = round(quantity x unit_amount_cents)."""
    return round_minor(quantity * Decimal(unit_amount_cents))


@lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def normalize_currency(code: object, field: str = "currency") -> str:
    """A valid ISO 4217 code, upper-case (validated against Babel's CLDR currency list)."""
    if not isinstance(code, str) or len(code.strip()) != 3:
        raise ValidationFailed(f"{field} must be a 3-letter ISO 4217 code", details={"field": field})
    upper = code.strip().upper()
    if upper not in _known_currencies():
        raise ValidationFailed(f"{field} {code!r} is not an ISO 4217 currency", details={"field": field})
    return upper


@lru_cache(maxsize=512)
def currency_exponent(code: str) -> int:
    """ISO 4217 minor-unit exponent: USD 2, JPY 0, KWD 3 (from CLDR via Babel)."""
    from babel.numbers import get_currency_precision

    return int(get_currency_precision(code))


def parse_percent(raw: object, field: str = "percentage") -> Decimal:
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{field} must be a decimal string", details={"field": field}) from None
    if not value.is_finite() or value < 0 or value > MAX_PERCENT:
        raise ValidationFailed(f"{field} must be between 0 and 100", details={"field": field})
    if value != value.quantize(QUANTITY_PLACES, rounding=ROUNDING):
        raise ValidationFailed(f"{field} has more than 4 decimal places", details={"field": field})
    return value


def exclusive_tax(amount_cents: int, percent: Decimal) -> int:
    """Tax added on top of the amount: round(amount x p / 100)."""
    return round_minor(Decimal(amount_cents) * percent / Decimal(100))


def inclusive_tax(amount_cents: int, percent: Decimal) -> int:
    """Tax carved out of an amount that already includes it: round(amount x p / (100 + p))."""
    return round_minor(Decimal(amount_cents) * percent / (Decimal(100) + percent))


def parse_rate(raw: object, field: str = "rate") -> Decimal:
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{field} must be a decimal string", details={"field": field}) from None
    if not value.is_finite() or value <= 0 or value > Decimal("1000000"):
        raise ValidationFailed(f"{field} must be a positive decimal", details={"field": field})
    return value


def to_usd_cents(amount_minor: int, currency: str, rate_to_usd: Decimal) -> int:
    """Convert minor units of `currency` to US cents: amount / 10^exp x rate x 10^2, rounded once."""
    exp = currency_exponent(currency)
    scaled = Decimal(amount_minor) * rate_to_usd * (Decimal(10) ** (2 - exp))
    return round_minor(scaled)
