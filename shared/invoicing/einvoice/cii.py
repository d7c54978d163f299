"""EN 16931 model -> UN/CEFACT Cross Industry Invoice D16B, built with lxml (order per the D16B XSD).

The guideline is plain EN 16931 (`urn:cen.eu:en16931:2017`), which is also the Factur-X / ZUGFeRD
"EN 16931" profile's identifier: the same XML is embedded into the PDF as factur-x.xml
(adapters/facturx.py). Every amount goes through `model.amount_text`.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from invoicing.einvoice.model import (
    CREDIT_TRANSFERS,
    Document,
    Line,
    Party,
    PaymentMeansCode,
    PostalAddress,
    VatCategory,
    VatTreatment,
    amount_text,
    decimal_text,
)

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
EN16931_GUIDELINE = "urn:cen.eu:en16931:2017"


def _ram(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{RAM}}}{name}", attrs)
    if text is not None:
        el.text = text
    return el


def _opt(parent: etree._Element, name: str, text: str) -> None:
    if text:
        _ram(parent, name, text)


def _date(parent: etree._Element, name: str, value: date, ns: str = UDT) -> None:
    holder = _ram(parent, name)
    el = etree.SubElement(holder, f"{{{ns}}}DateTimeString", format="102")
    el.text = value.strftime("%Y%m%d")


def _address(el: etree._Element, a: PostalAddress) -> None:
    _opt(el, "PostcodeCode", a.postal_code)  # BT-38 / BT-53 / BT-78
    _opt(el, "LineOne", a.line1)  # BT-35 / BT-50 / BT-75
    _opt(el, "LineTwo", a.line2)  # BT-36 / BT-51 / BT-76
    _opt(el, "CityName", a.city)  # BT-37 / BT-52 / BT-77
    _ram(el, "CountryID", a.country_code)  # BT-40 / BT-55 / BT-80
    _opt(el, "CountrySubDivisionName", a.subdivision)  # BT-39 / BT-54 / BT-79


class _Writer:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.not_subject = any(ln.vat.category is VatCategory.NOT_SUBJECT for ln in doc.lines)  # BR-O-02

    def amount(self, value: int) -> str:
        return amount_text(value, self.doc.currency_exponent)

    def build(self) -> etree._Element:
        doc = self.doc
        root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap={"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT})
        context = etree.SubElement(root, f"{{{RSM}}}ExchangedDocumentContext")
        _ram(_ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", EN16931_GUIDELINE)  # BT-24
        header = etree.SubElement(root, f"{{{RSM}}}ExchangedDocument")
        _ram(header, "ID", doc.number)  # BT-1
        _ram(header, "TypeCode", doc.type_code.value)  # BT-3
        _date(header, "IssueDateTime", doc.issue_date)  # BT-2
        if doc.note:
            _ram(_ram(header, "IncludedNote"), "Content", doc.note)  # BT-22
        transaction = etree.SubElement(root, f"{{{RSM}}}SupplyChainTradeTransaction")
        for line in doc.lines:
            self.line(transaction, line)
        self.agreement(transaction)
        self.delivery(transaction)
        self.settlement(transaction)
        return root

    def line(self, parent: etree._Element, line: Line) -> None:
        item = _ram(parent, "IncludedSupplyChainTradeLineItem")  # BG-25
        _ram(_ram(item, "AssociatedDocumentLineDocument"), "LineID", line.id)  # BT-126
        product = _ram(item, "SpecifiedTradeProduct")
        _ram(product, "Name", line.name)  # BT-153
        _opt(product, "Description", line.description)  # BT-154
        agreement = _ram(item, "SpecifiedLineTradeAgreement")
        _ram(_ram(agreement, "NetPriceProductTradePrice"), "ChargeAmount", decimal_text(line.net_price))  # BT-146
        _ram(
            _ram(item, "SpecifiedLineTradeDelivery"),
            "BilledQuantity",
            decimal_text(line.quantity),
            unitCode=line.unit_code,
        )
        settlement = _ram(item, "SpecifiedLineTradeSettlement")
        self.tax(settlement, line.vat)  # BG-30
        if line.period_start or line.period_end:  # BG-26
            period = _ram(settlement, "BillingSpecifiedPeriod")
            if line.period_start:
                _date(period, "StartDateTime", line.period_start)
            if line.period_end:
                _date(period, "EndDateTime", line.period_end)
        summation = _ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
        _ram(summation, "LineTotalAmount", self.amount(line.net_amount))  # BT-131

    def tax(
        self,
        parent: etree._Element,
        vat: VatTreatment,
        *,
        tax_amount: int | None = None,
        taxable_amount: int | None = None,
    ) -> None:
        tax = _ram(parent, "ApplicableTradeTax")
        breakdown = taxable_amount is not None
        if breakdown:
            _ram(tax, "CalculatedAmount", self.amount(tax_amount or 0))  # BT-117
        _ram(tax, "TypeCode", "VAT")
        if breakdown:
            _opt(tax, "ExemptionReason", vat.exemption_reason)  # BT-120
            _ram(tax, "BasisAmount", self.amount(taxable_amount or 0))  # BT-116
        _ram(tax, "CategoryCode", vat.category.value)  # BT-118 / BT-151
        if breakdown:
            _opt(tax, "ExemptionReasonCode", vat.exemption_code)  # BT-121
        if vat.rate is not None:
            _ram(tax, "RateApplicablePercent", decimal_text(vat.rate))  # BT-119 / BT-152

    def party(self, parent: etree._Element, name: str, party: Party) -> None:
        el = _ram(parent, name)
        _ram(el, "Name", party.name)  # BT-27 / BT-44
        if party.legal_registration_id or party.trading_name:
            legal = _ram(el, "SpecifiedLegalOrganization")
            _opt(legal, "ID", party.legal_registration_id)  # BT-30 / BT-47
            _opt(legal, "TradingBusinessName", party.trading_name)  # BT-28 / BT-45
        if party.contact:  # BG-6 / BG-9
            contact = _ram(el, "DefinedTradeContact")
            _opt(contact, "PersonName", party.contact.name)
            if party.contact.telephone:
                _ram(_ram(contact, "TelephoneUniversalCommunication"), "CompleteNumber", party.contact.telephone)
            if party.contact.email:
                _ram(_ram(contact, "EmailURIUniversalCommunication"), "URIID", party.contact.email)
        _address(_ram(el, "PostalTradeAddress"), party.address)
        if party.electronic_address is not None:  # BT-34 / BT-49
            uri = _ram(el, "URIUniversalCommunication")
            _ram(uri, "URIID", party.electronic_address.identifier, schemeID=party.electronic_address.scheme)
        if party.vat_id and not self.not_subject:  # BT-31 / BT-48
            _ram(_ram(el, "SpecifiedTaxRegistration"), "ID", party.vat_id, schemeID="VA")
        if party is self.doc.seller and party.tax_registration_id:  # BT-32
            _ram(_ram(el, "SpecifiedTaxRegistration"), "ID", party.tax_registration_id, schemeID="FC")

    def agreement(self, parent: etree._Element) -> None:
        doc = self.doc
        el = _ram(parent, "ApplicableHeaderTradeAgreement")
        _opt(el, "BuyerReference", doc.buyer_reference)  # BT-10
        self.party(el, "SellerTradeParty", doc.seller)
        self.party(el, "BuyerTradeParty", doc.buyer)
        if doc.purchase_order:
            _ram(_ram(el, "BuyerOrderReferencedDocument"), "IssuerAssignedID", doc.purchase_order)  # BT-13

    def delivery(self, parent: etree._Element) -> None:
        doc = self.doc
        el = _ram(parent, "ApplicableHeaderTradeDelivery")  # required by the schema, even empty
        if doc.deliver_to:  # BG-15
            _address(_ram(_ram(el, "ShipToTradeParty"), "PostalTradeAddress"), doc.deliver_to)
        if doc.delivery_date:
            _date(_ram(el, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", doc.delivery_date)  # BT-72

    def settlement(self, parent: etree._Element) -> None:
        doc = self.doc
        el = _ram(parent, "ApplicableHeaderTradeSettlement")
        payment = doc.payment
        debit = payment.direct_debit if payment else None
        if debit is not None:
            _opt(el, "CreditorReferenceID", debit.creditor_id)  # BT-90
        if payment is not None:
            _opt(el, "PaymentReference", payment.remittance_information)  # BT-83
        _ram(el, "InvoiceCurrencyCode", doc.currency)  # BT-5
        if payment is not None:  # BG-16
            means = _ram(el, "SpecifiedTradeSettlementPaymentMeans")
            _ram(means, "TypeCode", payment.means_code.value)  # BT-81
            if payment.means_code is PaymentMeansCode.CARD and payment.card_last_digits:  # BG-18
                card = _ram(means, "ApplicableTradeSettlementFinancialCard")
                _ram(card, "ID", payment.card_last_digits)  # BT-87
                _opt(card, "CardholderName", payment.card_holder)  # BT-88
            if debit is not None:
                _ram(_ram(means, "PayerPartyDebtorFinancialAccount"), "IBANID", debit.debited_iban)  # BT-91
            if payment.means_code in CREDIT_TRANSFERS and payment.account is not None:  # BG-17
                account = _ram(means, "PayeePartyCreditorFinancialAccount")
                _ram(account, "IBANID", payment.account.iban)  # BT-84
                _opt(account, "AccountName", payment.account.account_name)  # BT-85
                if payment.account.bic:
                    _ram(
                        _ram(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", payment.account.bic
                    )  # BT-86
        for group in doc.vat_breakdown():  # BG-23
            self.tax(el, group.vat, tax_amount=group.tax_amount, taxable_amount=group.taxable_amount)
        if doc.period_start or doc.period_end:  # BG-14
            period = _ram(el, "BillingSpecifiedPeriod")
            if doc.period_start:
                _date(period, "StartDateTime", doc.period_start)  # BT-73
            if doc.period_end:
                _date(period, "EndDateTime", doc.period_end)  # BT-74
        if doc.payment_terms or doc.due_date or debit is not None:
            terms = _ram(el, "SpecifiedTradePaymentTerms")
            _opt(terms, "Description", doc.payment_terms)  # BT-20
            if doc.due_date:
                _date(terms, "DueDateDateTime", doc.due_date)  # BT-9
            if debit is not None:
                _opt(terms, "DirectDebitMandateID", debit.mandate_reference)  # BT-89
        totals = doc.totals()
        summation = _ram(el, "SpecifiedTradeSettlementHeaderMonetarySummation")  # BG-22
        _ram(summation, "LineTotalAmount", self.amount(totals.line_total))  # BT-106
        _ram(summation, "TaxBasisTotalAmount", self.amount(totals.tax_exclusive))  # BT-109
        _ram(summation, "TaxTotalAmount", self.amount(totals.tax_total), currencyID=doc.currency)  # BT-110
        _ram(summation, "GrandTotalAmount", self.amount(totals.tax_inclusive))  # BT-112
        if totals.prepaid:
            _ram(summation, "TotalPrepaidAmount", self.amount(totals.prepaid))  # BT-113
        _ram(summation, "DuePayableAmount", self.amount(totals.payable))  # BT-115
        if doc.preceding_invoice:  # BG-3
            ref = _ram(el, "InvoiceReferencedDocument")
            _ram(ref, "IssuerAssignedID", doc.preceding_invoice)  # BT-25
            if doc.preceding_invoice_date:
                _date(ref, "FormattedIssueDateTime", doc.preceding_invoice_date, ns=QDT)  # BT-26


def to_cii(doc: Document) -> bytes:
    """The CII D16B XML of `doc` (UTF-8, with declaration)."""
    return etree.tostring(_Writer(doc).build(), xml_declaration=True, encoding="UTF-8", pretty_print=True)
