"""Builders for the things most tests start from: a draft, an open invoice, a paid one. Through the
API (`api` fixture) or, for tests that race threads against the store, through the use cases.

No test module defines its own create_draft/finalize/open_invoice: they take these, with their own
lines where the amounts matter to them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

CONSULTING = {"description": "Consulting, November", "quantity": "1.5", "unit_amount_cents": 10000}  # 150.00


# ---------------------------------------------------------------- through the API
def create_draft(api: Any, customer: dict[str, Any], *lines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """POST /invoices with `lines` (one CONSULTING line when none is given); 201 or the test fails."""
    body = {"customer_id": customer["id"], "lines": list(lines) or [CONSULTING], **extra}
    status, draft, _ = api("POST", "/invoices", body)
    assert status == 201, draft
    return draft


def finalize(api: Any, invoice_id: str) -> dict[str, Any]:
    status, invoice, _ = api("POST", f"/invoices/{invoice_id}/finalize")
    assert status == 200, invoice
    return invoice


def open_invoice(api: Any, customer: dict[str, Any], *lines: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A finalized invoice (open, with its first payment link in `payment_url`)."""
    return finalize(api, create_draft(api, customer, *lines, **extra)["id"])


# ---------------------------------------------------------------- through the use cases
def draft_of(svc: Any, customer_id: str, amount_cents: int = 1000) -> Any:
    """A draft with one line of `amount_cents`, made by the create use case."""
    from invoicing.domain.events import Actor
    from invoicing.use_cases.invoices import CreateInvoice, LineInput, create_invoice

    line = LineInput(description="Seat", quantity=Decimal("1"), unit_amount_cents=amount_cents)
    invoice, _ = create_invoice(svc, Actor("api_key:test"), CreateInvoice(customer_id=customer_id, lines=(line,)))
    return invoice


def open_invoice_of(svc: Any, customer_id: str, amount_cents: int = 1000, *, paid: bool = False) -> Any:
    """A finalized invoice, by the production finalize; `paid`: then paid in full in cash."""
    from invoicing.domain.events import Actor
    from invoicing.domain.payments import PaymentMethod
    from invoicing.use_cases.finalize import finalize_invoice
    from invoicing.use_cases.payments import RecordPayment, record_payment

    actor = Actor("api_key:test")
    invoice = finalize_invoice(svc, actor, draft_of(svc, customer_id, amount_cents).id).invoice
    if paid and invoice.amount_remaining_cents:
        cmd = RecordPayment(amount_cents=invoice.amount_remaining_cents, method=PaymentMethod.CASH)
        invoice = record_payment(svc, actor, invoice.id, cmd)[1]
    return invoice
