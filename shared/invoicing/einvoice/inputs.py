"""The stored terms -> `EInvoiceInputs` (mapping.py): the seller from the typed settings (template
parameters), the buyer's e-invoicing terms from the customer record, the VAT category of each tax
rate and the unit code of each line. Pure: the caller loads, this only reshapes.

One function for every caller (finalize's check, the e-invoice endpoints, the render job), so the
document that finalize checked is the document that is served and stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from invoicing.domain.credit import CreditNote
from invoicing.domain.customer import Customer
from invoicing.domain.einvoicing import MissingTerm, credit_note_problems, finalize_problems
from invoicing.domain.invoice import Invoice
from invoicing.einvoice import render
from invoicing.einvoice.mapping import (
    BuyerSettings,
    EInvoiceInputs,
    SellerSettings,
    credit_note_document,
    invoice_document,
)
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
from invoicing.errors import EInvoiceTermsMissing
from invoicing.settings import Settings


class VatTerms(Protocol):
    """What e-invoicing reads of a tax rate (store/tax_rates.py TaxRate)."""

    @property
    def id(self) -> str: ...
    @property
    def vat_category(self) -> str: ...
    @property
    def exemption_reason_code(self) -> str | None: ...
    @property
    def exemption_reason(self) -> str | None: ...


def einvoice_format(customer: Customer) -> Syntax | None:
    """The customer's format; None when it receives PDFs only."""
    return None if customer.einvoice_format in ("", "none") else Syntax(customer.einvoice_format)


def seller_settings(settings: Settings) -> SellerSettings:
    """BG-4 and BG-16 from the Seller* template parameters (docs/deploy.md)."""
    electronic = (
        ElectronicAddress(settings.seller_electronic_address_scheme, settings.seller_electronic_address)
        if settings.seller_electronic_address
        else None
    )
    party = Party(
        name=settings.seller_name,
        trading_name=settings.seller_trading_name,
        address=PostalAddress(
            line1=settings.seller_street,
            city=settings.seller_city,
            postal_code=settings.seller_postal_code,
            country_code=settings.seller_country,
        ),
        legal_registration_id=settings.seller_legal_registration_id,
        vat_id=settings.seller_vat_id,
        tax_registration_id=settings.seller_tax_registration_id,
        electronic_address=electronic,
        contact=Contact(
            name=settings.seller_contact_name,
            telephone=settings.seller_contact_phone,
            email=settings.seller_contact_email,
        ),
    )
    account = (
        PaymentAccount(iban=settings.seller_iban, account_name=settings.seller_account_name, bic=settings.seller_bic)
        if settings.seller_iban
        else None
    )
    return SellerSettings(party=party, payment_means=PaymentMeansCode(settings.seller_payment_means), account=account)


def buyer_settings(customer: Customer, syntax: Syntax | None) -> BuyerSettings:
    """BG-7's terms the snapshot lacks, from the customer record as it is now (the name and address
    come from the snapshot frozen on the invoice)."""
    electronic = (
        ElectronicAddress(customer.electronic_address_scheme, customer.electronic_address)
        if customer.electronic_address
        else None
    )
    return BuyerSettings(
        einvoice_format=syntax,
        vat_id=customer.vat_id,
        electronic_address=electronic,
        buyer_reference=customer.buyer_reference,
    )


def vat_treatments(rates: Iterable[VatTerms]) -> dict[str, VatTreatment]:
    """Each tax rate's VAT category and exemption reason, by tax rate id (the rate itself is the one
    frozen on each line)."""
    return {
        rate.id: VatTreatment(
            VatCategory(rate.vat_category), None, rate.exemption_reason_code or "", rate.exemption_reason or ""
        )
        for rate in rates
    }


def einvoice_inputs(
    invoice: Invoice,
    customer: Customer,
    settings: Settings,
    rates: Mapping[str, VatTerms],
    syntax: Syntax | None,
) -> EInvoiceInputs:
    """Everything `invoice_document` / `credit_note_document` need beside the documents themselves.
    `syntax` None: the customer receives PDFs only (the finalize check then has nothing to say)."""
    return EInvoiceInputs(
        seller=seller_settings(settings),
        buyer=buyer_settings(customer, syntax),
        vat=vat_treatments(rates.values()),
        unit_codes={line.id: line.unit_code for line in invoice.lines},
        purchase_order=invoice.purchase_order,
    )


def rate_ids(invoice: Invoice) -> list[str]:
    """The tax rates whose categories the document needs: those frozen on (or previewed for) its lines."""
    taxes = invoice.effective_taxes()
    ids = {t.tax_rate_id for t in taxes.values() if t.tax_rate_id}
    ids |= {line.tax_rate_id for line in invoice.lines if line.tax_rate_id}
    return sorted(ids)


def terms_missing(syntax: Syntax, problems: list[MissingTerm]) -> EInvoiceTermsMissing:
    """The 422 for a document that cannot be an e-invoice in `syntax`: every problem in details."""
    shown = "; ".join(p.message for p in problems[:3]) + ("; ..." if len(problems) > 3 else "")
    return EInvoiceTermsMissing(
        f"the document cannot be issued as a {syntax.value} e-invoice: {shown}", [p.as_dict() for p in problems]
    )


def invoice_xml(
    invoice: Invoice, customer: Customer, settings: Settings, rates: Mapping[str, VatTerms], syntax: Syntax
) -> bytes:
    """The finalized invoice's e-invoice in `syntax`, or `EInvoiceTermsMissing` when the terms stored
    today do not make a valid one (e.g. a customer's settings changed since finalize checked)."""
    inputs = einvoice_inputs(invoice, customer, settings, rates, syntax)
    problems = finalize_problems(invoice, inputs)
    if problems:
        raise terms_missing(syntax, problems)
    return render(invoice_document(invoice, inputs), syntax)


def credit_note_xml(
    note: CreditNote,
    invoice: Invoice,
    customer: Customer,
    settings: Settings,
    rates: Mapping[str, VatTerms],
    syntax: Syntax,
) -> bytes:
    """The credit note's e-invoice (381, referencing `invoice`), or `EInvoiceTermsMissing`."""
    inputs = einvoice_inputs(invoice, customer, settings, rates, syntax)
    problems = credit_note_problems(note, invoice, inputs)
    if problems:
        raise terms_missing(syntax, problems)
    return render(credit_note_document(note, invoice, inputs), syntax)
