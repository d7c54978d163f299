"""Every document a customer reads, in each of the 10 languages we ship, read back as a person reads it
(issue #18 item 4): the invoice and credit-note PDFs (real headless Chromium, text by poppler's
`pdftotext`, fonts by `pdffonts`), one reminder e-mail (text and HTML parts) and the pay page.

Each test renders one language's documents once (two PDFs; the process's one browser is reused), so
the module costs 20 prints, whatever the number of workers.
"""

from __future__ import annotations

import html as html_lib
import os
import re
import shutil
import subprocess
import unicodedata
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from invoicing.adapters import chromium
from invoicing.adapters.chromium import render_pdf
from invoicing.documents import InvoiceDocument, document_footer_text, format_money, render_document_html
from invoicing.emails import render_reminder
from invoicing.settings import Settings
from tests.integration.conftest import load_function
from tests.support.documents import (
    BRANDING,
    LANGUAGES,
    NUMBER,
    SAMPLES,
    UNIT_AMOUNTS,
    Sample,
    amounts,
    credit_note_document,
    input_texts,
    invoice_document,
    open_invoice,
    reminder_mail,
)

pytestmark = pytest.mark.chromium

BIDI_CONTROLS = dict.fromkeys(map(ord, "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


@pytest.fixture(scope="module")
def browser_ready() -> None:
    missing = [tool for tool in ("pdftotext", "pdffonts") if shutil.which(tool) is None]
    if not chromium.chromium_available() or missing:
        message = f"no Chromium (make chromium) or no poppler-utils ({missing})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if not chromium.locate_fonts():
        pytest.fail("no Noto fonts: run `make fonts`")


def normalized(text: str) -> str:
    """What a reader sees: compatibility forms folded (Arabic presentation forms, full-width signs),
    no bidi controls, every run of spaces (no-break ones too) one space."""
    folded = unicodedata.normalize("NFKC", text).translate(BIDI_CONTROLS)
    return re.sub(r"\s+", " ", folded)


def letters(text: str) -> Counter[str]:
    return Counter(char for char in normalized(text) if not char.isspace())


def reads(expected: str, text: str) -> bool:
    """`expected` appears as typed, blind to spacing (a PDF keeps no no-break space between an amount
    and its currency sign); a right-to-left run may come back from a PDF in visual order."""
    want, have = (re.sub(r"\s", "", normalized(value)) for value in (expected, text))
    return want in have or want[::-1] in have


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    return " ".join(parser.parts)


def html_dir(markup: str) -> str:
    match = re.search(r"<html[^>]*\bdir=\"(\w+)\"", markup)
    assert match, markup[:200]
    return match.group(1)


def printed(doc: InvoiceDocument, tmp_path: Path, name: str) -> tuple[str, list[list[str]], str]:
    """(text, pdffonts rows, html) of the document printed by Chromium."""
    markup = render_document_html(doc)
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(render_pdf(markup, footer_text=document_footer_text(doc)))
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    listing = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    return text, [line.split() for line in listing.splitlines()[2:] if line.strip()], markup


def assert_reads_everything(sample: Sample, text: str, *, lines: bool = True) -> None:
    assert reads(sample.customer_name, text), f"{sample.customer_name!r} not in {normalized(text)!r}"
    if lines:
        for description in sample.descriptions:
            assert reads(description, text), f"{description!r} not in {normalized(text)!r}"
        typed = "".join(input_texts(sample))
        lost = letters(typed) - letters(text)
        assert not lost, f"characters lost: {lost}"


def money(sample: Sample, cents: int) -> str:
    return format_money(cents, sample.currency, sample.locale)


@pytest.mark.parametrize("language", LANGUAGES)
def test_pdfs_mail_and_pay_page_speak_the_customers_language(language, browser_ready, tmp_path):
    sample = SAMPLES[language]
    subtotal, tax, total = amounts()
    rtl = language == "ar"

    # Given an open invoice and a credit note for a customer writing in this language
    # When both are printed
    invoice_text, invoice_fonts, invoice_html = printed(invoice_document(sample), tmp_path, "invoice")
    credit_text, credit_fonts, credit_html = printed(credit_note_document(sample), tmp_path, "credit")

    # Then each says its legal title, the customer's name in its own script, every line and the amounts
    assert reads(sample.invoice_title, invoice_text), normalized(invoice_text)
    assert reads(sample.credit_note_title, credit_text), normalized(credit_text)
    for text in (invoice_text, credit_text):
        assert_reads_everything(sample, text)
        for cents in (*UNIT_AMOUNTS, subtotal, total):
            assert reads(money(sample, cents), text), (money(sample, cents), normalized(text))
        assert NUMBER in text
    assert reads(BRANDING.legal_lines[1], invoice_text)
    # And the whole document runs right to left in Arabic only
    assert html_dir(invoice_html) == html_dir(credit_html) == ("rtl" if rtl else "ltr")
    # And every font is embedded
    for row in invoice_fonts + credit_fonts:
        assert row[-5] == "yes", row

    # Given the same customer's overdue reminder, When it is rendered
    mail = render_reminder(reminder_mail(sample))
    # Then subject, text and HTML parts name the invoice in the language, the customer and the amount due
    for part in (mail.text, html_text(mail.html)):
        assert reads(sample.invoice_title, part), part
        assert_reads_everything(sample, part, lines=False)
        assert reads(money(sample, total), part), part
    assert NUMBER in mail.subject
    assert html_dir(mail.html) == ("rtl" if rtl else "ltr")

    # Given the invoice's pay page, When it is rendered
    pay_pages = load_function("pay", "pay_pages")
    page = pay_pages.render_invoice_page(Settings(), open_invoice(sample), nonce="n" * 24, state="payable")
    text = html_lib.unescape(html_text(page))
    # Then it shows the title, the customer, the lines and the amounts in the language
    assert reads(sample.invoice_title, text), text
    assert_reads_everything(sample, text, lines=False)
    for description in sample.descriptions:
        assert reads(description, text), text
    for cents in (*UNIT_AMOUNTS, total):
        assert reads(money(sample, cents), text), (money(sample, cents), text)
    assert html_dir(page) == ("rtl" if rtl else "ltr")


def test_traditional_chinese_is_tagged_as_such_and_printed_in_other_glyphs_than_simplified(browser_ready, tmp_path):
    # Given a Taiwanese customer's invoice: the zh_Hant catalog, and lang="zh-TW" on the document
    sample = SAMPLES["zh_Hant"]
    markup = render_document_html(invoice_document(sample))
    assert '<html lang="zh-TW"' in markup or '<html lang="zh-Hant' in markup, markup[:120]
    # When it is printed as it is, and once more with the very same text tagged Simplified (zh-CN)
    simplified = markup.replace('<html lang="zh-Hant-TW"', '<html lang="zh-CN"').replace(
        '<html lang="zh-TW"', '<html lang="zh-CN"'
    )
    assert simplified != markup
    pages = []
    for name, html in (("hant", markup), ("hans", simplified)):
        (tmp_path / f"{name}.pdf").write_bytes(render_pdf(html))
        subprocess.run(
            ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(tmp_path / f"{name}.pdf"), str(tmp_path / name)],
            check=True,
        )
        pages.append(next(tmp_path.glob(f"{name}*.png")).read_bytes())
    # Then the glyphs differ: the lang attribute chose the Traditional face (Noto Sans CJK TC), not SC
    assert pages[0] != pages[1]


def test_a_german_customer_reads_rechnung_and_euro_amounts_the_german_way(browser_ready, tmp_path):
    # Given a German customer's invoice of 1.234,56 € + 450,00 €
    sample = SAMPLES["de"]
    # When it is printed
    text, _, _ = printed(invoice_document(sample), tmp_path, "rechnung")
    # Then it is a "Rechnung", and its amounts are written as in Germany
    assert format_money(123_456, "EUR", "de_DE") == "1.234,56\u00a0€"
    assert "Rechnung" in text and "RECHNUNGSEMPFÄNGER" in text  # the label is set in capitals by its CSS
    assert "1.234,56 €" in normalized(text)
    assert "Invoice" not in text and "Page" not in text
