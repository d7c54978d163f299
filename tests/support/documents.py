"""One customer per language we ship (issue #18): the name in its own script, lines in its language,
its currency and locale, and the documents they receive built from them (invoice, credit note,
reminder mail, pay page). Shared by tests/integration/test_documents_i18n.py and
scripts/document_snapshots.py (the PNGs in docs/img)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from invoicing.documents import (
    CustomField,
    DocumentLine,
    InvoiceDocument,
    Party,
    SellerBranding,
    TaxBreakdownRow,
)
from invoicing.domain.invoice import Address, CustomerSnapshot, Invoice, InvoiceLine, InvoiceStatus
from invoicing.emails import ReminderMail


@dataclass(frozen=True)
class Sample:
    language: str
    locale: str
    currency: str
    customer_name: str
    address: tuple[str, ...]
    descriptions: tuple[str, str]
    invoice_title: str  # the legal title of an invoice in this language
    credit_note_title: str


SAMPLES: dict[str, Sample] = {
    s.language: s
    for s in (
        Sample(
            "en",
            "en_US",
            "USD",
            "Northwind Traders Ltd",
            ("500 Market Street", "San Francisco CA 94105"),
            ("Annual maintenance", "Consulting, November"),
            "Invoice",
            "Credit note",
        ),
        Sample(
            "de",
            "de_DE",
            "EUR",
            "Müller & Söhne GmbH",
            ("Große Straße 12", "80331 München"),
            ("Jährliche Wartung", "Beratung im November (Größe XL)"),
            "Rechnung",
            "Gutschrift",
        ),
        Sample(
            "fr",
            "fr_FR",
            "EUR",
            "Société Générale d’Études SARL",
            ("12 rue de l’Église", "75004 Paris"),
            ("Maintenance annuelle", "Conseil en stratégie — novembre"),
            "Facture",
            "Avoir",
        ),
        Sample(
            "es",
            "es_ES",
            "EUR",
            "Compañía Ibérica de Señales S.L.",
            ("Calle de Alcalá 45", "28014 Madrid"),
            ("Mantenimiento anual", "Asesoría técnica — año 2025"),
            "Factura",
            "Factura rectificativa",
        ),
        Sample(
            "it",
            "it_IT",
            "EUR",
            "Università Àncora S.r.l.",
            ("Via Po 3", "10124 Torino"),
            ("Manutenzione annuale", "Consulenza tecnica — più ore"),
            "Fattura",
            "Nota di credito",
        ),
        Sample(
            "nl",
            "nl_NL",
            "EUR",
            "Bakkerij IJsselmeer B.V.",
            ("Dorpsstraat 7", "1234 AB Edam"),
            ("Jaarlijks onderhoud", "Advies — één dag"),
            "Factuur",
            "Creditnota",
        ),
        Sample(
            "pt",
            "pt_BR",
            "BRL",
            "Construções São João Ltda.",
            ("Avenida Paulista 1000", "01310-100 São Paulo"),
            ("Manutenção anual", "Consultoria técnica — ação"),
            "Fatura",
            "Nota de crédito",
        ),
        Sample(
            "ja",
            "ja_JP",
            "JPY",
            "株式会社サンプル商事",
            ("〒100-0005 東京都千代田区丸の内1-1-1", "サンプルビル 12階"),
            ("年間保守サービス", "技術コンサルティング（11月）"),
            "請求書",
            "貸方票",
        ),
        Sample(
            "zh",
            "zh_CN",
            "CNY",
            "北京示例科技有限公司",
            ("北京市朝阳区建国路88号", "100022"),
            ("年度维护服务", "技术咨询（十一月）"),
            "发票",
            "贷项通知单",
        ),
        Sample(  # Traditional Chinese (zh_TW, zh_HK, zh_Hant): its own catalog and a Traditional face
            "zh_Hant",
            "zh_TW",
            "TWD",
            "臺北範例資訊股份有限公司",
            ("臺北市信義區松高路11號", "110"),
            ("年度維護服務", "技術諮詢（十一月）"),
            "發票",
            "貸項通知單",
        ),
        Sample(
            "ar",
            "ar_EG",
            "EGP",
            "شركة المثال للتجارة",
            ("١٢ شارع التحرير", "القاهرة"),
            ("صيانة سنوية", "استشارات تقنية لشهر نوفمبر"),
            "فاتورة",
            "إشعار دائن",
        ),
    )
}
LANGUAGES = tuple(SAMPLES)
NUMBER = "INV-2026-0042"
CREDIT_NUMBER = "CN-2026-0007"
UNIT_AMOUNTS = (123_456, 45_000)  # minor units: 1,234.56 and 450.00 (JPY: ¥123,456 and ¥45,000)
TAX_PERCENT = Decimal("10")
PURCHASE_ORDER = "PO-4711"
CUSTOM_FIELD = ("Cost centre", "CC-42")
SELLER = Party("Example Billing Ltd", "billing@example.com", ["1 Market St", "Springfield"], "US-99")
BRANDING = SellerBranding(
    accent_color="#0b6e4f",
    bank_details="IBAN DE89 3704 0044 0532 0130 00 · BIC COBADEFFXXX",
    legal_lines=["Registered in Springfield, no. 123456", "Managing directors: Ada Lovelace, Alan Turing"],
    footer_text="Thank you for your business.",
)


def amounts() -> tuple[int, int, int]:
    subtotal = sum(UNIT_AMOUNTS)
    tax = subtotal * int(TAX_PERCENT) // 100
    return subtotal, tax, subtotal + tax


def input_texts(sample: Sample) -> list[str]:
    """Everything a person typed that the documents must print, every character of it."""
    return [sample.customer_name, *sample.address, *sample.descriptions, PURCHASE_ORDER, *CUSTOM_FIELD]


def invoice_document(sample: Sample) -> InvoiceDocument:
    subtotal, tax, total = amounts()
    lines = [
        DocumentLine(text, Decimal("1"), cents, cents, "VAT 10%", cents // 10)
        for text, cents in zip(sample.descriptions, UNIT_AMOUNTS, strict=True)
    ]
    return InvoiceDocument(
        kind="invoice",
        number=NUMBER,
        status="open",
        currency=sample.currency,
        locale=sample.locale,
        issue_date=date(2026, 11, 2),
        due_date=date(2026, 12, 2),
        seller=SELLER,
        customer=Party(sample.customer_name, "ap@example.com", list(sample.address), ""),
        lines=lines,
        tax_breakdown=[TaxBreakdownRow("VAT", TAX_PERCENT, False, subtotal, tax)],
        subtotal_cents=subtotal,
        tax_cents=tax,
        total_cents=total,
        amount_paid_cents=0,
        amount_due_cents=total,
        payment_url="https://pay.example.com/p/abc",
        purchase_order=PURCHASE_ORDER,
        custom_fields=[CustomField(*CUSTOM_FIELD)],
        branding=BRANDING,
    )


def credit_note_document(sample: Sample) -> InvoiceDocument:
    subtotal, tax, total = amounts()
    lines = [
        DocumentLine(text, Decimal("1"), cents, cents, None, cents // 10)
        for text, cents in zip(sample.descriptions, UNIT_AMOUNTS, strict=True)
    ]
    return InvoiceDocument(
        kind="credit_note",
        number=CREDIT_NUMBER,
        status="open",
        currency=sample.currency,
        locale=sample.locale,
        issue_date=date(2026, 11, 20),
        due_date=None,
        seller=SELLER,
        customer=Party(sample.customer_name, "ap@example.com", list(sample.address), ""),
        lines=lines,
        tax_breakdown=[],
        subtotal_cents=subtotal,
        tax_cents=tax,
        total_cents=total,
        reference_number=NUMBER,
        purchase_order=PURCHASE_ORDER,
        custom_fields=[CustomField(*CUSTOM_FIELD)],
        branding=BRANDING,
    )


def reminder_mail(sample: Sample) -> ReminderMail:
    _, _, total = amounts()
    return ReminderMail(
        kind="overdue",
        category="overdue",
        locale=sample.locale,
        customer_name=sample.customer_name,
        invoice_number=NUMBER,
        currency=sample.currency,
        amount_due_cents=total,
        due_date=date(2026, 12, 2),
        today=date(2026, 12, 7),
        seller_name=SELLER.name,
        seller_email=SELLER.email,
        payment_url="https://pay.example.com/p/abc",
        pdf_url="https://files.example.com/inv.pdf",
    )


def open_invoice(sample: Sample) -> Invoice:
    """The domain invoice the pay page shows: the same customer, lines and amounts."""
    subtotal, tax, total = amounts()
    return Invoice(
        id="in_i18n",
        customer_id="cus_i18n",
        status=InvoiceStatus.OPEN,
        currency=sample.currency,
        created_at="2026-11-02T09:00:00Z",
        updated_at="2026-11-02T09:00:00Z",
        due_date=date(2026, 12, 2),
        invoice_number=NUMBER,
        finalized_at="2026-11-02T09:00:00Z",
        subtotal_cents=subtotal,
        tax_cents=tax,
        total_cents=total,
        amount_remaining_cents=total,
        customer=CustomerSnapshot(
            sample.customer_name, "ap@example.com", Address(line1=sample.address[0]), locale=sample.locale
        ),
        lines=tuple(
            InvoiceLine(id=f"il_{i}", description=text, quantity=Decimal("1"), unit_amount_cents=cents)
            for i, (text, cents) in enumerate(zip(sample.descriptions, UNIT_AMOUNTS, strict=True))
        ),
        purchase_order=PURCHASE_ORDER,
    )
