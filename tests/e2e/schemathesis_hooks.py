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
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import schemathesis

PAST = "2020-01-01T00:00:00Z"


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
