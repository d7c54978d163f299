"""Section 6: e-invoices. The time to build one invoice's XML and to validate it by the official rules.

The invoice is finalized by the production rules (tests/support/einvoice_builders.py: freeze + plan,
per-line tax), 10 lines at two VAT rates, for a German business buyer. Cases:

- map + check: domain snapshot -> EN 16931 model (`invoice_document`) and the finalize-time check
  (`finalize_problems`): what the finalize path would add;
- build ubl / cii / xrechnung: model -> XML with lxml (`einvoice.render`): what the endpoint adds;
- validate: XSD (lxml) + the official XSLT rules under Saxon HE, per format; compiled once per process
  (the compile is its own row: what a test worker pays once);
- build + validate ubl: the figure issue #19 asks for, one invoice end to end;
- factur-x: embed the CII into a Chromium PDF and make it PDF/A-3 (adapters/facturx.py), when
  Chromium is installed.

Saxon is for CI and this bench, never the Lambda path (saxonche is ~105 MB).
"""

from __future__ import annotations

import time
from typing import Any

from bench.runner import Report, Row, measure

SECTION = "6 e-invoice"
TARGET_BUILD_VALIDATE_MS = 50.0


def _invoice() -> tuple[Any, Any]:
    from tests.support.einvoice_builders import LineSpec, finalized_invoice, inputs

    lines = [LineSpec(f"Service {i}", "1.5", 10000 + i * 37, "txr_19", "19") for i in range(8)]
    lines += [LineSpec("Handbook", "3", 1999, "txr_7", "7"), LineSpec("Discount", "1", -2500, "txr_19", "19")]
    return finalized_invoice(*lines), inputs()


def run(report: Report, quick: bool) -> None:
    from invoicing.domain.einvoicing import finalize_problems
    from invoicing.einvoice import render
    from invoicing.einvoice.mapping import invoice_document
    from invoicing.einvoice.model import Syntax
    from tests.support import einvoice_validation as harness
    from tests.support.einvoice_rules import RulesMissing, rules_dir

    n = 30 if quick else 200
    invoice, given = _invoice()
    assert finalize_problems(invoice, given) == []

    def map_and_check(_: object) -> None:
        finalize_problems(invoice, given)

    report.add(Row.timed(SECTION, "map + check (finalize path)", measure(map_and_check, n)))
    doc = invoice_document(invoice, given)
    xml = {}
    for syntax in (Syntax.UBL, Syntax.CII, Syntax.XRECHNUNG):
        report.add(Row.timed(SECTION, f"build {syntax.value}", measure(lambda _, s=syntax: render(doc, s), n)))
        xml[syntax] = render(doc, syntax)

    try:
        rules_dir()
    except RulesMissing as missing:
        report.note(f"e-invoice: validation skipped: {missing}")
        return
    for name in ("en16931-ubl", "en16931-cii", "xrechnung-ubl"):
        started = time.perf_counter()
        harness._compiled(name)
        report.add(Row.timed(SECTION, f"compile {name} (once per process)", [time.perf_counter() - started]))
    for syntax in (Syntax.UBL, Syntax.CII, Syntax.XRECHNUNG):
        sets = harness.rule_sets_for(syntax.value)
        assert harness.validate(xml[syntax], *sets).ok
        samples = measure(lambda _, s=syntax, r=sets: harness.validate(xml[s], *r), n)
        report.add(Row.timed(SECTION, f"validate {syntax.value} (XSD + {' + '.join(sets)})", samples))

    def build_and_validate(_: object) -> None:
        out = render(invoice_document(invoice, given), Syntax.UBL)
        harness.validate(out, "en16931-ubl")

    samples = measure(build_and_validate, n)
    row = report.add(
        Row.timed(SECTION, "build + validate ubl, one invoice", samples, target=f"<= {TARGET_BUILD_VALIDATE_MS:.0f} ms")
    )
    row.met = row.median is not None and row.median <= TARGET_BUILD_VALIDATE_MS
    _facturx(report, xml[Syntax.CII], quick)


def _facturx(report: Report, cii: bytes, quick: bool) -> None:
    from invoicing.adapters import chromium

    if not chromium.chromium_available():
        report.note("e-invoice: factur-x skipped: no Chromium (make chromium)")
        return
    from invoicing.adapters.facturx import FacturXMetadata, make_facturx
    from invoicing.documents import document_footer_text, render_document_html
    from tests.integration.test_pdf_rendering import make_document

    document = make_document(currency="EUR")
    pdf = chromium.render_pdf(render_document_html(document), footer_text=document_footer_text(document))
    meta = FacturXMetadata("Invoice", "Seller")
    samples = measure(lambda _: make_facturx(pdf, cii, meta), 10 if quick else 40)
    report.add(Row.timed(SECTION, "factur-x: embed + PDF/A-3 (1-page Chromium PDF)", samples))
