"""Reports: "collected" per month is the money received in each month, by payment date.

Given an invoice paid in two instalments in different months, a partly paid invoice still open, and
an invoice paid in full, when a person opens the reports, then each payment counts in the month it
was paid (not only invoices paid in full, not all on the day the last instalment settled them).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.support.console import browser


def _pay(svc, invoice_id: str, amount: int) -> None:  # type: ignore[no-untyped-def]
    from invoicing.domain.events import Actor
    from invoicing.domain.payments import PaymentMethod
    from invoicing.use_cases.payments import RecordPayment, record_payment

    record_payment(
        svc, Actor("api_key:test"), invoice_id, RecordPayment(amount_cents=amount, method=PaymentMethod.CASH)
    )


def _collected(page: str, currency: str) -> dict[str, str]:
    table = page.split(f"<h3>{currency}</h3>")[-1].split("</table>")[0]
    rows = re.findall(
        r"<tr><td>(\d{4}-\d{2})</td><td class=\"num\">[^<]*</td><td class=\"num\">([^<]*)</td></tr>", table
    )
    return {month: amount.replace("\xa0", " ") for month, amount in rows}


def test_collected_counts_each_payment_in_the_month_it_was_paid_partial_ones_too(console, monkeypatch):
    from invoicing import clock
    from invoicing.root import get_services
    from invoicing.use_cases import customers
    from tests.support.builders import open_invoice_of

    svc = get_services()
    customer = customers.create_customer(svc, name="Acme GmbH", email="ap@acme.test", currency="USD")
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 3, 10, 9, 0, tzinfo=UTC))
    instalments = open_invoice_of(svc, customer.id, 10000)
    still_open = open_invoice_of(svc, customer.id, 5000)
    _pay(svc, instalments.id, 4000)  # March
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 4, 20, 9, 0, tzinfo=UTC))
    _pay(svc, still_open.id, 1500)  # April, partial: the invoice stays open
    _pay(svc, instalments.id, 6000)  # April, settles it
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 5, 2, 9, 0, tzinfo=UTC))
    open_invoice_of(svc, customer.id, 2500, paid=True)  # May, in full
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 6, 1, 9, 0, tzinfo=UTC))

    b = browser(console, "viewer@acme.example")
    status, page, _ = b.get("/console/reports", **{})
    assert status == 200
    collected = _collected(page, "USD")
    amounts = {month: re.sub(r"[^\d]", "", value) for month, value in collected.items()}
    assert amounts["2026-03"] == "4000"
    assert amounts["2026-04"] == "7500", "the partial payment on the open invoice and the settling instalment"
    assert amounts["2026-05"] == "2500"
    assert amounts["2026-02"] == amounts["2026-06"] == "000"
    assert "Only the newest" not in page
