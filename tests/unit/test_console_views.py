"""The console's pure helpers: amounts typed by a person, locales, aging buckets, CSV cells, next URLs."""

from __future__ import annotations

from datetime import date

import pytest

from tests.integration.conftest import load_function

views = load_function("console", "views")
reports = load_function("console", "reports")


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [("1250.50", "EUR", 125050), ("1,250.5", "USD", 125050), (" 12 ", "EUR", 1200), ("1500", "JPY", 1500)],
)
def test_amounts_are_parsed_into_minor_units_by_the_currency_exponent(typed, currency, minor):
    assert views.parse_amount(typed, currency, "amount") == minor


@pytest.mark.parametrize("typed", ["", "abc", "0", "-5", "1.001", "12.5", "NaN", "Infinity", "1e20"])
def test_amounts_a_currency_cannot_hold_are_refused_in_words(typed):
    currency = "JPY" if typed == "12.5" else "EUR"
    with pytest.raises(views.FieldError) as refused:
        views.parse_amount(typed, currency, "amount")
    assert refused.value.field == "amount" and refused.value.message


def test_the_locale_follows_accept_language_and_falls_back_to_en_us():
    assert views.negotiate_locale("de-DE,de;q=0.9,en;q=0.5") == "de_DE"
    assert views.negotiate_locale("fr;q=0.4, ja;q=0.8") == "ja_JP"
    assert views.negotiate_locale("xx-YY, *") == "en_US"
    assert views.negotiate_locale(None) == "en_US"
    assert views.fmt_money(123456, "EUR", "de_DE") == "1.234,56\xa0€"
    assert views.fmt_money(123456, "JPY", "ja_JP") == "￥123,456"


@pytest.mark.parametrize(
    ("due", "bucket"),
    [
        (date(2026, 3, 1), "current"),
        (date(2026, 2, 28), "1-30"),
        (date(2026, 1, 30), "1-30"),
        (date(2026, 1, 29), "31-60"),
        (date(2025, 12, 1), "61-90"),
        (date(2025, 11, 30), "90+"),
        (None, "current"),
    ],
)
def test_aging_buckets_count_days_past_due(due, bucket):
    assert reports.bucket(due, date(2026, 3, 1)) == bucket


def test_chart_labels_are_escaped():
    svg = reports.aging_bars({"current": 100, "90+": 50}, "EUR", "en_US")
    assert svg.startswith("<svg") and "<script" not in svg and "€1.00" in svg
