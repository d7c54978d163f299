"""Builders for e-invoice tests: finalized invoices made by the production finalize rules
(domain/finalization.py freeze + plan, the per-line tax of domain/invoice.py), credit notes by
domain/credit.py, and the seller/buyer settings the e-invoice needs. Pure: no store, no AWS.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

from invoicing.domain.credit import CreditMethod, CreditNote, CreditNoteStatus, CreditReason, LineCredit, compute_credit
from invoicing.domain.customer import Customer
from invoicing.domain.events import Actor
from invoicing.domain.finalization import UsdValue, freeze, plan
from invoicing.domain.invoice import (
    Address,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineTax,
    compute_totals,
    tax_for_line,
)
from invoicing.einvoice.mapping import BuyerSettings, EInvoiceInputs, SellerSettings
from invoicing.einvoice.model import (
    Contact,
    ElectronicAddress,
    Party,
    PaymentAccount,
    PaymentMeansCode,
    PostalAddress,
    Syntax,
    VatCategory,
    VatTreatment,
)

FINALIZED_AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)

SELLER = Party(
    name="Muster Software GmbH",
    trading_name="Muster Billing",
    address=PostalAddress("Hauptstraße 1", "", "Berlin", "10115", "", "DE"),
    legal_registration_id="HRB 123456",
    vat_id="DE123456789",
    electronic_address=ElectronicAddress("EM", "invoices@muster.example"),
    contact=Contact("Anna Muster", "+49 30 1234567", "billing@muster.example"),
)
SELLER_SETTINGS = SellerSettings(
    party=SELLER,
    payment_means=PaymentMeansCode.SEPA_CREDIT_TRANSFER,
    account=PaymentAccount("DE02120300000000202051", "Muster Software GmbH", "BYLADEM1001"),
    payment_terms="Payable within 30 days, no deduction.",
)

GERMAN_BUYER = Address(line1="Ringstraße 2", city="München", postal_code="80331", country="DE")
BELGIAN_BUYER = Address(line1="Rue de la Loi 16", city="Bruxelles", postal_code="1000", country="BE")
FRENCH_BUYER = Address(line1="12 rue de Rivoli", city="Paris", postal_code="75001", country="FR")

GERMAN_BUYER_SETTINGS = BuyerSettings(
    einvoice_format=Syntax.XRECHNUNG,
    vat_id="DE987654321",
    electronic_address=ElectronicAddress("EM", "rechnung@kaeufer.example"),
    buyer_reference="04011000-12345-34",  # a Leitweg-ID
)
BELGIAN_BUYER_SETTINGS = BuyerSettings(
    einvoice_format=Syntax.UBL,
    vat_id="BE0123456749",
    electronic_address=ElectronicAddress("0208", "0123456749"),
    buyer_reference="PO-BE-77",
)
FRENCH_BUYER_SETTINGS = BuyerSettings(
    einvoice_format=Syntax.CII,
    vat_id="FR40303265045",
    electronic_address=ElectronicAddress("0009", "30326504500012"),
    buyer_reference="ACHATS-2026",
)

STANDARD_19 = VatTreatment(VatCategory.STANDARD, Decimal("19"))
REDUCED_7 = VatTreatment(VatCategory.STANDARD, Decimal("7"))


@dataclass(frozen=True)
class LineSpec:
    description: str
    quantity: str
    unit_amount: int
    rate_id: str | None = None
    percent: str = "0"
    inclusive: bool = False


def customer(address: Address, name: str = "Käufer AG", tax_id: str = "") -> Customer:
    return Customer(
        id="cus_1",
        name=name,
        email="ap@kaeufer.example",
        address=address,
        currency="EUR",
        locale="de_DE",
        timezone="Europe/Berlin",
        tax_id=tax_id,
        reminders_enabled=True,
        balances={},
        metadata={},
        created_at="2026-11-01T00:00:00Z",
        updated_at="2026-11-01T00:00:00Z",
    )


def finalized_invoice(
    *specs: LineSpec,
    currency: str = "EUR",
    buyer: Customer | None = None,
    balance_cents: int = 0,
    memo: str = "",
) -> Invoice:
    """A draft with these lines, frozen and numbered by the production finalize rules."""
    cust = buyer or customer(GERMAN_BUYER)
    if balance_cents:
        cust = replace(cust, balances={currency: balance_cents})
    lines = []
    taxes: dict[str, LineTax] = {}
    for i, spec in enumerate(specs, start=1):
        line = InvoiceLine(
            id=f"li_{i}",
            description=spec.description,
            quantity=Decimal(spec.quantity).quantize(Decimal("0.0001")),
            unit_amount_cents=spec.unit_amount,
            tax_rate_id=spec.rate_id,
        )
        if spec.rate_id is not None:
            percent = Decimal(spec.percent).quantize(Decimal("0.0001"))
            taxes[line.id] = LineTax(
                tax_rate_id=spec.rate_id,
                percentage=percent,
                inclusive=spec.inclusive,
                tax_cents=tax_for_line(line.amount_cents, percent, spec.inclusive),
            )
            line = replace(line, tax=taxes[line.id])  # the line's own result, as the draft carries it
        lines.append(line)
    draft = Invoice(
        id="in_1",
        customer_id=cust.id,
        status=InvoiceStatus.DRAFT,
        currency=currency,
        created_at="2026-11-20T09:00:00Z",
        updated_at="2026-11-20T09:00:00Z",
        memo=memo,
        lines=tuple(lines),
    )
    totals = compute_totals(lines, taxes)
    at = FINALIZED_AT.isoformat().replace("+00:00", "Z")
    frozen = freeze(draft, cust, taxes, totals, UsdValue(totals.total_cents, Decimal(1), "test", at), FINALIZED_AT, at)
    return plan(draft, frozen, cust, 2026, 42, Actor("api_key:test")).invoice


def credit_note(invoice: Invoice, *, amount_cents: int | None = None, lines: tuple[LineCredit, ...] = ()) -> CreditNote:
    """A credit note of `invoice` whose amounts come from domain/credit.py's compute_credit."""
    amounts = compute_credit(invoice, amount_cents=amount_cents, lines=list(lines))
    return CreditNote(
        id="cn_1",
        number=f"{invoice.invoice_number}-CN-01",
        invoice_id=invoice.id,
        invoice_number=invoice.invoice_number,
        customer_id=invoice.customer_id,
        status=CreditNoteStatus.ISSUED,
        currency=invoice.currency,
        reason=CreditReason.ORDER_CHANGE,
        method=CreditMethod.CUSTOMER_BALANCE,
        memo="",
        lines=amounts.lines,
        subtotal_cents=amounts.subtotal_cents,
        tax_cents=amounts.tax_cents,
        total_cents=amounts.total_cents,
        pre_payment_cents=amounts.total_cents,
        post_payment_cents=0,
        balance_cents=0,
        refund_cents=0,
        out_of_band_cents=0,
        created_at="2026-11-28T12:00:00Z",
        actor="api_key:test",
    )


def inputs(
    buyer: BuyerSettings = GERMAN_BUYER_SETTINGS,
    vat: dict[str, VatTreatment] | None = None,
    seller: SellerSettings = SELLER_SETTINGS,
    **extra: object,
) -> EInvoiceInputs:
    return EInvoiceInputs(
        seller=seller,
        buyer=buyer,
        vat=vat if vat is not None else {"txr_19": STANDARD_19, "txr_7": REDUCED_7},
        **extra,  # type: ignore[arg-type]
    )
