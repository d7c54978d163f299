"""EN 16931 model -> UBL 2.1 Invoice / CreditNote, built with lxml (element order per the UBL 2.1 XSD).

Two customizations of the same syntax binding:
- `Syntax.UBL`: Peppol BIS Billing 3.0 (what a Belgian buyer receives through Peppol);
- `Syntax.XRECHNUNG`: the German XRechnung 3.0 CIUS (xrechnung.py holds its identifiers).
The XML is built from the model only; every amount goes through `model.amount_text`.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from invoicing.einvoice.model import (
    CREDIT_TRANSFERS,
    Document,
    DocumentType,
    Line,
    Party,
    PaymentMeansCode,
    PostalAddress,
    Syntax,
    VatCategory,
    VatTreatment,
    amount_text,
    decimal_text,
)

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

PEPPOL_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
XRECHNUNG_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"


def _cbc(parent: etree._Element, name: str, text: str, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{CBC}}}{name}", attrs)
    el.text = text
    return el


def _cac(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _opt(parent: etree._Element, name: str, text: str) -> None:
    if text:
        _cbc(parent, name, text)


def _day(value: date) -> str:
    return value.isoformat()


class _Writer:
    def __init__(self, doc: Document, syntax: Syntax) -> None:
        self.doc = doc
        self.syntax = syntax
        self.credit = doc.type_code is DocumentType.CREDIT_NOTE
        # BR-O-02: a document not subject to VAT carries neither party's VAT identifier
        self.not_subject = any(ln.vat.category is VatCategory.NOT_SUBJECT for ln in doc.lines)

    def amount(self, parent: etree._Element, name: str, value: int) -> None:
        _cbc(parent, name, amount_text(value, self.doc.currency_exponent), currencyID=self.doc.currency)

    def build(self) -> etree._Element:
        doc = self.doc
        root_ns = NS_CREDIT_NOTE if self.credit else NS_INVOICE
        root = etree.Element(
            f"{{{root_ns}}}{'CreditNote' if self.credit else 'Invoice'}",
            nsmap={None: root_ns, "cac": CAC, "cbc": CBC},
        )
        if self.syntax is Syntax.XRECHNUNG:
            _cbc(root, "CustomizationID", XRECHNUNG_CUSTOMIZATION)  # BT-24
            _cbc(root, "ProfileID", PEPPOL_PROFILE)  # BT-23
        else:
            _cbc(root, "CustomizationID", PEPPOL_CUSTOMIZATION)
            _cbc(root, "ProfileID", PEPPOL_PROFILE)
        _cbc(root, "ID", doc.number)  # BT-1
        _cbc(root, "IssueDate", _day(doc.issue_date))  # BT-2
        if not self.credit and doc.due_date is not None:
            _cbc(root, "DueDate", _day(doc.due_date))  # BT-9
        _cbc(root, "CreditNoteTypeCode" if self.credit else "InvoiceTypeCode", doc.type_code.value)  # BT-3
        _opt(root, "Note", doc.note)  # BT-22
        _cbc(root, "DocumentCurrencyCode", doc.currency)  # BT-5
        _opt(root, "BuyerReference", doc.buyer_reference)  # BT-10
        if doc.period_start or doc.period_end:  # BG-14
            period = _cac(root, "InvoicePeriod")
            if doc.period_start:
                _cbc(period, "StartDate", _day(doc.period_start))  # BT-73
            if doc.period_end:
                _cbc(period, "EndDate", _day(doc.period_end))  # BT-74
        if doc.purchase_order:
            _cbc(_cac(root, "OrderReference"), "ID", doc.purchase_order)  # BT-13
        if doc.preceding_invoice:  # BG-3
            ref = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
            _cbc(ref, "ID", doc.preceding_invoice)  # BT-25
            if doc.preceding_invoice_date:
                _cbc(ref, "IssueDate", _day(doc.preceding_invoice_date))  # BT-26
        self.party(_cac(root, "AccountingSupplierParty"), doc.seller, seller=True)
        self.party(_cac(root, "AccountingCustomerParty"), doc.buyer, seller=False)
        if doc.delivery_date or doc.deliver_to:  # BG-13
            delivery = _cac(root, "Delivery")
            if doc.delivery_date:
                _cbc(delivery, "ActualDeliveryDate", _day(doc.delivery_date))  # BT-72
            if doc.deliver_to:  # BG-15
                self.address(_cac(_cac(delivery, "DeliveryLocation"), "Address"), doc.deliver_to)
        self.payment_means(root)
        if doc.payment_terms:
            _cbc(_cac(root, "PaymentTerms"), "Note", doc.payment_terms)  # BT-20
        self.tax_total(root)
        self.monetary_total(root)
        for line in doc.lines:
            self.line(root, line)
        return root

    def party(self, parent: etree._Element, party: Party, *, seller: bool) -> None:
        el = _cac(parent, "Party")
        if party.electronic_address is not None:  # BT-34 / BT-49
            _cbc(el, "EndpointID", party.electronic_address.identifier, schemeID=party.electronic_address.scheme)
        debit = self.doc.payment.direct_debit if self.doc.payment else None
        if seller and debit is not None and debit.creditor_id:  # BT-90: the seller's SEPA creditor id
            _cbc(_cac(el, "PartyIdentification"), "ID", debit.creditor_id, schemeID="SEPA")
        if party.trading_name:
            _cbc(_cac(el, "PartyName"), "Name", party.trading_name)  # BT-28 / BT-45
        self.address(_cac(el, "PostalAddress"), party.address)
        if party.vat_id and not self.not_subject:  # BT-31 / BT-48
            scheme = _cac(el, "PartyTaxScheme")
            _cbc(scheme, "CompanyID", party.vat_id)
            _cbc(_cac(scheme, "TaxScheme"), "ID", "VAT")
        if seller and party.tax_registration_id:  # BT-32
            scheme = _cac(el, "PartyTaxScheme")
            _cbc(scheme, "CompanyID", party.tax_registration_id)
            _cbc(_cac(scheme, "TaxScheme"), "ID", "FC")
        legal = _cac(el, "PartyLegalEntity")
        _cbc(legal, "RegistrationName", party.name)  # BT-27 / BT-44
        _opt(legal, "CompanyID", party.legal_registration_id)  # BT-30 / BT-47
        if party.contact:  # BG-6 / BG-9
            contact = _cac(el, "Contact")
            _opt(contact, "Name", party.contact.name)
            _opt(contact, "Telephone", party.contact.telephone)
            _opt(contact, "ElectronicMail", party.contact.email)

    def address(self, el: etree._Element, a: PostalAddress) -> None:
        _opt(el, "StreetName", a.line1)  # BT-35 / BT-50 / BT-75
        _opt(el, "AdditionalStreetName", a.line2)  # BT-36 / BT-51 / BT-76
        _opt(el, "CityName", a.city)  # BT-37 / BT-52 / BT-77
        _opt(el, "PostalZone", a.postal_code)  # BT-38 / BT-53 / BT-78
        _opt(el, "CountrySubentity", a.subdivision)  # BT-39 / BT-54 / BT-79
        _cbc(_cac(el, "Country"), "IdentificationCode", a.country_code)  # BT-40 / BT-55 / BT-80

    def payment_means(self, root: etree._Element) -> None:
        payment = self.doc.payment
        if payment is None:
            return
        means = _cac(root, "PaymentMeans")  # BG-16
        _cbc(means, "PaymentMeansCode", payment.means_code.value)  # BT-81
        if self.credit and self.doc.due_date is not None:
            _cbc(means, "PaymentDueDate", _day(self.doc.due_date))  # BT-9 on a credit note
        _opt(means, "PaymentID", payment.remittance_information)  # BT-83
        if payment.means_code is PaymentMeansCode.CARD and payment.card_last_digits:  # BG-18
            card = _cac(means, "CardAccount")
            _cbc(card, "PrimaryAccountNumberID", payment.card_last_digits)  # BT-87
            _cbc(card, "NetworkID", "NA")
            _opt(card, "HolderName", payment.card_holder)  # BT-88
        if payment.means_code in CREDIT_TRANSFERS and payment.account is not None:  # BG-17
            account = _cac(means, "PayeeFinancialAccount")
            _cbc(account, "ID", payment.account.iban)  # BT-84
            _opt(account, "Name", payment.account.account_name)  # BT-85
            if payment.account.bic:
                _cbc(_cac(account, "FinancialInstitutionBranch"), "ID", payment.account.bic)  # BT-86
        if payment.means_code is PaymentMeansCode.SEPA_DIRECT_DEBIT and payment.direct_debit is not None:  # BG-19
            mandate = _cac(means, "PaymentMandate")
            _cbc(mandate, "ID", payment.direct_debit.mandate_reference)  # BT-89
            _cbc(_cac(mandate, "PayerFinancialAccount"), "ID", payment.direct_debit.debited_iban)  # BT-91

    def tax_category(self, parent: etree._Element, name: str, vat: VatTreatment, *, breakdown: bool) -> None:
        category = _cac(parent, name)
        _cbc(category, "ID", vat.category.value)  # BT-118 / BT-151
        if vat.rate is not None:
            _cbc(category, "Percent", decimal_text(vat.rate))  # BT-119 / BT-152
        if breakdown:
            _opt(category, "TaxExemptionReasonCode", vat.exemption_code)  # BT-121
            _opt(category, "TaxExemptionReason", vat.exemption_reason)  # BT-120
        _cbc(_cac(category, "TaxScheme"), "ID", "VAT")

    def tax_total(self, root: etree._Element) -> None:
        total = _cac(root, "TaxTotal")
        self.amount(total, "TaxAmount", self.doc.totals().tax_total)  # BT-110
        for group in self.doc.vat_breakdown():  # BG-23
            sub = _cac(total, "TaxSubtotal")
            self.amount(sub, "TaxableAmount", group.taxable_amount)  # BT-116
            self.amount(sub, "TaxAmount", group.tax_amount)  # BT-117
            self.tax_category(sub, "TaxCategory", group.vat, breakdown=True)

    def monetary_total(self, root: etree._Element) -> None:
        totals = self.doc.totals()
        el = _cac(root, "LegalMonetaryTotal")  # BG-22
        self.amount(el, "LineExtensionAmount", totals.line_total)  # BT-106
        self.amount(el, "TaxExclusiveAmount", totals.tax_exclusive)  # BT-109
        self.amount(el, "TaxInclusiveAmount", totals.tax_inclusive)  # BT-112
        if totals.prepaid:
            self.amount(el, "PrepaidAmount", totals.prepaid)  # BT-113
        self.amount(el, "PayableAmount", totals.payable)  # BT-115

    def line(self, root: etree._Element, line: Line) -> None:
        el = _cac(root, "CreditNoteLine" if self.credit else "InvoiceLine")  # BG-25
        _cbc(el, "ID", line.id)  # BT-126
        _cbc(
            el,
            "CreditedQuantity" if self.credit else "InvoicedQuantity",
            decimal_text(line.quantity),
            unitCode=line.unit_code,
        )
        self.amount(el, "LineExtensionAmount", line.net_amount)  # BT-131
        if line.period_start or line.period_end:  # BG-26
            period = _cac(el, "InvoicePeriod")
            if line.period_start:
                _cbc(period, "StartDate", _day(line.period_start))
            if line.period_end:
                _cbc(period, "EndDate", _day(line.period_end))
        item = _cac(el, "Item")  # BG-31
        _opt(item, "Description", line.description)  # BT-154
        _cbc(item, "Name", line.name)  # BT-153
        self.tax_category(item, "ClassifiedTaxCategory", line.vat, breakdown=False)  # BG-30
        price = _cac(el, "Price")  # BG-29
        _cbc(price, "PriceAmount", decimal_text(line.net_price), currencyID=self.doc.currency)  # BT-146


def to_ubl(doc: Document, syntax: Syntax = Syntax.UBL) -> bytes:
    """The UBL 2.1 XML of `doc` (UTF-8, with declaration)."""
    if syntax is Syntax.CII:
        raise ValueError("CII is written by cii.to_cii")
    root = _Writer(doc, syntax).build()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
