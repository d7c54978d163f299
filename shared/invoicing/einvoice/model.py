"""The EN 16931 semantic model of one invoice or credit note: typed, frozen, and pure.

Every field is named after its business term (BT-n) or group (BG-n) of EN 16931-1:2017. Amounts are
ints in the currency's minor unit, like everywhere else in the service (domain/money.py); the writers
(ubl.py, cii.py) turn them into Decimal text. The totals (BG-22) and the VAT breakdown (BG-23) are
derived here, in one place, from the lines: the writers never add anything up themselves.

VAT per line is the service's own frozen, per-line rounded result (docs/decisions.md "per line"); the
VAT breakdown's tax amount (BT-117) is the sum of those, so the e-invoice carries exactly the tax of
the PDF and the API. EN 16931 rounds per rate instead and tolerates a difference below one currency
unit (BR-CO-17); `domain/einvoicing.py` reports an invoice where the two differ by more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum


class DocumentType(StrEnum):
    """BT-3, UNTDID 1001."""

    INVOICE = "380"
    CREDIT_NOTE = "381"


class VatCategory(StrEnum):
    """BT-118 / BT-151, UNTDID 5305 as EN 16931 restricts it."""

    STANDARD = "S"
    ZERO = "Z"
    EXEMPT = "E"
    REVERSE_CHARGE = "AE"  # VAT reverse charge
    INTRA_COMMUNITY = "K"  # VAT exempt for EEA intra-community supply of goods and services
    EXPORT = "G"  # free export item, tax not charged
    NOT_SUBJECT = "O"  # services outside scope of tax
    CANARY_IGIC = "L"  # Canary Islands general indirect tax
    CEUTA_MELILLA_IPSI = "M"  # tax for production, services and importation in Ceuta and Melilla


# Categories whose VAT breakdown carries an exemption reason (BT-120) or code (BT-121): BR-E-10,
# BR-AE-10, BR-IC-10, BR-G-10, BR-O-10.
EXEMPTION_REQUIRED = frozenset(
    {
        VatCategory.EXEMPT,
        VatCategory.REVERSE_CHARGE,
        VatCategory.INTRA_COMMUNITY,
        VatCategory.EXPORT,
        VatCategory.NOT_SUBJECT,
    }
)
# Categories whose rate is 0 by rule (BR-Z-05, BR-E-05, BR-AE-05, BR-IC-05, BR-G-05); O has no rate (BR-O-05).
ZERO_RATED = frozenset(
    {
        VatCategory.ZERO,
        VatCategory.EXEMPT,
        VatCategory.REVERSE_CHARGE,
        VatCategory.INTRA_COMMUNITY,
        VatCategory.EXPORT,
    }
)


class PaymentMeansCode(StrEnum):
    """BT-81, UNTDID 4461: the codes the service offers."""

    CREDIT_TRANSFER = "30"
    CARD = "48"
    SEPA_CREDIT_TRANSFER = "58"
    SEPA_DIRECT_DEBIT = "59"


CREDIT_TRANSFERS = frozenset({PaymentMeansCode.CREDIT_TRANSFER, PaymentMeansCode.SEPA_CREDIT_TRANSFER})


class Syntax(StrEnum):
    """The formats of `GET /invoices/{id}/einvoice?format=`."""

    UBL = "ubl"  # UBL 2.1, Peppol BIS Billing 3.0 customization of EN 16931
    CII = "cii"  # UN/CEFACT CII D16B, EN 16931 (the Factur-X EN 16931 profile's XML)
    XRECHNUNG = "xrechnung"  # UBL 2.1, the German XRechnung 3.0 CIUS


@dataclass(frozen=True)
class PostalAddress:
    """BG-5 (seller) / BG-8 (buyer)."""

    line1: str = ""  # BT-35 / BT-50
    line2: str = ""  # BT-36 / BT-51
    city: str = ""  # BT-37 / BT-52
    postal_code: str = ""  # BT-38 / BT-53
    subdivision: str = ""  # BT-39 / BT-54
    country_code: str = ""  # BT-40 / BT-55, ISO 3166-1 alpha-2


@dataclass(frozen=True)
class ElectronicAddress:
    """BT-34 / BT-49 with its scheme (BT-34-1 / BT-49-1, CEF EAS), e.g. 0208 + a Belgian enterprise number."""

    scheme: str
    identifier: str


@dataclass(frozen=True)
class Contact:
    """BG-6 (seller) / BG-9 (buyer)."""

    name: str = ""  # BT-41 / BT-56
    telephone: str = ""  # BT-42 / BT-57
    email: str = ""  # BT-43 / BT-58

    def __bool__(self) -> bool:
        return bool(self.name or self.telephone or self.email)


@dataclass(frozen=True)
class Party:
    """BG-4 seller or BG-7 buyer."""

    name: str  # BT-27 / BT-44 legal name
    address: PostalAddress  # BG-5 / BG-8
    trading_name: str = ""  # BT-28 / BT-45
    legal_registration_id: str = ""  # BT-30 / BT-47 (e.g. the company register number)
    vat_id: str = ""  # BT-31 / BT-48, with its country prefix (DE123456789)
    tax_registration_id: str = ""  # BT-32 (seller only): a national tax number, e.g. the German Steuernummer
    electronic_address: ElectronicAddress | None = None  # BT-34 / BT-49
    contact: Contact = Contact()  # BG-6 / BG-9


@dataclass(frozen=True)
class PaymentAccount:
    """BG-17 credit transfer: where the buyer pays to."""

    iban: str  # BT-84
    account_name: str = ""  # BT-85
    bic: str = ""  # BT-86


@dataclass(frozen=True)
class DirectDebit:
    """BG-19."""

    mandate_reference: str  # BT-89
    creditor_id: str  # BT-90, the seller's SEPA creditor identifier
    debited_iban: str  # BT-91


@dataclass(frozen=True)
class PaymentInstructions:
    """BG-16."""

    means_code: PaymentMeansCode  # BT-81
    remittance_information: str = ""  # BT-83, what the buyer quotes with the payment (the invoice number)
    account: PaymentAccount | None = None  # BG-17, for 30 and 58
    card_last_digits: str = ""  # BT-87, for 48 (never the full number)
    card_holder: str = ""  # BT-88
    direct_debit: DirectDebit | None = None  # BG-19, for 59


@dataclass(frozen=True)
class VatTreatment:
    """How VAT applies to a line: category (BT-151), rate (BT-152) and, for the exempt categories,
    the exemption reason code (BT-121, VATEX) and text (BT-120) carried into the breakdown."""

    category: VatCategory
    rate: Decimal | None  # None only for O (not subject)
    exemption_code: str = ""
    exemption_reason: str = ""

    @property
    def key(self) -> tuple[str, Decimal | None]:
        """One VAT breakdown (BG-23) per category and rate (BR-CO-18 and the BR-x-08 rules)."""
        return (self.category.value, self.rate)


@dataclass(frozen=True)
class Line:
    """BG-25. `net_amount` is BT-131 (quantity x net price, after any VAT carved out of an
    inclusive price); `tax` is the line's own frozen VAT, summed into BT-117."""

    id: str  # BT-126
    name: str  # BT-153
    quantity: Decimal  # BT-129 (negative for a discount line: EN 16931 forbids a negative price, BR-27)
    unit_code: str  # BT-130, UN/ECE Rec 20 (C62 "one", HUR hour, DAY, MON...)
    net_price: Decimal  # BT-146, in currency units, >= 0
    net_amount: int  # BT-131, minor units
    tax: int  # this line's VAT, minor units (not an EN 16931 term; feeds BT-117)
    vat: VatTreatment  # BG-30
    description: str = ""  # BT-154
    period_start: date | None = None  # BT-134
    period_end: date | None = None  # BT-135


@dataclass(frozen=True)
class VatBreakdown:
    """BG-23, derived from the lines by `Document.vat_breakdown`."""

    vat: VatTreatment  # BT-118, BT-119, BT-120, BT-121
    taxable_amount: int  # BT-116
    tax_amount: int  # BT-117


@dataclass(frozen=True)
class Totals:
    """BG-22, minor units."""

    line_total: int  # BT-106
    tax_exclusive: int  # BT-109 (no document-level allowances or charges: BT-107 and BT-108 are 0)
    tax_total: int  # BT-110
    tax_inclusive: int  # BT-112
    prepaid: int  # BT-113
    payable: int  # BT-115


@dataclass(frozen=True)
class Document:
    """One EN 16931 invoice (380) or credit note (381)."""

    type_code: DocumentType  # BT-3
    number: str  # BT-1
    issue_date: date  # BT-2
    currency: str  # BT-5, ISO 4217
    currency_exponent: int  # the ISO 4217 minor unit of BT-5: 2 for EUR, 0 for JPY, 3 for KWD
    seller: Party  # BG-4
    buyer: Party  # BG-7
    lines: tuple[Line, ...]  # BG-25
    due_date: date | None = None  # BT-9
    payment_terms: str = ""  # BT-20
    buyer_reference: str = ""  # BT-10 (the Leitweg-ID for German public buyers)
    purchase_order: str = ""  # BT-13
    note: str = ""  # BT-22
    preceding_invoice: str = ""  # BT-25, for a credit note
    preceding_invoice_date: date | None = None  # BT-26
    period_start: date | None = None  # BT-73
    period_end: date | None = None  # BT-74
    delivery_date: date | None = None  # BT-72
    deliver_to: PostalAddress | None = None  # BG-15 deliver-to address (BT-75..BT-80)
    payment: PaymentInstructions | None = None  # BG-16
    prepaid: int = 0  # BT-113: customer balance applied at finalization

    def vat_breakdown(self) -> tuple[VatBreakdown, ...]:
        """BG-23: one per category and rate, in the order first met on the lines."""
        groups: dict[tuple[str, Decimal | None], list[Line]] = {}
        for line in self.lines:
            groups.setdefault(line.vat.key, []).append(line)
        return tuple(
            VatBreakdown(
                vat=lines[0].vat,
                taxable_amount=sum(ln.net_amount for ln in lines),
                tax_amount=sum(ln.tax for ln in lines),
            )
            for lines in groups.values()
        )

    def totals(self) -> Totals:
        line_total = sum(line.net_amount for line in self.lines)
        tax_total = sum(line.tax for line in self.lines)
        inclusive = line_total + tax_total
        return Totals(
            line_total=line_total,
            tax_exclusive=line_total,
            tax_total=tax_total,
            tax_inclusive=inclusive,
            prepaid=self.prepaid,
            payable=inclusive - self.prepaid,
        )


def minor_to_decimal(amount: int, exponent: int) -> Decimal:
    """Minor units -> the exact currency amount, at the currency's exponent (1234, 2 -> 12.34)."""
    return Decimal(amount).scaleb(-exponent)


class NotRepresentable(ValueError):
    """An amount or a document EN 16931 cannot express (e.g. a KWD amount with a third decimal)."""


# BR-DEC-*: every amount of EN 16931 has at most 2 decimals, whatever the currency's minor unit.
MAX_AMOUNT_DECIMALS = 2


def amount_text(amount: int, exponent: int) -> str:
    """Minor units -> the amount's text at the currency's exponent, capped at EN 16931's 2 decimals.

    JPY 1234 -> "1234"; EUR 1234 -> "12.34"; KWD 12340 fils -> "12.34"; KWD 12345 fils cannot be
    written (BR-DEC) and raises NotRepresentable (the finalize check reports it first).
    """
    value = minor_to_decimal(amount, exponent)
    places = min(exponent, MAX_AMOUNT_DECIMALS)
    quantum = Decimal(1).scaleb(-places)
    written = value.quantize(quantum)
    if written != value:
        raise NotRepresentable(f"{value} has more than {MAX_AMOUNT_DECIMALS} decimals (EN 16931 BR-DEC)")
    return f"{written:f}"


def decimal_text(value: Decimal) -> str:
    """A quantity, price or rate as plain text without exponent or trailing zeros: 19.0000 -> "19"."""
    normal = value.normalize()
    return f"{normal:f}" if normal != 0 else "0"
