"""Factur-X on a PDF our Chromium renderer printed: the CII travels inside as factur-x.xml (EN 16931
profile, AFRelationship Data), and the PDF/A-3 parts the factur-x package leaves out are there: the
XMP identification, an sRGB output intent, a trailer ID.

No veraPDF here (Java). pikepdf's own PDF/A-3b checker judges the result: it flags a Chromium PDF
for DeviceRGB without an output intent and for its missing XMP, and passes ours on both; the one
violation left is the Factur-X XMP extension schema, which PDF/A-3 permits (6.6.2.3.2) and pikepdf's
allowlist does not read.
"""

from __future__ import annotations

import io
from dataclasses import replace

import pikepdf
import pytest

from invoicing.adapters.chromium import render_pdf
from invoicing.adapters.facturx import FACTURX_FILENAME, FacturXError, FacturXMetadata, make_facturx
from invoicing.documents import document_footer_text, render_document_html
from invoicing.domain.einvoicing import finalize_problems
from invoicing.einvoice import render
from invoicing.einvoice.mapping import invoice_document
from invoicing.einvoice.model import Syntax
from tests.integration.test_pdf_rendering import browser_ready, make_document  # noqa: F401 - fixture
from tests.support.einvoice_builders import GERMAN_BUYER_SETTINGS, LineSpec, finalized_invoice, inputs
from tests.support.einvoice_rules import require_rules
from tests.support.einvoice_validation import validate

pytestmark = [pytest.mark.chromium, pytest.mark.usefixtures("browser_ready")]

FX = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
EXTENSION_SCHEMA_NAMESPACES = ("pdfaExtension", "pdfaSchema", "pdfaProperty", "fx:", "fx=")


@pytest.fixture(scope="module")
def chromium_pdf() -> bytes:
    doc = make_document(currency="EUR")
    return render_pdf(render_document_html(doc), footer_text=document_footer_text(doc))


@pytest.fixture(scope="module")
def cii() -> bytes:
    """A German business customer's invoice (issue #19: "fetched as a Factur-X PDF, valid")."""
    invoice = finalized_invoice(LineSpec("Consulting", "1.5", 10000, "txr_19", "19"))
    buyer = replace(GERMAN_BUYER_SETTINGS, einvoice_format=Syntax.CII)
    assert finalize_problems(invoice, inputs(buyer=buyer)) == []
    return render(invoice_document(invoice, inputs(buyer=buyer)), Syntax.CII)


@pytest.fixture(scope="module")
def facturx_pdf(chromium_pdf: bytes, cii: bytes) -> bytes:
    return make_facturx(chromium_pdf, cii, FacturXMetadata("Invoice INV-2026-000042", "Muster Software GmbH"))


def _findings(pdf: bytes) -> list:
    from pikepdf import pdfa

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return list(pdfa.check(doc, "3b").findings)


def test_the_cii_is_embedded_as_factur_x_xml_with_relationship_data(facturx_pdf: bytes, cii: bytes) -> None:
    with pikepdf.open(io.BytesIO(facturx_pdf)) as doc:
        spec = doc.Root.AF[0]
        assert str(spec.F) == FACTURX_FILENAME
        assert spec.AFRelationship == pikepdf.Name.Data
        stream = spec.EF.F
        assert stream.Subtype == pikepdf.Name("/text/xml")
        assert stream.read_bytes() == cii
        assert FACTURX_FILENAME in doc.attachments


def test_the_pdfa3_parts_factur_x_leaves_out_are_added(facturx_pdf: bytes) -> None:
    with pikepdf.open(io.BytesIO(facturx_pdf)) as doc:
        intent = doc.Root.OutputIntents[0]
        assert intent.S == pikepdf.Name.GTS_PDFA1
        assert str(intent.OutputConditionIdentifier) == "sRGB IEC61966-2.1"
        assert intent.DestOutputProfile.N == 3
        assert len(intent.DestOutputProfile.read_bytes()) > 1000
        first, second = doc.trailer.ID
        assert len(bytes(first)) == 16 and len(bytes(second)) == 16
        assert doc.pdf_version >= "1.7"
        assert "/Info" not in doc.trailer
        meta = doc.open_metadata()
        assert meta["pdfaid:part"] == "3"
        assert meta["pdfaid:conformance"] == "B"
        assert meta[f"{{{FX}}}ConformanceLevel"] == "EN 16931"
        assert meta[f"{{{FX}}}DocumentFileName"] == FACTURX_FILENAME
        assert meta[f"{{{FX}}}DocumentType"] == "INVOICE"


def test_pdfa_checker_passes_what_we_added_and_flags_only_the_facturx_extension_schema(
    chromium_pdf: bytes, facturx_pdf: bytes
) -> None:
    plain = {f.rule for f in _findings(chromium_pdf) if f.kind == "violation"}
    assert {"ISO_19005_3:6.2.4.3-2", "ISO_19005_3:6.6.2.1-1"} <= plain  # DeviceRGB without intent; no XMP
    left = [f for f in _findings(facturx_pdf) if f.kind == "violation"]
    assert {f.rule for f in left} <= {"ISO_19005_3:6.6.2.3.1-1"}
    assert all(any(ns in f.message for ns in EXTENSION_SCHEMA_NAMESPACES) for f in left), left


def test_the_embedded_xml_reads_back_and_passes_the_official_and_facturx_rules(facturx_pdf: bytes, cii: bytes) -> None:
    import facturx

    require_rules()
    filename, xml = facturx.get_xml_from_pdf(facturx_pdf, check_xsd=True)
    assert (filename, xml) == (FACTURX_FILENAME, cii)
    report = validate(xml, "en16931-cii", "facturx-en16931")
    assert report.ok, report.explain()


def test_an_xml_that_is_not_factur_x_is_refused(chromium_pdf: bytes) -> None:
    with pytest.raises(FacturXError):
        make_facturx(chromium_pdf, b"<Invoice/>", FacturXMetadata("x", "y"))
