"""EN 16931 e-invoices: the semantic model (model.py), the mapping from our domain (mapping.py), and the
syntax writers (ubl.py for Peppol BIS 3 and XRechnung, cii.py for CII / Factur-X). See docs/einvoicing.md."""

from __future__ import annotations

from invoicing.einvoice.model import Document, Syntax

MEDIA_TYPE = "application/xml"


def render(doc: Document, syntax: Syntax) -> bytes:
    """The XML of `doc` in `syntax` (ubl: Peppol BIS Billing 3.0; xrechnung: XRechnung 3.0 UBL; cii)."""
    if syntax is Syntax.CII:
        from invoicing.einvoice.cii import to_cii

        return to_cii(doc)
    from invoicing.einvoice.ubl import to_ubl

    return to_ubl(doc, syntax)
