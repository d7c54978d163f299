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


# ---------------------------------------------------------------- e-invoices (docs/einvoicing.md)
# A German seller with every term XRechnung asks for, as the Seller* template parameters set them
GERMAN_SELLER_ENV = {
    "SELLER_NAME": "Beispiel Software GmbH",
    "SELLER_VAT_ID": "DE123456789",
    "SELLER_STREET": "Hauptstrasse 1",
    "SELLER_CITY": "Berlin",
    "SELLER_POSTAL_CODE": "10115",
    "SELLER_COUNTRY": "DE",
    "SELLER_ELECTRONIC_ADDRESS": "rechnung@beispiel.test",
    "SELLER_ELECTRONIC_ADDRESS_SCHEME": "EM",
    "SELLER_CONTACT_NAME": "Buchhaltung",
    "SELLER_CONTACT_PHONE": "+49 30 123456",
    "SELLER_CONTACT_EMAIL": "buchhaltung@beispiel.test",
    "SELLER_IBAN": "DE89370400440532013000",
    "SELLER_BIC": "COBADEFFXXX",
    "SELLER_PAYMENT_MEANS": "58",
}
# A German business buyer receiving XRechnung, and a Belgian one receiving Peppol BIS (UBL)
GERMAN_BUYER = {
    "name": "Kunde AG",
    "email": "einkauf@kunde.test",
    "currency": "EUR",
    "address": {"line1": "Marktplatz 5", "city": "Hamburg", "postal_code": "20095", "country": "DE"},
    "einvoice_format": "xrechnung",
    "vat_id": "DE987654321",
    "electronic_address": {"scheme": "EM", "identifier": "rechnungseingang@kunde.test"},
    "buyer_reference": "04011000-12345-34",
}
BELGIAN_BUYER = {
    "name": "Klant NV",
    "email": "boekhouding@klant.test",
    "currency": "EUR",
    "address": {"line1": "Grote Markt 1", "city": "Brussel", "postal_code": "1000", "country": "BE"},
    "einvoice_format": "ubl",
    "vat_id": "BE0403019261",
    "electronic_address": {"scheme": "0208", "identifier": "0403019261"},
    "buyer_reference": "PO-4711",
}


def create_customer(api: Any, **fields: Any) -> dict[str, Any]:
    status, customer, _ = api("POST", "/customers", fields)
    assert status == 201, customer
    return customer


def create_tax_rate(api: Any, percentage: str, **fields: Any) -> dict[str, Any]:
    body = {"display_name": "VAT", "percentage": percentage, "inclusive": False, **fields}
    status, rate, _ = api("POST", "/tax-rates", body)
    assert status == 201, rate
    return rate


def set_exchange_rate(api: Any, currency: str, rate_to_usd: str) -> None:
    body = {"rate_to_usd": rate_to_usd, "source": "ecb", "as_of": "2026-01-01T00:00:00Z"}
    status, out, _ = api("PUT", f"/exchange-rates/{currency}", body)
    assert status == 200, out


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
