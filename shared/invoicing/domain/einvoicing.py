"""Can this invoice be issued as an e-invoice? The finalize-time check, pure, returned as data.

For a customer who receives e-invoices, `finalize_problems` lists every business term that is missing
or wrong, in plain words and with the official rule it answers to ("BT-31 seller VAT identifier is
required for category S", BR-S-02). The finalize use case will refuse with 422 and this list (the
wiring comes with the endpoint, docs/einvoicing.md); nothing is written when the list is not empty.

The checks restate the EN 16931 rules (and, per format, the Peppol BIS and XRechnung ones) that our
own data can break. The official rules themselves run in the tests (tests/unit/test_einvoice_rules.py):
every document that passes this check must pass them too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from invoicing.domain.credit import CreditNote
from invoicing.domain.invoice import Invoice
from invoicing.einvoice import codes
from invoicing.einvoice.mapping import (
    EInvoiceInputs,
    credit_note_document,
    has_unknown_vat,
    invoice_document,
)
from invoicing.einvoice.model import (
    CREDIT_TRANSFERS,
    EXEMPTION_REQUIRED,
    ZERO_RATED,
    Document,
    DocumentType,
    NotRepresentable,
    Party,
    PaymentMeansCode,
    Syntax,
    VatCategory,
    amount_text,
)


@dataclass(frozen=True)
class MissingTerm:
    """One reason the document cannot be issued: the business term, the official rule, plain words."""

    term: str  # "BT-31"
    rule: str  # "BR-S-02"
    message: str  # "BT-31 seller VAT identifier is required for category S"

    def as_dict(self) -> dict[str, str]:
        return {"term": self.term, "rule": self.rule, "message": self.message}


# the seller-side rule of each category: which identifiers make the seller VAT-registered enough
_SELLER_VAT_RULE = {
    VatCategory.STANDARD: "BR-S-02",
    VatCategory.ZERO: "BR-Z-02",
    VatCategory.EXEMPT: "BR-E-02",
    VatCategory.REVERSE_CHARGE: "BR-AE-02",
    VatCategory.INTRA_COMMUNITY: "BR-IC-02",
    VatCategory.EXPORT: "BR-G-02",
    VatCategory.CANARY_IGIC: "BR-AF-02",
    VatCategory.CEUTA_MELILLA_IPSI: "BR-AG-02",
}
_RULE_PREFIX = {
    VatCategory.STANDARD: "BR-S",
    VatCategory.ZERO: "BR-Z",
    VatCategory.EXEMPT: "BR-E",
    VatCategory.REVERSE_CHARGE: "BR-AE",
    VatCategory.INTRA_COMMUNITY: "BR-IC",
    VatCategory.EXPORT: "BR-G",
    VatCategory.NOT_SUBJECT: "BR-O",
    VatCategory.CANARY_IGIC: "BR-AF",
    VatCategory.CEUTA_MELILLA_IPSI: "BR-AG",
}
_CATEGORY_TAX_RULE = {
    VatCategory.STANDARD: "BR-S-09",
    VatCategory.CANARY_IGIC: "BR-AF-09",
    VatCategory.CEUTA_MELILLA_IPSI: "BR-AG-09",
}
XRECHNUNG_CARDINALITY = "XRechnung-3.0-cardinality"
_XR_EMAIL = re.compile(r"^[^@\s]+@([^@.\s]+\.)+[^@.\s]+$")  # XR-EMAIL-REGEX of the XRechnung rules
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")


def iban_ok(iban: str) -> bool:
    """ISO 13616: the shape and the mod-97 check digits."""
    compact = iban.replace(" ", "").upper()
    if not _IBAN.match(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _add(out: list[MissingTerm], term: str, rule: str, message: str) -> None:
    out.append(MissingTerm(term, rule, message))


def _party(out: list[MissingTerm], party: Party, *, seller: bool) -> None:
    who = "seller" if seller else "buyer"
    name_term, name_rule = ("BT-27", "BR-06") if seller else ("BT-44", "BR-07")
    country_term, country_rule = ("BT-40", "BR-09") if seller else ("BT-55", "BR-11")
    if not party.name.strip():
        _add(out, name_term, name_rule, f"{name_term} {who} name is required")
    country = party.address.country_code
    if not country:
        _add(out, country_term, country_rule, f"{country_term} {who} country code is required")
    elif country not in codes.COUNTRY_CODES:
        _add(out, country_term, "BR-CL-14", f"{country_term} {who} country code {country!r} is not ISO 3166-1 alpha-2")
    address = party.electronic_address
    if address is not None:
        term = "BT-34" if seller else "BT-49"
        if not address.identifier.strip():
            _add(out, term, "BR-62" if seller else "BR-63", f"{term} {who} electronic address is empty")
        if address.scheme not in codes.EAS_SCHEMES:
            _add(
                out, f"{term}-1", "BR-CL-25", f"{term}-1 {who} electronic address scheme {address.scheme!r} is unknown"
            )


def _categories(out: list[MissingTerm], doc: Document) -> None:
    seller, buyer = doc.seller, doc.buyer
    seen = {line.vat.category for line in doc.lines}
    for category in sorted(seen, key=lambda c: c.value):
        rule = _SELLER_VAT_RULE.get(category)
        if rule and not (seller.vat_id or seller.tax_registration_id):
            _add(out, "BT-31", rule, f"BT-31 seller VAT identifier is required for category {category.value}")
        if category is VatCategory.INTRA_COMMUNITY:
            if not seller.vat_id:
                _add(out, "BT-31", "BR-IC-02", "BT-31 seller VAT identifier is required for category K")
            if not buyer.vat_id:
                _add(out, "BT-48", "BR-IC-02", "BT-48 buyer VAT identifier is required for category K")
            if not (doc.delivery_date or doc.period_start or doc.period_end):
                _add(
                    out, "BT-72", "BR-IC-11", "BT-72 delivery date or BG-14 invoicing period is required for category K"
                )
            if doc.deliver_to is None or not doc.deliver_to.country_code:
                _add(out, "BT-80", "BR-IC-12", "BT-80 deliver-to country is required for category K")
        if category is VatCategory.REVERSE_CHARGE and not (buyer.vat_id or buyer.legal_registration_id):
            _add(
                out,
                "BT-48",
                "BR-AE-02",
                "BT-48 buyer VAT identifier (or BT-47 legal registration) is required for category AE",
            )
    reasons: dict[tuple[str, object], set[tuple[str, str]]] = {}
    for line in doc.lines:
        reasons.setdefault(line.vat.key, set()).add((line.vat.exemption_code, line.vat.exemption_reason))
    for (code, rate), found in reasons.items():
        if len(found) > 1:  # one VAT breakdown per category and rate (BR-x-08) carries one reason
            _add(
                out,
                "BT-121",
                f"{_RULE_PREFIX[VatCategory(code)]}-08",
                f"BT-121 lines of category {code} at rate {rate} carry different exemption reasons; "
                "EN 16931 has one VAT breakdown, with one reason, per category and rate",
            )
    if VatCategory.NOT_SUBJECT in seen and len(seen) > 1:
        _add(out, "BT-151", "BR-O-11", "BT-151 category O (not subject to VAT) cannot be mixed with other categories")
    for number, line in enumerate(doc.lines, start=1):
        vat = line.vat
        if has_unknown_vat(line):
            _add(
                out,
                "BT-151",
                "BR-CO-04",
                f"BT-151 line {number} has no VAT category (none is set for its tax rate, or it is a lump-sum "
                "credit of an invoice with several VAT rates: credit by line)",
            )
            continue
        prefix = _RULE_PREFIX[vat.category]
        if vat.category is VatCategory.STANDARD and (vat.rate is None or vat.rate <= 0):
            _add(out, "BT-152", f"{prefix}-05", f"BT-152 line {number}: category S needs a rate above 0")
        if vat.category in ZERO_RATED and vat.rate != 0:
            _add(
                out,
                "BT-152",
                f"{prefix}-05",
                f"BT-152 line {number}: category {vat.category.value} needs rate 0, not {vat.rate}",
            )
        if vat.category in EXEMPTION_REQUIRED and not (vat.exemption_code or vat.exemption_reason):
            _add(
                out,
                "BT-120",
                f"{prefix}-10",
                f"BT-120 exemption reason or BT-121 code is required for category {vat.category.value}",
            )
        if vat.category not in EXEMPTION_REQUIRED and (vat.exemption_code or vat.exemption_reason):
            _add(
                out,
                "BT-120",
                f"{prefix}-10",
                f"BT-120 category {vat.category.value} must not carry an exemption reason",
            )
        if vat.exemption_code and vat.exemption_code.upper() not in codes.VATEX_CODES:
            _add(out, "BT-121", "BR-CL-22", f"BT-121 exemption reason code {vat.exemption_code!r} is not a VATEX code")
        if line.unit_code not in codes.UNIT_CODES:
            _add(
                out,
                "BT-130",
                "BR-CL-23",
                f"BT-130 line {number} unit code {line.unit_code!r} is not a UN/ECE Rec 20 code",
            )


def _xpath_round(value: Fraction) -> int:
    """XPath round(): half towards positive infinity."""
    return (value + Fraction(1, 2)).__floor__()


def _amounts(out: list[MissingTerm], doc: Document) -> None:
    exponent = doc.currency_exponent
    amounts = [line.net_amount for line in doc.lines] + [line.tax for line in doc.lines] + [doc.prepaid]
    try:
        for amount in amounts:
            amount_text(amount, exponent)
    except NotRepresentable:
        _add(
            out,
            "BT-5",
            "BR-DEC-23",
            f"amounts in {doc.currency} have {exponent} decimals; EN 16931 allows 2, and an amount here has a third",
        )
    # BR-CO-17: our VAT is rounded per line; EN 16931 checks it against the rate applied to the
    # category's taxable amount (rounded to 2 decimals) and tolerates less than one currency unit
    unit = Fraction(10) ** exponent
    for group in doc.vat_breakdown():
        if group.vat.rate is None:
            continue
        taxable = abs(Fraction(group.taxable_amount) / unit)
        expected = Fraction(_xpath_round(taxable * Fraction(group.vat.rate) / 100 * 100), 100)
        stated = abs(Fraction(group.tax_amount) / unit)
        if not (stated - 1 < expected < stated + 1) and not (group.vat.rate == 0 and round(stated) == 0):
            message = (
                f"BT-117 the VAT of category {group.vat.category.value} at {group.vat.rate}% (summed per line) differs "
                f"from the rate applied to its taxable amount by one {doc.currency} or more"
            )
            _add(out, "BT-117", "BR-CO-17", message)
            if group.vat.category in _CATEGORY_TAX_RULE:  # the same test, stated again per category
                _add(out, "BT-117", _CATEGORY_TAX_RULE[group.vat.category], message)


def _payment(out: list[MissingTerm], doc: Document, syntax: Syntax) -> None:
    payment = doc.payment
    totals = doc.totals()
    if doc.type_code is DocumentType.INVOICE and totals.payable > 0 and not (doc.due_date or doc.payment_terms):
        _add(out, "BT-9", "BR-CO-25", "BT-9 due date or BT-20 payment terms is required when an amount is due")
    if payment is None:
        if syntax is Syntax.XRECHNUNG:
            _add(out, "BG-16", "BR-DE-1", "BG-16 payment instructions are required by XRechnung")
        return
    code = payment.means_code
    if code in CREDIT_TRANSFERS:
        if payment.account is None or not payment.account.iban:
            _add(
                out, "BT-84", "BR-61", f"BT-84 seller payment account (IBAN) is required for payment means {code.value}"
            )
        elif code is PaymentMeansCode.SEPA_CREDIT_TRANSFER and not iban_ok(payment.account.iban):
            _add(out, "BT-84", "BR-DE-19", f"BT-84 {payment.account.iban!r} is not a valid IBAN (SEPA credit transfer)")
    if code is PaymentMeansCode.CARD and not payment.card_last_digits:
        _add(out, "BT-87", "BR-51", "BT-87 the last digits of the payment card are required for payment means 48")
    if code is PaymentMeansCode.SEPA_DIRECT_DEBIT:
        debit = payment.direct_debit
        if debit is None or not debit.mandate_reference:
            _add(out, "BT-89", "BR-DE-30", "BT-89 mandate reference is required for SEPA direct debit (59)")
        if debit is None or not debit.creditor_id:
            _add(out, "BT-90", "BR-DE-30", "BT-90 seller's SEPA creditor identifier is required for direct debit (59)")
        if debit is None or not iban_ok(debit.debited_iban):
            _add(
                out,
                "BT-91",
                "BR-DE-31",
                "BT-91 the buyer's debited account (a valid IBAN) is required for direct debit (59)",
            )


def _peppol(out: list[MissingTerm], doc: Document) -> None:
    """Peppol BIS Billing 3.0: both parties are addressed on the network, and the buyer gets a reference."""
    if doc.seller.electronic_address is None:
        _add(out, "BT-34", "PEPPOL-EN16931-R020", "BT-34 seller electronic address is required for Peppol")
    if doc.buyer.electronic_address is None:
        _add(out, "BT-49", "PEPPOL-EN16931-R010", "BT-49 buyer electronic address is required for Peppol")
    if not (doc.buyer_reference or doc.purchase_order):
        _add(
            out, "BT-10", "PEPPOL-EN16931-R003", "BT-10 buyer reference or BT-13 purchase order is required for Peppol"
        )


def _xrechnung(out: list[MissingTerm], doc: Document) -> None:
    seller, buyer = doc.seller, doc.buyer
    if not doc.buyer_reference:
        _add(out, "BT-10", "BR-DE-15", "BT-10 buyer reference (Leitweg-ID) is required by XRechnung")
    if not seller.contact.name:
        _add(out, "BT-41", "BR-DE-5", "BT-41 seller contact point is required by XRechnung")
    if not seller.contact.telephone:
        _add(out, "BT-42", "BR-DE-6", "BT-42 seller contact telephone is required by XRechnung")
    elif sum(ch.isdigit() for ch in seller.contact.telephone) < 3:
        _add(out, "BT-42", "BR-DE-27", "BT-42 seller contact telephone needs at least three digits")
    if not seller.contact.email:
        _add(out, "BT-43", "BR-DE-7", "BT-43 seller contact e-mail is required by XRechnung")
    elif not _XR_EMAIL.match(seller.contact.email):
        _add(out, "BT-43", "BR-DE-28", f"BT-43 seller contact e-mail {seller.contact.email!r} is not an address")
    if not seller.address.city:
        _add(out, "BT-37", "BR-DE-3", "BT-37 seller city is required by XRechnung")
    if not seller.address.postal_code:
        _add(out, "BT-38", "BR-DE-4", "BT-38 seller post code is required by XRechnung")
    if not buyer.address.city:
        _add(out, "BT-52", "BR-DE-8", "BT-52 buyer city is required by XRechnung")
    if not buyer.address.postal_code:
        _add(out, "BT-53", "BR-DE-9", "BT-53 buyer post code is required by XRechnung")
    # XRechnung 3.0 makes both electronic addresses mandatory (1..1 in the CIUS specification); its
    # Schematron does not test them, so the rule named here is the CIUS cardinality
    if seller.electronic_address is None:
        _add(out, "BT-34", XRECHNUNG_CARDINALITY, "BT-34 seller electronic address is required by XRechnung")
    if buyer.electronic_address is None:
        _add(out, "BT-49", XRECHNUNG_CARDINALITY, "BT-49 buyer electronic address is required by XRechnung")


def document_problems(doc: Document, syntax: Syntax) -> list[MissingTerm]:
    """Every reason `doc` is not a valid e-invoice in `syntax`, in a stable order; [] when it is."""
    out: list[MissingTerm] = []
    if not doc.number:
        _add(out, "BT-1", "BR-02", "BT-1 invoice number is required")
    if not doc.lines:
        _add(out, "BG-25", "BR-16", "BG-25 at least one invoice line is required")
    if doc.type_code is DocumentType.CREDIT_NOTE and not doc.preceding_invoice:
        _add(out, "BT-25", "BR-55", "BT-25 the preceding invoice reference is required on a credit note")
    _party(out, doc.seller, seller=True)
    _party(out, doc.buyer, seller=False)
    _categories(out, doc)
    _amounts(out, doc)
    _payment(out, doc, syntax)
    if syntax is Syntax.UBL:
        _peppol(out, doc)
    if syntax is Syntax.XRECHNUNG:
        _xrechnung(out, doc)
    return out


def finalize_problems(invoice: Invoice, inputs: EInvoiceInputs) -> list[MissingTerm]:
    """The finalize-time check of `invoice` (already priced, numbered and dated by the finalize plan)
    for its customer's e-invoice format; [] when the customer receives PDFs only."""
    syntax = inputs.buyer.einvoice_format
    if syntax is None:
        return []
    return document_problems(invoice_document(invoice, inputs), syntax)


def credit_note_problems(note: CreditNote, invoice: Invoice, inputs: EInvoiceInputs) -> list[MissingTerm]:
    """The same check for a credit note of `invoice`. A lump sum on an invoice with several VAT
    categories or rates has no single category (EN 16931 needs one per line): credit by line."""
    syntax = inputs.buyer.einvoice_format
    if syntax is None:
        return []
    return document_problems(credit_note_document(note, invoice, inputs), syntax)
