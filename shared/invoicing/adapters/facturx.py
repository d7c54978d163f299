"""Factur-X (EN 16931 profile): our Chromium PDF + our CII XML -> one PDF/A-3 hybrid invoice.

Two steps, each doing what it is good at:

1. The `factur-x` package embeds the CII as `factur-x.xml` (an associated file, AFRelationship
   /Data, MIME text/xml, listed in the catalog's /AF), checks it against the Factur-X EN 16931 XSD,
   and writes the XMP packet: pdfaid part 3 / conformance B, Dublin Core title/creator/description,
   and the `fx:` extension schema (DocumentType INVOICE, DocumentFileName, Version, ConformanceLevel).
2. What it leaves out for PDF/A-3 on a Chromium PDF, added here with pikepdf:
   - an sRGB output intent (GTS_PDFA1, with the sRGB IEC61966-2.1 ICC profile pikepdf ships):
     Chromium paints in DeviceRGB, which PDF/A only accepts under an RGB output intent;
   - a trailer /ID (factur-x writes through pypdf, which leaves it out; qpdf always writes one);
   - PDF version 1.7 (PDF/A-3 is based on ISO 32000-1; Chromium writes 1.4, and the /UseAttachments
     page mode factur-x sets exists only since 1.6);
   - no document info dictionary: PDF/A requires it to agree with the XMP, and dropping it leaves the
     XMP the one source of title and dates;
   - no /PageMode /UseAttachments (factur-x's viewer hint, which opens the attachment pane): PDF/A
     validators that know PDF 1.4's page modes only flag it, and the XML stays attached either way.

This runs in the renderer, after Chromium (docs/einvoicing.md): it never changes the page content.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources

FACTURX_FILENAME = "factur-x.xml"
SRGB_CONDITION = "sRGB IEC61966-2.1"
PDF_VERSION = "1.7"


class FacturXError(RuntimeError):
    pass


@dataclass(frozen=True)
class FacturXMetadata:
    title: str  # "Invoice INV-2026-0042"
    author: str  # the seller's name
    subject: str = ""
    lang: str = "en-US"


def _srgb_profile() -> bytes:
    return resources.files("pikepdf").joinpath("pdfa/data/sRGB.icc").read_bytes()


def make_facturx(pdf: bytes, cii_xml: bytes, meta: FacturXMetadata) -> bytes:
    """Embed `cii_xml` into `pdf` as a Factur-X EN 16931 PDF/A-3B. Raises FacturXError when the
    XML is not Factur-X EN 16931 schema-valid (the factur-x package's own XSD check)."""
    import facturx
    import pikepdf

    try:
        embedded = facturx.generate_from_binary(
            pdf,
            cii_xml,
            flavor="factur-x",
            level="en16931",
            check_xsd=True,
            lang=meta.lang,
            pdf_metadata={
                "author": meta.author,
                "keywords": "Factur-X, EN 16931, invoice",
                "title": meta.title,
                "subject": meta.subject or meta.title,
            },
        )
    except Exception as failure:  # the package raises bare Exception on an invalid XML
        raise FacturXError(f"factur-x refused the XML: {failure}") from failure

    with pikepdf.open(io.BytesIO(embedded)) as doc:
        icc = pikepdf.Stream(doc, _srgb_profile())
        icc["/N"] = 3
        intent = pikepdf.Dictionary(
            Type=pikepdf.Name.OutputIntent,
            S=pikepdf.Name.GTS_PDFA1,
            OutputConditionIdentifier=pikepdf.String(SRGB_CONDITION),
            Info=pikepdf.String(SRGB_CONDITION),
            DestOutputProfile=icc,
        )
        doc.Root.OutputIntents = pikepdf.Array([doc.make_indirect(intent)])
        if "/Info" in doc.trailer:
            del doc.trailer["/Info"]
        if "/PageMode" in doc.Root:  # factur-x's /UseAttachments: a viewer hint, not part of PDF/A
            del doc.Root["/PageMode"]
        out = io.BytesIO()
        # qpdf writes the trailer /ID itself; static_id=False keeps it unique per document
        doc.save(out, min_version=PDF_VERSION, static_id=False)
        return out.getvalue()
