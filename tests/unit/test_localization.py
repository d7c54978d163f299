"""Which language and formats a customer gets (issue #18), and the invoice's and seller's own words on
the printed document. No browser: the HTML is read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from invoicing import i18n
from invoicing.documents import CustomField, SellerBranding, document_footer_text, render_document_html
from invoicing.settings import Settings
from tests.support.documents import SAMPLES, invoice_document, open_invoice


@pytest.mark.parametrize(
    ("customer", "seller", "language", "formats"),
    [
        ("de_DE", "en_US", "de", "de_DE"),
        ("de_AT", "en_US", "de", "de_AT"),
        ("ar_EG", "en_US", "ar", "ar_EG"),
        ("sv_SE", "fr_FR", "fr", "sv_SE"),  # no Swedish catalog: the seller's words, Swedish formats
        ("sv_SE", "sv_SE", "en", "sv_SE"),  # neither: English words
        ("", "de_DE", "de", "de_DE"),
        ("xx_NOT_A_LOCALE", "ja_JP", "ja", "ja_JP"),
        # Chinese: the script decides the catalog; a territory without a script implies one
        ("zh_TW", "en_US", "zh_Hant", "zh_Hant_TW"),
        ("zh-HK", "en_US", "zh_Hant", "zh_Hant_HK"),
        ("zh_Hant", "en_US", "zh_Hant", "zh_Hant"),
        ("zh_CN", "en_US", "zh", "zh_Hans_CN"),
        ("zh", "en_US", "zh", "zh"),
        ("zh_Hans_HK", "en_US", "zh", "zh_Hans_HK"),
    ],
)
def test_the_customers_locale_picks_language_and_formats_the_seller_is_the_fallback(
    customer, seller, language, formats
):
    loc = i18n.localize(customer, seller)
    assert (loc.language, loc.locale) == (language, formats)
    assert loc.direction == ("rtl" if language == "ar" else "ltr")


def test_every_shipped_language_has_its_compiled_catalog():
    for language in i18n.LANGUAGES:
        assert i18n.translations(language).gettext("Invoice") != "" and (
            language == "en" or i18n.translations(language).gettext("Invoice") != "Invoice"
        ), language


def test_arabic_day_counts_take_their_six_plural_forms():
    loc = i18n.localize("ar_EG")
    forms = [loc.ngettext("%(num)d day", "%(num)d days", n) for n in (0, 1, 2, 5, 11, 100)]
    assert forms == ["0 يوم", "يوم واحد", "يومين", "5 أيام", "11 يومًا", "100 يوم"]


def test_the_title_and_footer_are_the_legal_title_in_the_customers_language():
    doc = invoice_document(SAMPLES["fr"])
    assert document_footer_text(doc) == "Facture INV-2026-0042 · Example Billing Ltd"
    assert document_footer_text(replace(doc, number=None)) == "Facture (brouillon) · Example Billing Ltd"


def test_purchase_order_custom_fields_and_seller_words_are_printed_and_escaped():
    doc = replace(
        invoice_document(SAMPLES["en"]),
        purchase_order="PO <b>1</b>",
        custom_fields=[CustomField("Project", "{{ 7*7 }}")],
        branding=SellerBranding(
            accent_color="#ff0000", bank_details="IBAN X", legal_lines=["Reg 1", "MD A"], footer_text="Thanks"
        ),
    )
    html = render_document_html(doc)
    assert "PO &lt;b&gt;1&lt;/b&gt;" in html and "{{ 7*7 }}" in html and "Project" in html
    assert "--accent: #ff0000" in html
    for text in ("IBAN X", "Reg 1", "MD A", "Thanks", "Bank details", "Purchase order"):
        assert text in html


@pytest.mark.parametrize("colour", ["red; } body { display: none", "#12345", "url(x)", ""])
def test_an_accent_colour_that_is_not_rrggbb_never_reaches_the_css(colour):
    doc = replace(invoice_document(SAMPLES["en"]), branding=SellerBranding(accent_color=colour))
    html = render_document_html(doc)
    assert "--accent: #243b53;" in html and (not colour or colour not in html)


def test_settings_refuse_an_unknown_seller_locale_and_a_bad_accent_colour():
    with pytest.raises(ValueError):
        Settings(seller_locale="not a locale")
    with pytest.raises(ValueError):
        Settings(seller_accent_color="red")
    assert Settings(seller_legal_lines="Reg 1 | MD A |").seller_legal_line_list == ["Reg 1", "MD A"]


def test_the_pdf_worker_maps_the_invoices_and_the_sellers_words_onto_the_document():
    from invoicing.use_cases.documents import invoice_document as document_of

    # Given an open invoice with a purchase order and a custom field, and a seller's settings
    invoice = replace(open_invoice(SAMPLES["de"]), custom_fields=(("Kostenstelle", "KST-7"),))
    settings = Settings(
        seller_accent_color="#0b6e4f",
        seller_footer_text="Vielen Dank",
        seller_legal_lines="HRB 123 | GF: A. Lovelace",
        bank_transfer_instructions="IBAN DE89",
        seller_locale="fr_FR",
    )
    # When the worker builds the document
    doc = document_of(invoice, settings)
    html = render_document_html(doc)
    # Then they are printed, in the customer's language (German, not the seller's French)
    assert doc.purchase_order == "PO-4711" and doc.custom_fields == [CustomField("Kostenstelle", "KST-7")]
    for text in ("PO-4711", "Kostenstelle", "KST-7", "Vielen Dank", "HRB 123", "GF: A. Lovelace", "IBAN DE89"):
        assert text in html
    assert "Rechnung" in html and "--accent: #0b6e4f" in html
