"""What the API document cannot state in JSON Schema, taught to schemathesis (SCHEMATHESIS_HOOKS).

JSON Schema has no "now" and cannot compare two fields, so two of the server's rules are in the
document's descriptions only. Without these hooks the fuzzer would send, as valid, requests that the
server rightly refuses with a 422; with them it sends the nearest valid request instead:

- `paid_at` (record a payment, complete a refund) must not be in the future: a later timestamp is moved
  back to a fixed past one;
- `period_end` (a billing-run invoice, alone or in a bulk run) must not be before `period_start`: the two
  are swapped.

Every other rule of the server is in the document itself (enums, patterns, bounds, oneOf,
dependentRequired, required parameters); this file is the complete list of exceptions.

One more hook bounds the run, and changes no request: the coverage phase sends one valid request per
value of every enum, and --max-examples does not bound it, so the document's five code lists (UN/ECE
Rec 20 units, CLDR locales, IANA zones, ISO 4217 currencies, ISO 3166 countries; 2,162 + 1,082 + 599 +
154 + 250 values, several of them on four operations) made ~14,000 of its ~17,000 requests.
`filter_case` keeps one in CODE_LIST_SAMPLE of those per property, chosen by a hash of the value (the
same ones in every run, spread over each list), and every other case of the phase. That each value of
each list is usable (formats, loads, maps onto an e-invoice) is proven for all of them in process, in
tests/unit/test_code_lists.py, in milliseconds.
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime
from typing import Any

import schemathesis

PAST = "2020-01-01T00:00:00Z"
CODE_LISTS = frozenset({"unit_code", "locale", "timezone", "currency", "country"})
CODE_LIST_SAMPLE = 16
# "Object with valid 'locale' value: Enum value", or nested: "... 'lines' value: Single-item array: Object
# with valid 'unit_code' value: Enum value"
_ENUM_CASE = re.compile(r"valid '([A-Za-z_]+)' value: Enum value$")


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    if not isinstance(body, dict) or ctx.operation is None:
        return body
    path = ctx.operation.path
    if path.endswith(("/payments", "/complete")):
        paid_at = _instant(body.get("paid_at"))
        if paid_at is not None and paid_at > datetime.now(UTC):
            body = {**body, "paid_at": PAST}
    if path == "/invoices" and ctx.operation.method.upper() == "POST":
        body = _period_in_order(body)
    if path == "/billing-runs" and ctx.operation.method.upper() == "POST" and isinstance(body.get("invoices"), list):
        body = {**body, "invoices": [_period_in_order(d) if isinstance(d, dict) else d for d in body["invoices"]]}
    return body


def _period_in_order(body: dict[str, Any]) -> dict[str, Any]:
    start, end = body.get("period_start"), body.get("period_end")
    if isinstance(start, str) and isinstance(end, str) and end < start:
        return {**body, "period_start": end, "period_end": start}
    return body


@schemathesis.hook
def filter_case(ctx: Any, case: Any) -> bool:
    """False for a coverage case that only walks a code list, unless its value is in the sample."""
    data = case.meta.phase.data if case.meta is not None else None
    match = _ENUM_CASE.search(getattr(data, "description", "") or "")
    if match is None or match.group(1) not in CODE_LISTS:
        return True
    values = list(_values_of(case.body, match.group(1)))
    if not values:
        return True
    return any(zlib.crc32(str(v).encode()) % CODE_LIST_SAMPLE == 0 for v in values)


def _values_of(body: Any, name: str) -> Any:
    """Every value of property `name` anywhere in the body (a line's unit_code, an address's country)."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == name and isinstance(value, str):
                yield value
            else:
                yield from _values_of(value, name)
    elif isinstance(body, list):
        for item in body:
            yield from _values_of(item, name)
