"""Every script a customer may write prints in the PDF (issue #18): read back what a person reads.

Real headless Chromium with the fonts `make fonts` ships (scripts/prepare_fonts.py); the PDF's text
is extracted with poppler's `pdftotext` and its fonts listed with `pdffonts`. With the bundle's Open
Sans alone, the Japanese, Arabic, Hebrew, Thai, Devanagari, Korean and Chinese text and the yen sign
print as nothing: these tests fail.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import unicodedata
from collections import Counter
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
from pypdf.generic import ContentStream

from invoicing.adapters import chromium
from invoicing.adapters.chromium import render_pdf
from invoicing.documents import (
    DocumentLine,
    InvoiceDocument,
    Party,
    TaxBreakdownRow,
    document_footer_text,
    format_money,
    render_document_html,
)

pytestmark = pytest.mark.chromium

CUSTOMER_NAME = "株式会社サンプル商事"
CUSTOMER_ADDRESS = ["〒100-0005 東京都千代田区丸の内1-1-1", "サンプルビル 12階"]
DESCRIPTIONS = [
    "Поддержка — العربية",
    "年間保守サービス（日本語）",
    "תמיכה טכנית בעברית",
    "บริการสนับสนุนภาษาไทย",
    "हिंदी में सहायता सेवा",
    "한국어 기술 지원",
    "中文技术支持服务",
    "Υποστήριξη στα ελληνικά",
]
MEMO = "お支払いは月末までにお願いいたします。 شكرا لكم"


@pytest.fixture(scope="module")
def browser_ready() -> Iterator[None]:
    missing = [tool for tool in ("pdftotext", "pdffonts") if shutil.which(tool) is None]
    if not chromium.chromium_available() or missing:
        message = f"no Chromium (make chromium) or no poppler-utils ({missing})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if not chromium.locate_fonts():
        pytest.fail("no Noto fonts: run `make fonts`")
    yield


def japanese_customer_invoice(descriptions: list[str] = DESCRIPTIONS, memo: str = MEMO) -> InvoiceDocument:
    lines = [
        DocumentLine(text, Decimal("1"), 12_000 + index, 12_000 + index, "消費税 10%", 1_200)
        for index, text in enumerate(descriptions)
    ]
    subtotal = sum(line.amount_cents for line in lines)
    tax = sum(line.tax_cents for line in lines)
    return InvoiceDocument(
        kind="invoice",
        number="INV-2025-0042",
        status="open",
        currency="JPY",
        locale="ja_JP",
        issue_date=date(2025, 5, 2),
        due_date=date(2025, 6, 1),
        seller=Party("Example Billing Ltd", "billing@example.com", ["1 Market St", "Springfield"], "US-99"),
        customer=Party(CUSTOMER_NAME, "ap@sample.example.jp", CUSTOMER_ADDRESS, ""),
        lines=lines,
        tax_breakdown=[TaxBreakdownRow("消費税 10%", Decimal("10"), False, subtotal, tax)],
        subtotal_cents=subtotal,
        tax_cents=tax,
        total_cents=subtotal + tax,
        amount_paid_cents=0,
        amount_due_cents=subtotal + tax,
        payment_url=None,
        memo=memo,
        reference_number=None,
    )


def print_to_file(doc: InvoiceDocument, tmp_path: Path) -> Path:
    pdf = render_pdf(render_document_html(doc), footer_text=document_footer_text(doc))
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    return path


def pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def letters(text: str) -> Counter[str]:
    """The characters of `text` as a multiset, blind to the order and shapes a PDF keeps them in.

    Arabic is stored in the PDF as shaped glyphs, which pdftotext may give back as presentation forms
    (U+FExx) and, for a right-to-left run, in visual order; NFKC folds the forms back to the letters,
    and a multiset ignores the order. Whitespace is dropped: line breaks and spacing are layout.
    """
    folded = unicodedata.normalize("NFKC", text)
    return Counter(char for char in folded if not char.isspace())


def blank_glyphs(path: Path) -> int:
    """How many glyphs the PDF draws with glyph 0 (.notdef): characters no font had, printed as nothing.

    Text extraction alone cannot see them: Chromium still records the characters (as ActualText), so
    pdftotext returns the Japanese name from a PDF where it is blank. Chromium writes TrueType fonts as
    Type0 with Identity-H, two bytes per glyph id, so glyph 0 is the byte pair 00 00 in Tj/TJ strings.
    """
    reader = pypdf.PdfReader(path)
    count = 0
    for page in reader.pages:
        fonts = {name: ref.get_object() for name, ref in page["/Resources"]["/Font"].items()}
        font = None
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"Tf":
                font = fonts.get(operands[0])
            elif operator in (b"Tj", b"TJ") and font is not None and font.get("/Subtype") == "/Type0":
                for item in operands[0] if operator == b"TJ" else [operands[0]]:
                    data = getattr(item, "original_bytes", None)
                    if data is not None:
                        count += sum(1 for i in range(0, len(data) - 1, 2) if data[i : i + 2] == b"\0\0")
    return count


def missing_letters(expected: str, text: str) -> Counter[str]:
    return letters(expected) - letters(text)


# ---------------------------------------------------------------- what a person reads


def test_japanese_customer_and_every_script_in_the_lines_print(browser_ready, tmp_path):
    # Given a JPY invoice for a Japanese customer, its lines in ten scripts
    doc = japanese_customer_invoice()
    # When it is printed and its text read back
    path = print_to_file(doc, tmp_path)
    text = pdf_text(path)
    # Then no character is drawn blank (with Open Sans alone: 179 of them)
    assert blank_glyphs(path) == 0
    # And every character of the name, the address, each line and the memo is in the PDF
    for expected in [CUSTOMER_NAME, *CUSTOMER_ADDRESS, *DESCRIPTIONS, MEMO]:
        assert not missing_letters(expected, text), f"{expected!r} lost {missing_letters(expected, text)}"
    # And the name and address read in order, as typed (no shaping or direction to undo there)
    folded = unicodedata.normalize("NFKC", text)
    for expected in [CUSTOMER_NAME, *CUSTOMER_ADDRESS]:
        assert unicodedata.normalize("NFKC", expected) in folded


def test_a_japanese_seller_name_prints_in_the_footer_of_every_page(browser_ready, tmp_path):
    # Given a Japanese seller (its name is in every page's footer, which Chromium lays out apart)
    doc = dataclasses.replace(japanese_customer_invoice(), seller=Party("株式会社請求サービス", "", ["大阪府"], ""))
    # When it is printed
    path = print_to_file(doc, tmp_path)
    # Then the footer's name is read back and nothing is drawn blank
    assert blank_glyphs(path) == 0
    assert "株式会社請求サービス" in unicodedata.normalize("NFKC", pdf_text(path)).split("INV-2025-0042")[-1]


def test_yen_amounts_print_with_the_yen_sign(browser_ready, tmp_path):
    # Given the same invoice in JPY, formatted for Japan (the yen sign Babel picks is the full-width ￥)
    doc = japanese_customer_invoice()
    amount = format_money(doc.total_cents, "JPY", "ja_JP")
    assert "¥" in unicodedata.normalize("NFKC", amount)
    # When it is printed
    path = print_to_file(doc, tmp_path)
    text = unicodedata.normalize("NFKC", pdf_text(path))
    # Then the total prints whole, yen sign included, and nothing is drawn blank
    assert blank_glyphs(path) == 0
    assert unicodedata.normalize("NFKC", amount).replace("\u00a0", " ") in text.replace("\u00a0", " ")


def test_every_font_in_the_pdf_is_embedded_and_only_its_used_glyphs(browser_ready, tmp_path):
    # Given the many-script invoice, printed
    path = print_to_file(japanese_customer_invoice(), tmp_path)
    # When its fonts are listed
    listing = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in listing.splitlines()[2:] if line.strip()]
    # Then every font is embedded: the TrueType ones (Open Sans, Noto Arabic, Thai, Devanagari) as
    # subsets (ABCDEF+Name); Noto Sans CJK has CFF outlines, which Chromium's PDF writer (Skia) embeds
    # as Type 3 fonts holding the outlines of the glyphs used, nothing more
    names = [row[0] for row in rows]
    assert any("NotoSansArabic" in name for name in names), names
    assert any(row[1:3] == ["Type", "3"] for row in rows), names
    for row in rows:
        # columns: name type [encoding...] emb sub uni object-id; emb and sub sit 5th and 4th from the end
        emb, sub = row[-5], row[-4]
        assert emb == "yes", row
        if row[1:3] != ["Type", "3"]:
            assert sub == "yes" and "+" in row[0], row
    # And the PDF is a small fraction of the 19 MB CJK font: only the used glyphs travel
    assert path.stat().st_size < 1_000_000
