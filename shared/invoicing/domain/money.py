"""Money rules: minor units, decimal quantities, the one rounding rule, currencies, USD conversion.

Every amount is an int in the currency's minor unit (ISO 4217 exponent: USD 2, JPY 0, KWD 3); the
`*_cents` names mean "minor units". Quantities, percentages and exchange rates are `Decimal`.
Nothing here ever touches a float: JSON numbers are read through their text (`str(1.1)` is "1.1").

Arithmetic on amounts is exact (`fractions.Fraction`), and the result is rounded once, in exactly one
function, `round_minor`: ROUND_HALF_UP as Python's decimal module defines it, i.e. halves round away
from zero (2.5 -> 3, -2.5 -> -3). Exact arithmetic means no intermediate step is ever rounded at the
decimal context's 28 digits, so a value just below a half can never become a half (no double rounding).
See docs/money.md for the rules and docs/decisions.md for why half-up, per line.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from functools import lru_cache

from invoicing.errors import ValidationFailed

ROUNDING = ROUND_HALF_UP  # documentation of the rule; `round_minor` implements it on exact fractions
QUANTITY_PLACES = Decimal("0.0001")
PERCENT_PLACES = Decimal("0.0001")
RATE_MAX_PLACES = 12
MAX_QUANTITY = Decimal("999999.9999")  # DECIMAL(10,4)
MAX_UNIT_AMOUNT = 10**12  # minor units; keeps every product far inside int64 and DynamoDB's 38 digits
MAX_PERCENT = Decimal("100")
MAX_RATE = Decimal("1000000")

# A plain decimal number as text: optional sign, digits with an optional fraction, optional exponent.
# (Decimal() alone would also take "NaN", "Infinity" and "1_000".)
_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

# Where CLDR's everyday digits (what Babel reports) differ from the ISO 4217 minor unit, ISO wins:
# an amount's meaning must not change with a display convention.
_ISO_4217_EXPONENT_OVERRIDES: dict[str, int] = {
    "AFN": 2,
    "ALL": 2,
    "IQD": 3,
    "IRR": 2,
    "KPW": 2,
    "LAK": 2,
    "LBP": 2,
    "MGA": 2,
    "MMK": 2,
    "RSD": 2,
    "SOS": 2,
    "SYP": 2,
    "YER": 2,
}


def round_minor(value: Decimal | Fraction | int) -> int:
    """The single rounding point of the service: an exact amount of minor units -> int, half-up
    (halves away from zero). Floats are refused: they cannot carry an exact amount."""
    if isinstance(value, bool) or not isinstance(value, Decimal | Fraction | int):
        raise TypeError(f"round_minor takes Decimal, Fraction or int, not {type(value).__name__}")
    exact = Fraction(value)
    whole, rest = divmod(abs(exact.numerator), exact.denominator)
    if 2 * rest >= exact.denominator:
        whole += 1
    return -whole if exact < 0 else whole


def _parse_decimal(raw: object, field: str, what: str) -> Decimal:
    """A JSON string or number -> Decimal, read through its text. Booleans, null and non-numbers fail."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise ValidationFailed(f"{field} must be {what}", details={"field": field})
    text = str(raw).strip()
    if not _DECIMAL_TEXT.fullmatch(text):
        raise ValidationFailed(f"{field} must be {what}, got {raw!r}", details={"field": field})
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern above only lets valid text through
        raise ValidationFailed(f"{field} must be {what}, got {raw!r}", details={"field": field}) from None


def _decimal_places(value: Decimal) -> int:
    """Significant decimal places: Decimal("1.50") has 1, Decimal("2E+1") has 0."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite by construction
    return max(0, -exponent)


def parse_quantity(raw: object, field: str = "quantity") -> Decimal:
    """Accept a JSON string or number; return a Decimal with exactly 4 places (DECIMAL(10,4):
    greater than 0, at most 999999.9999, at most 4 decimals)."""
    value = _parse_decimal(raw, field, 'a decimal number such as "1.5"')
    if value <= 0:
        raise ValidationFailed(f"{field} must be greater than 0", details={"field": field})
    # the range check comes before any quantize: quantizing 1E+30 to 4 places would overflow
    if value > MAX_QUANTITY:
        raise ValidationFailed(f"{field} must be at most {MAX_QUANTITY} (6 integer digits)", details={"field": field})
    if _decimal_places(value) > 4:
        raise ValidationFailed(f"{field} has more than 4 decimal places", details={"field": field})
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
    """amount_cents = round_half_up(quantity x unit_amount_cents)."""
    return round_minor(Fraction(quantity) * unit_amount_cents)


@lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    """ISO 4217 codes that are legal tender somewhere today (CLDR via Babel).

    Babel's full list also holds withdrawn codes (DEM, HRK), funds and metals (XAU, CLF) and the
    test/no-currency codes (XTS, XXX); none of them is something to invoice in.
    """
    from babel import Locale
    from babel.numbers import get_territory_currencies

    codes: set[str] = set()
    for territory in Locale("en").territories:
        if isinstance(territory, str) and len(territory) == 2 and territory.isalpha():
            codes.update(get_territory_currencies(territory, tender=True))
    return frozenset(codes)


def normalize_currency(code: object, field: str = "currency") -> str:
    """A valid, current ISO 4217 code, upper-case."""
    if not isinstance(code, str) or len(code.strip()) != 3:
        raise ValidationFailed(f"{field} must be a 3-letter ISO 4217 code", details={"field": field})
    upper = code.strip().upper()
    if upper not in _known_currencies():
        raise ValidationFailed(f"{field} {code!r} is not a current ISO 4217 currency", details={"field": field})
    return upper


@lru_cache(maxsize=512)
def currency_exponent(code: str) -> int:
    """ISO 4217 minor-unit exponent: USD 2, JPY 0, KWD 3 (CLDR via Babel, ISO where they differ)."""
    if code in _ISO_4217_EXPONENT_OVERRIDES:
        return _ISO_4217_EXPONENT_OVERRIDES[code]
    from babel.numbers import get_currency_precision

    return int(get_currency_precision(code))


def parse_percent(raw: object, field: str = "percentage") -> Decimal:
    """A decimal string (or JSON number) from 0 to 100 with at most 4 decimals -> Decimal("19.0000")."""
    value = _parse_decimal(raw, field, 'a decimal string such as "19.5"')
    if value < 0 or value > MAX_PERCENT:
        raise ValidationFailed(f"{field} must be between 0 and 100", details={"field": field})
    if _decimal_places(value) > 4:
        raise ValidationFailed(f"{field} has more than 4 decimal places", details={"field": field})
    return abs(value).quantize(PERCENT_PLACES)  # abs: "-0" is 0


def exclusive_tax(amount_cents: int, percent: Decimal) -> int:
    """Tax added on top of the amount: round_half_up(amount x p / 100)."""
    return round_minor(amount_cents * Fraction(percent) / 100)


def inclusive_tax(amount_cents: int, percent: Decimal) -> int:
    """Tax carved out of an amount that already includes it: round_half_up(amount x p / (100 + p))."""
    p = Fraction(percent)
    return round_minor(amount_cents * p / (100 + p))


def parse_rate(raw: object, field: str = "rate") -> Decimal:
    """An exchange rate: a positive decimal up to 1,000,000 with at most 12 decimals, as plain text."""
    value = _parse_decimal(raw, field, 'a positive decimal string such as "0.0067"')
    if value <= 0 or value > MAX_RATE:
        raise ValidationFailed(f"{field} must be greater than 0 and at most {MAX_RATE}", details={"field": field})
    if _decimal_places(value) > RATE_MAX_PLACES:
        raise ValidationFailed(f"{field} has more than {RATE_MAX_PLACES} decimal places", details={"field": field})
    return Decimal(f"{value.normalize():f}")  # "1E+2" -> "100", "0.00670" -> "0.0067"


def to_usd_cents(amount_minor: int, currency: str, rate_to_usd: Decimal) -> int:
    """Minor units of `currency` -> US cents: amount / 10^exp x rate x 10^2, rounded once (half-up).

    1235 JPY (exp 0) at 0.0067 -> 827.45 -> 827 cents; 1234 fils = 1.234 KWD (exp 3) at 3.25 -> 401 cents.
    """
    exp = currency_exponent(currency)
    return round_minor(amount_minor * Fraction(rate_to_usd) * Fraction(10) ** (2 - exp))
