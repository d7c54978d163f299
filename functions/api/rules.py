"""The server's input rules as data, so the OpenAPI document states exactly what the server accepts.

Each set is read from the rule the use cases apply (money.py for currencies, rates.py for countries,
customers.py for locales and time zones); the request models validate against these very values, and
the document lists them as enums. One source, so the two cannot drift apart.
"""

from __future__ import annotations

from zoneinfo import available_timezones

from babel.localedata import locale_identifiers

from invoicing.domain import money
from invoicing.use_cases import rates

CURRENCIES: tuple[str, ...] = tuple(sorted(money._known_currencies()))
FOREIGN_CURRENCIES: tuple[str, ...] = tuple(c for c in CURRENCIES if c != rates.BASE_CURRENCY)
COUNTRIES: tuple[str, ...] = tuple(sorted(rates._countries()))
LOCALES: tuple[str, ...] = tuple(sorted(locale_identifiers()))
TIMEZONES: tuple[str, ...] = tuple(sorted(available_timezones()))


def decimal_pattern(int_digits: int, places: int, *, zero: bool, maximum: int) -> str:
    """A regular expression (no anchors, no look-arounds: JSON Schema generators read it too) for plain
    decimal text from 0 (or from the smallest step above 0) to `maximum`, with at most `places` decimals.

    `maximum` is 10**int_digits - 1 (every integer part allowed) or 10**(int_digits - 1) (100, 1000000:
    only .0... after it). No sign, no exponent, no leading zeros: one spelling per value, the one a
    client writes, so that what the pattern admits and what the server accepts are the same set.
    """
    fraction = rf"(?:\.\d{{1,{places}}})?"
    every = maximum == 10**int_digits - 1
    top = int_digits if every else int_digits - 1  # integer digits below the maximum
    nonzero_int = rf"[1-9]\d{{0,{top - 1}}}" if top > 1 else "[1-9]"
    parts = [nonzero_int + fraction]
    if not every:
        parts.append(rf"{maximum}(?:\.0{{1,{places}}})?")
    if zero:
        parts.append("0" + fraction)
    else:  # 0.xxxx with at least one digit that is not 0
        tails = [f"0{{{j}}}[1-9]" + (rf"\d{{0,{places - 1 - j}}}" if places - 1 - j else "") for j in range(places)]
        parts.append(r"0\.(?:" + "|".join(t.replace("0{0}", "") for t in tails) + ")")
    return "(?:" + "|".join(parts) + ")"
