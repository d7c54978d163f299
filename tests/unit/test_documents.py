"""The printable document's view model and HTML: money formats, escaping, marks, links. No browser."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from invoicing.documents import (
    DocumentLine,
    InvoiceDocument,
    Party,
    TaxBreakdownRow,
    document_footer_text,
    document_title,
    format_money,
    format_quantity,
    format_rate,
    render_document_html,
)

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_TEMPLATE = "{{ 7*7 }}"


def make_document(**changes: object) -> InvoiceDocument:
    lines = [
        DocumentLine("Consulting, March", Decimal("10.0000"), 150_00, 1_500_00, "VAT 19%", 285_00),
        DocumentLine("Hosting", Decimal("1.0000"), 49_99, 49_99, None, 0),
    ]
    doc = InvoiceDocument(
        kind="invoice",
        number="INV-2025-0007",
        status="open",
        currency="USD",
        locale="en_US",
        issue_date=date(2025, 3, 1),
        due_date=date(2025, 3, 31),
        seller=Party("Example Billing Ltd", "billing@example.com", ["1 Market St", "Springfield"], "GB123"),
        customer=Party("Acme Corp", "ap@acme.example", ["2 Side Road", "Shelbyville"], ""),
        lines=lines,
        tax_breakdown=[TaxBreakdownRow("VAT 19%", Decimal("19"), False, 1_500_00, 285_00)],
        subtotal_cents=1_549_99,
        tax_cents=285_00,
        total_cents=1_834_99,
        amount_paid_cents=0,
        amount_due_cents=1_834_99,
        payment_url="https://pay.example.com/p/abc",
        memo=None,
        logo_url=None,
        reference_number=None,
    )
    return replace(doc, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("minor_units", "currency", "locale", "expected"),
    [
        (123456, "USD", "en_US", "$1,234.56"),
        (-123450, "USD", "en_US", "-$1,234.50"),
        (5, "USD", "en_US", "$0.05"),
        (123456, "EUR", "de_DE", "1.234,56\u00a0€"),
        (1235, "JPY", "en_US", "¥1,235"),
        (1234, "KWD", "en_US", "KWD1.234"),
        (1234, "KWD", "ar_KW", None),  # any locale works; exponent 3 regardless
    ],
)
def test_format_money_uses_the_iso_4217_exponent(minor_units, currency, locale, expected):
    # Given an amount in minor units, When it is formatted for the currency and locale
    text = format_money(minor_units, currency, locale)
    # Then the decimals follow the currency (JPY 0, USD/EUR 2, KWD 3) and the separators the locale
    if expected is not None:
        assert text == expected
    else:
        assert text


def test_format_money_reads_like_the_brief_for_german_euros():
    assert format_money(123456, "EUR", "de_DE").replace("\u00a0", " ") == "1.234,56 €"


def test_format_money_never_uses_floats_for_large_amounts():
    # 10^15 minor units would lose cents as a float; Decimal keeps every digit
    assert format_money(1_000_000_000_000_01, "USD", "en_US") == "$1,000,000,000,000.01"


def test_quantities_and_rates_drop_meaningless_zeros():
    assert format_quantity(Decimal("2.0000"), "en_US") == "2"
    assert format_quantity(Decimal("1.5000"), "de_DE") == "1,5"
    assert format_quantity(Decimal("100.0000"), "en_US") == "100"
    assert format_rate(Decimal("19.0000"), "en_US") == "19%"
    assert format_rate(Decimal("8.875"), "en_US") == "8.875%"


# ---------------------------------------------------------------- HTML


def test_hostile_description_is_escaped_text_not_markup_or_template():
    # Given line descriptions with markup and template syntax
    doc = make_document(
        lines=[
            DocumentLine(HOSTILE_SCRIPT, Decimal("1"), 100, 100, None, 0),
            DocumentLine(HOSTILE_TEMPLATE, Decimal("1"), 100, 100, None, 0),
        ],
        memo=HOSTILE_SCRIPT,
        customer=Party('Evil "Corp" <b>', "", ["<img src=x onerror=alert(1)>"], ""),
    )
    # When the HTML is rendered
    html = render_document_html(doc)
    # Then the markup is escaped text, and the template syntax is printed as typed
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Evil &#34;Corp&#34; &lt;b&gt;" in html
    assert HOSTILE_TEMPLATE in html
    assert ">49<" not in html


def test_invoice_html_shows_the_facts_a_finance_team_needs():
    html = render_document_html(make_document())
    for text in (
        "INV-2025-0007",
        "Example Billing Ltd",
        "Tax ID GB123",
        "Acme Corp",
        "Consulting, March",
        "Hosting",
        "$1,500.00",  # line amount
        "$150.00",  # unit price
        "$1,549.99",  # subtotal
        "$285.00",  # tax
        "$1,834.99",  # total and amount due
        "Mar 1, 2025",
        "Mar 31, 2025",
        "https://pay.example.com/p/abc",
        "VAT 19%",
    ):
        assert text in html, text
    assert "<title>Invoice INV-2025-0007</title>" in html
    assert 'lang="en-US"' in html
    assert "thead { display: table-header-group; }" in html


def test_locale_formats_money_and_dates():
    html = render_document_html(make_document(currency="EUR", locale="de_DE"))
    assert "1.834,99\u00a0€" in html
    assert "01.03.2025" in html
    assert 'lang="de-DE"' in html


@pytest.mark.parametrize(("status", "mark"), [("draft", "DRAFT"), ("void", "VOID")])
def test_drafts_and_void_invoices_carry_a_watermark(status, mark):
    html = render_document_html(make_document(status=status, number=None if status == "draft" else "INV-1"))
    assert f'<div class="watermark">{mark}</div>' in html


@pytest.mark.parametrize("status", ["open", "paid", "uncollectible"])
def test_issued_invoices_carry_no_watermark(status):
    assert 'class="watermark"' not in render_document_html(make_document(status=status))


def test_a_draft_has_no_number_yet():
    doc = make_document(status="draft", number=None, issue_date=None, due_date=None)
    html = render_document_html(doc)
    assert "Not yet assigned" in html
    assert document_title(doc) == "Invoice (draft)"


def test_payment_link_only_for_web_urls_and_open_invoices():
    assert 'href="javascript:' not in render_document_html(make_document(payment_url="javascript:alert(1)"))
    assert "pay.example.com" not in render_document_html(make_document(status="paid"))
    assert "Pay online" not in render_document_html(make_document(payment_url=None))


def test_logo_only_from_data_urls():
    data_url = "data:image/png;base64,iVBORw0KGgo="
    assert f'src="{data_url}"' in render_document_html(make_document(logo_url=data_url))
    # a remote logo could not load anyway (Chromium has no network) and must not leak a request
    assert "evil.example" not in render_document_html(make_document(logo_url="https://evil.example/l.png"))


def test_inclusive_tax_is_not_added_twice():
    # Given prices that already include 20 % VAT: 120.00 holds 20.00 tax
    doc = make_document(
        lines=[DocumentLine("Ticket", Decimal("1"), 120_00, 120_00, "VAT 20% incl.", 20_00)],
        tax_breakdown=[TaxBreakdownRow("VAT 20%", Decimal("20"), True, 120_00, 20_00)],
        subtotal_cents=120_00,
        tax_cents=20_00,
        total_cents=120_00,
        amount_due_cents=120_00,
    )
    html = render_document_html(doc)
    # Then the total stays 120.00 and the tax is shown as included, not added
    assert "includes $20.00 tax" in html
    assert "(included)" in html
    assert "$140.00" not in html


def test_credit_note_names_the_invoice_it_credits():
    doc = make_document(kind="credit_note", number="CN-2025-0001", reference_number="INV-2025-0007")
    html = render_document_html(doc)
    assert "Credit note" in html
    assert "CN-2025-0001" in html
    assert "Credits invoice" in html
    assert "INV-2025-0007" in html
    assert "Total credited" in html
    assert document_footer_text(doc) == "Credit note CN-2025-0001 · Example Billing Ltd"


def test_multiline_text_keeps_its_line_breaks():
    html = render_document_html(make_document(memo="line one\nline two"))
    assert "line one\nline two" in html
    assert ".notes p { white-space: pre-line;" in html
