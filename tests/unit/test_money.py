"""The money rules (docs/money.md) as properties: exact arithmetic, one half-up rounding, per-line tax,
totals derived from the lines, integers in storage, USD conversion by currency exponent."""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.domain import money
from invoicing.domain.invoice import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineTax,
    compute_totals,
    ensure_finalizable,
    tax_for_line,
)
from invoicing.errors import Conflict, ValidationFailed
from invoicing.store.mapping import invoice_to_item, line_from_item, line_to_item
from invoicing.store.mapping import tax_to_map as _tax_to_map


def ref_half_up(x: Fraction) -> int:
    """The documented rule, written independently: nearest integer, halves away from zero."""
    magnitude = math.floor(abs(x) + Fraction(1, 2))
    return -magnitude if x < 0 else magnitude


# ---------------------------------------------------------------- strategies
quantities = st.decimals(min_value=Decimal("0.0001"), max_value=money.MAX_QUANTITY, places=4)
unit_amounts = st.integers(min_value=-money.MAX_UNIT_AMOUNT, max_value=money.MAX_UNIT_AMOUNT)
amounts = st.integers(min_value=-(10**18), max_value=10**18)  # any line amount (quantity x unit)
percentages = st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=4)
rates = st.decimals(min_value=Decimal("0.000000000001"), max_value=Decimal("1000000"), places=12)
currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD"])


@st.composite
def taxed_lines(draw):
    """A draft's lines, each with no tax or with its own rate (inclusive or exclusive)."""
    lines: list[InvoiceLine] = []
    taxes: dict[str, LineTax] = {}
    for i in range(draw(st.integers(min_value=0, max_value=12))):
        line = InvoiceLine(
            id=f"il_{i}", description="x", quantity=draw(quantities), unit_amount_cents=draw(unit_amounts)
        )
        lines.append(line)
        if draw(st.booleans()):
            pct, inclusive = draw(percentages), draw(st.booleans())
            taxes[line.id] = LineTax(
                tax_rate_id=f"txr_{i}",
                percentage=pct,
                inclusive=inclusive,
                tax_cents=tax_for_line(line.amount_cents, pct, inclusive),
            )
    return lines, taxes


# ---------------------------------------------------------------- the one rounding rule
class TestRounding:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [("0.5", 1), ("1.5", 2), ("2.5", 3), ("-0.5", -1), ("-2.5", -3), ("2.4999", 2), ("-2.5001", -3), ("0", 0)],
    )
    def test_halves_go_away_from_zero_not_to_even(self, value, expected):
        # banker's rounding would give 2 for "2.5" and -2 for "-2.5"
        assert money.round_minor(Decimal(value)) == expected

    @given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**15), max_value=10**15, places=6))
    def test_matches_decimal_round_half_up(self, value):
        assert money.round_minor(value) == int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    @given(st.integers(min_value=-(10**20), max_value=10**20), st.integers(min_value=1, max_value=10**12))
    def test_is_exact_on_fractions(self, numerator, denominator):
        result = money.round_minor(Fraction(numerator, denominator))
        assert type(result) is int and result == ref_half_up(Fraction(numerator, denominator))

    def test_no_double_rounding_near_a_half(self):
        # 0.4999...9 (40 nines) must not become 0.5 at the decimal context's 28 digits and then 1
        assert money.round_minor(Fraction(10**40 // 2 - 1, 10**40)) == 0

    @pytest.mark.parametrize("value", [0.5, 1.0, True])
    def test_floats_are_refused(self, value):
        with pytest.raises(TypeError):
            money.round_minor(value)


# ---------------------------------------------------------------- quantities and line amounts
class TestQuantity:
    @given(quantities)
    def test_round_trips_as_a_four_place_string(self, quantity):
        parsed = money.parse_quantity(f"{quantity}")
        assert parsed == quantity and f"{parsed}" == f"{quantity:.4f}"
        assert re.fullmatch(r"\d{1,6}\.\d{4}", str(parsed))

    @given(quantities)
    def test_a_json_number_is_read_through_its_text(self, quantity):
        # a JSON number arrives as a float; its shortest repr is the number that was written
        assert money.parse_quantity(float(quantity)) == quantity

    @pytest.mark.parametrize(
        "raw",
        ["0", "-1", "0.00001", "1.23456", "1000000", "999999.99991", "1e30", 10**30, "NaN", "inf", "1_0", "", "abc"]
        + [0.1 + 0.2, True, None, [1]],
    )
    def test_out_of_range_or_malformed_is_a_validation_error_naming_the_field(self, raw):
        with pytest.raises(ValidationFailed) as caught:
            money.parse_quantity(raw, field="lines.0.quantity")
        assert caught.value.details == {"field": "lines.0.quantity"}

    @given(quantities, unit_amounts)
    def test_line_amount_is_quantity_times_unit_rounded_half_up(self, quantity, unit):
        amount = money.line_amount(quantity, unit)
        assert type(amount) is int and amount == ref_half_up(Fraction(quantity) * unit)

    def test_line_amount_examples(self):
        assert money.line_amount(Decimal("1.5000"), 10000) == 15000
        assert money.line_amount(Decimal("0.3333"), 100) == 33  # 33.33
        assert money.line_amount(Decimal("0.0050"), 100) == 1  # 0.5 -> 1
        assert money.line_amount(Decimal("1.5000"), -1) == -2  # -1.5 -> -2, away from zero


# ---------------------------------------------------------------- tax, per line
class TestTax:
    @given(amounts, percentages)
    def test_exclusive_tax_is_amount_times_p_over_100(self, amount, pct):
        tax = money.exclusive_tax(amount, pct)
        assert type(tax) is int and tax == ref_half_up(amount * Fraction(pct) / 100)
        assert abs(tax) <= abs(amount)

    @given(amounts, percentages)
    def test_inclusive_tax_is_carved_out_of_the_amount(self, amount, pct):
        tax = money.inclusive_tax(amount, pct)
        p = Fraction(pct)
        assert type(tax) is int and tax == ref_half_up(amount * p / (100 + p))
        net = amount - tax
        assert net + tax == amount
        # the carved-out tax is the net's tax, to within the one rounding: |e x (100 + p) / 100| <= 1
        assert abs(tax - net * p / 100) <= (100 + p) / 200 <= 1
        assert tax == 0 or (tax > 0) == (amount > 0)

    @given(amounts, percentages, st.booleans())
    def test_a_discount_has_the_mirror_tax_of_a_charge(self, amount, pct, inclusive):
        assert tax_for_line(-amount, pct, inclusive) == -tax_for_line(amount, pct, inclusive)

    def test_examples(self):
        assert money.exclusive_tax(1005, Decimal("10")) == 101  # 100.5 -> 101
        assert money.exclusive_tax(-1005, Decimal("10")) == -101
        assert money.inclusive_tax(11900, Decimal("19")) == 1900
        assert money.inclusive_tax(1234, Decimal("5")) == 59  # 58.76
        assert money.exclusive_tax(3705, Decimal("10")) == 371  # ¥370.5 -> ¥371

    def test_per_line_then_summed_differs_from_rounding_the_sum(self):
        # two lines of 10.05 at 10 %: 1.005 each -> 1.01 + 1.01 = 2.02, not round(2.01) = 2.01
        lines = [
            InvoiceLine(id=f"il_{i}", description="x", quantity=Decimal(1), unit_amount_cents=1005) for i in (1, 2)
        ]
        taxes = {ln.id: LineTax("txr", Decimal(10), False, tax_for_line(1005, Decimal(10), False)) for ln in lines}
        assert compute_totals(lines, taxes).tax_cents == 202

    @pytest.mark.parametrize("raw", ["-1", "100.0001", "19.12345", "NaN", "abc", True, None])
    def test_bad_percentage(self, raw):
        with pytest.raises(ValidationFailed) as caught:
            money.parse_percent(raw)
        assert caught.value.details == {"field": "percentage"}

    @given(percentages)
    def test_percentage_round_trips_with_four_places(self, pct):
        assert money.parse_percent(str(pct)) == pct and str(money.parse_percent(str(pct))) == f"{pct:.4f}"


# ---------------------------------------------------------------- totals, derived in one place
class TestTotals:
    @given(taxed_lines())
    def test_totals_are_the_sums_of_the_lines(self, drawn):
        lines, taxes = drawn
        totals = compute_totals(lines, taxes)
        assert totals.subtotal_cents == sum(ln.amount_cents for ln in lines)
        assert totals.tax_cents == sum(t.tax_cents for t in taxes.values())
        exclusive = sum(t.tax_cents for t in taxes.values() if not t.inclusive)
        assert totals.total_cents == totals.subtotal_cents + exclusive
        assert all(type(v) is int for v in (totals.subtotal_cents, totals.tax_cents, totals.total_cents))

    @given(taxed_lines())
    def test_a_negative_total_is_refused_at_finalize(self, drawn):
        lines, taxes = drawn
        draft = Invoice(
            id="in_1",
            customer_id="cus_1",
            status=InvoiceStatus.DRAFT,
            currency="USD",
            created_at="t",
            updated_at="t",
            lines=tuple(lines),
        )
        totals = compute_totals(lines, taxes)
        if not lines or totals.total_cents < 0:
            with pytest.raises(Conflict):  # the draft's content refuses it: 409
                ensure_finalizable(draft, totals)
        else:
            ensure_finalizable(draft, totals)


# ---------------------------------------------------------------- storage: integers and decimal text only
def _numbers(serialized: object) -> list[str]:
    """Every DynamoDB number ("N") inside a serialized item, however deep."""
    found: list[str] = []
    if isinstance(serialized, dict):
        for key, value in serialized.items():
            if key == "N":
                found.append(value)
            elif key == "NS":
                found.extend(value)
            else:
                found.extend(_numbers(value))
    elif isinstance(serialized, list):
        for value in serialized:
            found.extend(_numbers(value))
    return found


class TestStorage:
    @given(taxed_lines())
    def test_no_float_ever_reaches_a_stored_amount(self, drawn):
        lines, taxes = drawn
        totals = compute_totals(lines, taxes)
        header = Invoice(
            id="in_1",
            customer_id="cus_1",
            status=InvoiceStatus.DRAFT,
            currency="USD",
            created_at="t",
            updated_at="t",
            lines=tuple(lines),
            subtotal_cents=totals.subtotal_cents,
            tax_cents=totals.tax_cents,
            total_cents=totals.total_cents,
        )
        items = [invoice_to_item(header)]
        for line in lines:
            stored = line_to_item("in_1", InvoiceLine(**{**line.__dict__, "tax": taxes.get(line.id)}))
            items.append(stored)
            # the quantity is decimal text with 4 places and reads back exactly
            assert re.fullmatch(r"\d{1,6}\.\d{4}", stored.quantity) and Decimal(stored.quantity) == line.quantity
            back = line_from_item(stored)
            assert back.quantity == line.quantity and back.amount_cents == line.amount_cents
            assert back.tax == taxes.get(line.id)
        for tax in taxes.values():
            as_map = _tax_to_map(tax)
            assert type(as_map["tax_cents"]) is int and isinstance(as_map["percentage"], str)
        for item in items:
            for number in _numbers(item.serialize()):
                assert re.fullmatch(r"-?\d+", number), number  # an integer: no point, no exponent


# ---------------------------------------------------------------- currencies and the USD value
class TestUsdConversion:
    @pytest.mark.parametrize(("code", "exponent"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("IQD", 3)])
    def test_iso_4217_exponents(self, code, exponent):
        assert money.currency_exponent(code) == exponent

    @pytest.mark.parametrize(
        ("amount", "currency", "rate", "cents"),
        [
            (1235, "JPY", "0.0067", 827),  # ¥1235 x 0.0067 = $8.2745
            (1234, "KWD", "3.25", 401),  # 1.234 KWD x 3.25 = $4.0105
            (12899, "EUR", "1.08", 13931),  # €128.99 x 1.08 = $139.3092
            (1, "JPY", "0.005", 1),  # exactly half a cent -> up
            (5, "KWD", "1", 1),  # 5 fils = 0.5 cent -> up
            (-5, "KWD", "1", -1),  # and away from zero for a negative amount
            (1, "EUR", "0.5", 1),
            (12345, "USD", "1", 12345),
        ],
    )
    def test_examples(self, amount, currency, rate, cents):
        assert money.to_usd_cents(amount, currency, Decimal(rate)) == cents

    @given(amounts, currencies, rates)
    def test_converts_by_the_currency_exponent_and_rounds_once(self, amount, currency, rate):
        exp = money.currency_exponent(currency)
        cents = money.to_usd_cents(amount, currency, rate)
        assert type(cents) is int
        assert cents == ref_half_up(Fraction(amount, 10**exp) * Fraction(rate) * 100)

    @given(amounts)
    def test_usd_at_rate_one_is_the_identity(self, amount):
        assert money.to_usd_cents(amount, "USD", Decimal(1)) == amount

    @pytest.mark.parametrize(
        ("raw", "stored"), [("0.0067", "0.0067"), ("1.0800", "1.08"), ("1E2", "100"), (3.25, "3.25")]
    )
    def test_rate_is_kept_as_plain_decimal_text(self, raw, stored):
        assert str(money.parse_rate(raw)) == stored

    @pytest.mark.parametrize("raw", ["0", "-1", "1000000.1", "0.0000000000001", "abc", "NaN", None, True])
    def test_bad_rate(self, raw):
        with pytest.raises(ValidationFailed):
            money.parse_rate(raw)

    @pytest.mark.parametrize("code", ["usd", " EUR ", "jpy", "KWD", "CHF"])
    def test_current_currencies_are_accepted_upper_case(self, code):
        assert money.normalize_currency(code) == code.strip().upper()

    @pytest.mark.parametrize("code", ["DEM", "XXX", "XTS", "XAU", "ABC", "US", "", None, 840])
    def test_withdrawn_test_or_unknown_codes_are_refused(self, code):
        with pytest.raises(ValidationFailed):
            money.normalize_currency(code)
