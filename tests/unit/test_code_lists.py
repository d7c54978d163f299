"""Every value of the API document's five code lists works where the server uses it.

The document lists them as enums, and the API's validators accept exactly those values (both come from
the same tuples: functions/api/rules.py, invoicing.einvoice.codes). This proves each value usable
downstream, all of them, in process: the schemathesis run over HTTP sends a sample of each list
(tests/e2e/schemathesis_hooks.py says why).

- a locale formats money, a quantity, a date and a rate, and picks a catalog and a text direction;
- a time zone gives a calendar date within the dates in use on Earth (the reminders' day);
- a currency has a known exponent and formats; all but two are in EN 16931's currency list (BR-CL-03/04):
  BGN (Bulgaria joined the euro in 2026, and the rules' list dropped it) and STN (the 2018 dobra; the
  list still has STD). An e-invoice in either fails BR-CL-04: an open finding (docs/einvoicing.md);
- a country is in EN 16931's country list (BR-CL-14), and has a name in English;
- a unit code is in EN 16931's unit list (BR-CL-23), so a line with it passes that rule.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale

from invoicing import i18n
from invoicing.documents import format_day, format_money, format_quantity, format_rate
from invoicing.domain.money import currency_exponent
from invoicing.domain.reminders import local_date, start_of_day
from invoicing.einvoice.codes import UNIT_CODES
from rules import COUNTRIES, CURRENCIES, LOCALES, TIMEZONES
from tests.support.einvoice_rules import require_rules


@cache
def _official_list(rule: str) -> frozenset[str]:
    """The values EN 16931's UBL rules accept for `rule` (the list inside its `contains(' ... ')`)."""
    xslt = Path(require_rules()) / "en16931" / "ubl" / "EN16931-UBL-validation.xslt"
    text = xslt.read_text(encoding="utf-8")
    at = text.index(f'<xsl:attribute name="id">{rule}</xsl:attribute>')
    test = text.rfind("<xsl:when test=", 0, at)
    listed = re.search(r"contains\('\s([^']+)\s'", text[test:at])
    assert listed is not None, rule
    return frozenset(listed.group(1).split())


def test_the_lists_are_the_size_the_document_says() -> None:
    # a list that silently shrank (a missing tzdata, an old Babel) would shrink the API with it
    assert len(LOCALES) > 700 and len(TIMEZONES) > 400 and len(CURRENCIES) > 150
    assert len(COUNTRIES) >= 249 and len(UNIT_CODES) > 2000


def test_every_locale_formats_and_speaks() -> None:
    for value in LOCALES:
        loc = i18n.localize(value)
        assert format_money(123456, "EUR", loc.locale), value
        assert format_quantity(Decimal("1.5"), loc.locale), value
        assert format_day(date(2026, 12, 31), loc.locale), value
        assert format_rate(Decimal("19"), loc.locale), value
        assert loc.direction in ("ltr", "rtl") and loc.gettext("Invoice"), value
        assert loc.locale == str(Locale.parse(value)), value  # the customer's own formats, no fallback


def test_every_time_zone_is_known_and_places_a_reminder_at_the_start_of_its_day() -> None:
    # the days around both DST changes of 2026 in either hemisphere, and an ordinary one
    days = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 10, 4), date(2026, 11, 1)]
    for value in TIMEZONES:
        ZoneInfo(value)  # known to this zoneinfo, not the UTC fallback of an unknown name
        for day in days:
            at = start_of_day(day, value)
            assert local_date(at, value) == day, (value, day)
            assert local_date(at - timedelta(microseconds=1), value) < day, (value, day)


NOT_IN_EN16931 = {"BGN", "STN"}  # the module docstring says why


def test_every_currency_formats_and_all_but_two_are_in_en16931s_list() -> None:
    for value in CURRENCIES:
        assert currency_exponent(value) in (0, 2, 3, 4), value
        assert format_money(100, value, "en_US"), value
    for rule in ("BR-CL-03", "BR-CL-04"):
        assert set(CURRENCIES) - _official_list(rule) == NOT_IN_EN16931, rule


def test_every_country_is_in_en16931s_list_and_has_a_name() -> None:
    official = _official_list("BR-CL-14")
    english = Locale.parse("en").territories
    assert set(COUNTRIES) <= official, sorted(set(COUNTRIES) - official)
    assert all(english.get(value) for value in COUNTRIES), [v for v in COUNTRIES if not english.get(v)]


def test_every_unit_code_is_in_en16931s_list() -> None:
    official = _official_list("BR-CL-23")
    assert official >= UNIT_CODES, sorted(UNIT_CODES - official)[:20]
