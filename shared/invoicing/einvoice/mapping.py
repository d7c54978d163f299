"""Our domain objects -> the EN 16931 model (model.py). Pure: no I/O.

The e-invoice is built from the same frozen snapshot as the PDF and the API: the finalized invoice's
lines, its frozen per-line taxes (`Invoice.line_taxes`), its customer snapshot and its totals; a credit
note from its own computed lines. Nothing is recomputed that the domain already decided, so the totals
agree to the minor unit (tests/unit/test_einvoice_mapping.py).

Business terms the data model does not hold yet come from explicit inputs (`EInvoiceInputs`): the
seller's identifiers and account, the buyer's e-invoicing settings, the VAT category of each tax rate
and the unit code of each line. docs/einvoicing.md maps each term to its source. A missing input is not
an error here: the mapping writes what it has, and `domain/einvoicing.py` lists what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from invoicing.domain import money
from invoicing.domain.credit import CreditNote
from invoicing.domain.invoice import Address, CustomerSnapshot, Invoice, LineTax
from invoicing.einvoice.model import (
    Contact,
    DirectDebit,
    Document,
    DocumentType,
    ElectronicAddress,
    Line,
    NotRepresentable,
    Party,
    PaymentAccount,
    PaymentInstructions,
    PaymentMeansCode,
    PostalAddress,
    Syntax,
    VatCategory,
    VatTreatment,
    minor_to_decimal,
)

DEFAULT_UNIT_CODE = "C62"  # UN/ECE Rec 20 "one": a unit
NO_TAX_RATE = ""  # key of `EInvoiceInputs.vat` for lines that carry no tax rate
PRICE_EXTRA_PLACES = 4  # a net price derived from a tax-inclusive amount keeps 4 places beyond the minor unit


@dataclass(frozen=True)
class SellerSettings:
    """The seller (BG-4) and how it is paid (BG-16). Today: template parameters; later the seller
    settings API (docs/einvoicing.md)."""

    party: Party
    payment_means: PaymentMeansCode = PaymentMeansCode.SEPA_CREDIT_TRANSFER  # BT-81
    account: PaymentAccount | None = None  # BG-17
    creditor_id: str = ""  # BT-90, for SEPA direct debit
    payment_terms: str = ""  # BT-20


@dataclass(frozen=True)
class BuyerSettings:
    """A customer's e-invoicing settings: the terms of BG-7 the customer record lacks today."""

    einvoice_format: Syntax | None = None  # None: the customer receives PDFs only
    vat_id: str = ""  # BT-48; empty: the customer's `tax_id`
    legal_registration_id: str = ""  # BT-47
    electronic_address: ElectronicAddress | None = None  # BT-49
    buyer_reference: str = ""  # BT-10 (Leitweg-ID)
    contact: Contact = field(default_factory=Contact)  # BG-9
    mandate_reference: str = ""  # BT-89, for SEPA direct debit
    debited_iban: str = ""  # BT-91
    card_last_digits: str = ""  # BT-87, for card payments

    @property
    def receives_einvoices(self) -> bool:
        return self.einvoice_format is not None


@dataclass(frozen=True)
class EInvoiceInputs:
    seller: SellerSettings
    buyer: BuyerSettings
    # the VAT category of each tax rate, by tax_rate_id; NO_TAX_RATE for lines without one
    vat: Mapping[str, VatTreatment] = field(default_factory=dict)
    unit_codes: Mapping[str, str] = field(default_factory=dict)  # BT-130 by line id; default C62
    purchase_order: str = ""  # BT-13


def _day(timestamp: str | None, fallback: date | None = None) -> date:
    if timestamp:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).date()
    if fallback is None:
        raise NotRepresentable("the document has no issue date: it is not finalized")
    return fallback


def _address(address: Address) -> PostalAddress:
    return PostalAddress(
        line1=address.line1,
        line2=address.line2,
        city=address.city,
        postal_code=address.postal_code,
        subdivision=address.state,
        country_code=address.country,
    )


def buyer_party(customer: CustomerSnapshot, buyer: BuyerSettings) -> Party:
    """BG-7 from the customer snapshot frozen on the document plus the customer's e-invoicing settings."""
    return Party(
        name=customer.name,
        address=_address(customer.address),
        legal_registration_id=buyer.legal_registration_id,
        vat_id=buyer.vat_id or customer.tax_id,
        electronic_address=buyer.electronic_address,
        contact=buyer.contact if buyer.contact else Contact(email=customer.email),
    )


def treatment_for(tax: LineTax | None, inputs: EInvoiceInputs) -> VatTreatment | None:
    """The line's VAT category from the inputs, at the rate the domain froze on the line."""
    rate_id = tax.tax_rate_id if tax is not None and tax.tax_rate_id else NO_TAX_RATE
    chosen = inputs.vat.get(rate_id)
    if chosen is None:
        return None
    if chosen.category is VatCategory.NOT_SUBJECT:
        return VatTreatment(chosen.category, None, chosen.exemption_code, chosen.exemption_reason)
    percentage = tax.percentage if tax is not None else Decimal(0)
    return VatTreatment(chosen.category, percentage.normalize(), chosen.exemption_code, chosen.exemption_reason)


# Where no treatment is known the line still gets one, so that the whole document can be checked at
# once; domain/einvoicing.py reports it (BT-151), and the writers never run on such a document.
_UNKNOWN = VatTreatment(VatCategory.STANDARD, None)


def _net_price(net_amount: int, quantity: Decimal, exponent: int) -> Decimal:
    """BT-146 for a line whose amount included its VAT: the net amount per unit, half-up at 4 places
    beyond the minor unit (EN 16931 lets the price carry more decimals than amounts)."""
    price = minor_to_decimal(abs(net_amount), exponent) / abs(quantity)
    return price.quantize(Decimal(1).scaleb(-(exponent + PRICE_EXTRA_PLACES)), rounding=ROUND_HALF_UP)


def _line(
    *,
    line_id: str,
    name: str,
    quantity: Decimal,
    unit_amount: int | None,
    amount: int,
    tax: int,
    inclusive: bool,
    vat: VatTreatment | None,
    unit_code: str,
    exponent: int,
) -> Line:
    net = amount - tax if inclusive else amount
    if unit_amount is not None and not inclusive:
        price = minor_to_decimal(abs(unit_amount), exponent)
    else:
        price = _net_price(net, quantity, exponent)
    # EN 16931 has no negative price (BR-27): a discount is a negative quantity at a positive price
    signed_quantity = -quantity if net < 0 or (unit_amount is not None and unit_amount < 0) else quantity
    return Line(
        id=line_id,
        name=name,
        quantity=signed_quantity,
        unit_code=unit_code,
        net_price=price,
        net_amount=net,
        tax=tax,
        vat=vat or _UNKNOWN,
    )


def _payment(seller: SellerSettings, buyer: BuyerSettings, remittance: str) -> PaymentInstructions:
    code = seller.payment_means
    return PaymentInstructions(
        means_code=code,
        remittance_information=remittance,
        account=seller.account
        if code in (PaymentMeansCode.CREDIT_TRANSFER, PaymentMeansCode.SEPA_CREDIT_TRANSFER)
        else None,
        card_last_digits=buyer.card_last_digits if code is PaymentMeansCode.CARD else "",
        direct_debit=(
            DirectDebit(buyer.mandate_reference, seller.creditor_id, buyer.debited_iban)
            if code is PaymentMeansCode.SEPA_DIRECT_DEBIT
            else None
        ),
    )


def _intra_community_delivery(lines: tuple[Line, ...], buyer: Party, period: bool, issued: date) -> dict:
    """BR-IC-11/12: an intra-community supply states when (a period, else the date of supply, which
    for our invoices is the date of issue) and where (the buyer's address; XRechnung then wants its
    city and post code too, BR-DE-10/11) it was delivered."""
    if not any(ln.vat.category is VatCategory.INTRA_COMMUNITY for ln in lines):
        return {}
    return {"delivery_date": None if period else issued, "deliver_to": buyer.address}


def invoice_document(invoice: Invoice, inputs: EInvoiceInputs) -> Document:
    """A finalized invoice (open, paid, void or uncollectible) -> an EN 16931 invoice (380)."""
    if invoice.is_draft or invoice.invoice_number is None or invoice.customer is None:
        raise NotRepresentable(f"invoice {invoice.id} is a draft: only a finalized invoice is an e-invoice")
    exponent = money.currency_exponent(invoice.currency)
    issued = _day(invoice.finalized_at)
    taxes = invoice.effective_taxes()
    lines = tuple(
        _line(
            line_id=str(i),
            name=line.description,
            quantity=line.quantity,
            unit_amount=line.unit_amount_cents,
            amount=line.amount_cents,
            tax=taxes[line.id].tax_cents if line.id in taxes else 0,
            inclusive=bool(line.id in taxes and taxes[line.id].inclusive),
            vat=treatment_for(taxes.get(line.id), inputs),
            unit_code=inputs.unit_codes.get(line.id, DEFAULT_UNIT_CODE),
            exponent=exponent,
        )
        for i, line in enumerate(invoice.lines, start=1)
    )
    buyer = buyer_party(invoice.customer, inputs.buyer)
    has_period = invoice.period_start is not None or invoice.period_end is not None
    return Document(
        type_code=DocumentType.INVOICE,
        number=invoice.invoice_number,
        issue_date=issued,
        currency=invoice.currency,
        currency_exponent=exponent,
        seller=inputs.seller.party,
        buyer=buyer,
        lines=lines,
        due_date=invoice.due_date,
        payment_terms=inputs.seller.payment_terms,
        buyer_reference=inputs.buyer.buyer_reference,
        purchase_order=inputs.purchase_order,
        note=invoice.memo,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        payment=_payment(inputs.seller, inputs.buyer, invoice.invoice_number),
        prepaid=invoice.applied_balance_cents,
        **_intra_community_delivery(lines, buyer, has_period, issued),
    )


def credit_note_document(note: CreditNote, invoice: Invoice, inputs: EInvoiceInputs) -> Document:
    """A credit note (381) of `invoice`, referencing it (BT-25, BT-26).

    A line credited by quantity takes the VAT category of the original line. A lump-sum (or free)
    line is a part of the invoice's total; it has one VAT category only when the invoice has one,
    so a lump sum on an invoice with several categories or rates cannot be an EN 16931 credit note
    (domain/einvoicing.py says so before this raises).
    """
    if invoice.customer is None or invoice.invoice_number is None:
        raise NotRepresentable(f"invoice {invoice.id} is not finalized")
    exponent = money.currency_exponent(note.currency)
    taxes = invoice.effective_taxes()
    by_id = {line.id: line for line in invoice.lines}
    invoice_vats = {treatment_for(t, inputs) for t in taxes.values()}
    if len(invoice.lines) > len(taxes):
        invoice_vats.add(treatment_for(None, inputs))
    lines = []
    for i, credit in enumerate(note.lines, start=1):
        if credit.line_id is not None and credit.line_id in by_id:
            original = by_id[credit.line_id]
            vat = treatment_for(taxes.get(original.id), inputs)
            unit_code = inputs.unit_codes.get(original.id, DEFAULT_UNIT_CODE)
        else:
            vat = next(iter(invoice_vats)) if len(invoice_vats) == 1 else None
            unit_code = DEFAULT_UNIT_CODE
        lines.append(
            _line(
                line_id=str(i),
                name=credit.description,
                quantity=credit.quantity if credit.quantity is not None else Decimal(1),
                unit_amount=credit.unit_amount_cents,
                amount=credit.amount_cents,
                tax=credit.tax_cents,
                inclusive=credit.tax_inclusive,
                vat=vat,
                unit_code=unit_code,
                exponent=exponent,
            )
        )
    return Document(
        type_code=DocumentType.CREDIT_NOTE,
        number=note.number,
        issue_date=_day(note.created_at),
        currency=note.currency,
        currency_exponent=exponent,
        seller=inputs.seller.party,
        buyer=buyer_party(invoice.customer, inputs.buyer),
        lines=tuple(lines),
        buyer_reference=inputs.buyer.buyer_reference,
        purchase_order=inputs.purchase_order,
        note=note.memo or f"Credit note for invoice {invoice.invoice_number} ({note.reason.value})",
        preceding_invoice=invoice.invoice_number,
        preceding_invoice_date=_day(invoice.finalized_at),
        payment=_payment(inputs.seller, inputs.buyer, note.number),
    )


def has_unknown_vat(line: Line) -> bool:
    return line.vat is _UNKNOWN
