#!/usr/bin/env python3
"""Render a realistic sample invoice to PDF and PNG: the picture in docs/img/invoice-sample.png.

    .venv/bin/python scripts/render_sample_invoice.py          # refreshes docs/img/invoice-sample.png
    .venv/bin/python scripts/render_sample_invoice.py --lines 60 --status draft --out /tmp/sample

Uses the real template and the real Chromium (run `make chromium` first); the PNG comes from
`pdftoppm -png -r 80` (Debian: poppler-utils). Writes <out>.html, <out>.pdf and <out>-<page>.png.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "shared"))

from invoicing.adapters.chromium import render_pdf  # noqa: E402
from invoicing.documents import (  # noqa: E402
    DocumentLine,
    InvoiceDocument,
    Party,
    TaxBreakdownRow,
    document_footer_text,
    render_document_html,
)

# A 1-page invoice for a small consultancy: services, licences and expenses at two VAT rates.
CATALOGUE: list[tuple[str, str, int, str | None]] = [
    ("Platform subscription, Business plan (1–31 March 2025)", "1", 249_00, "VAT 19%"),
    ("Additional seats\n12 users × 1 month", "12", 15_00, "VAT 19%"),
    ("Implementation workshop (on site, Berlin)", "1.5", 1_200_00, "VAT 19%"),
    ("Data migration from legacy ERP, fixed price", "1", 3_450_00, "VAT 19%"),
    ("Priority support retainer", "1", 490_00, "VAT 19%"),
    ("Custom report: quarterly revenue by region", "6", 95_00, "VAT 19%"),
    ("Training material, printed handbook", "25", 18_40, "VAT 7%"),
    ("Travel expenses (train, Hamburg–Berlin return)", "1", 139_90, None),
]
RATES = {"VAT 19%": Decimal("19"), "VAT 7%": Decimal("7")}


def sample_invoice(line_count: int = len(CATALOGUE), status: str = "open") -> InvoiceDocument:
    lines: list[DocumentLine] = []
    for index in range(line_count):
        description, quantity, unit, label = CATALOGUE[index % len(CATALOGUE)]
        if index >= len(CATALOGUE):
            description = f"{description} (item {index + 1})"
        qty = Decimal(quantity)
        amount = int((qty * unit).quantize(Decimal(1)))
        tax = int((Decimal(amount) * RATES[label] / 100).quantize(Decimal(1))) if label else 0
        lines.append(DocumentLine(description, qty, unit, amount, label, tax))
    breakdown = []
    for label, rate in RATES.items():
        taxed = [line for line in lines if line.tax_rate_label == label]
        if taxed:
            breakdown.append(
                TaxBreakdownRow(
                    label=label,
                    rate_percent=rate,
                    inclusive=False,
                    taxable_cents=sum(line.amount_cents for line in taxed),
                    tax_cents=sum(line.tax_cents for line in taxed),
                )
            )
    subtotal = sum(line.amount_cents for line in lines)
    tax = sum(line.tax_cents for line in lines)
    paid = 1_000_00 if status == "open" else 0
    total = subtotal + tax
    return InvoiceDocument(
        kind="invoice",
        number=None if status == "draft" else "INV-2025-0042",
        status=status,  # type: ignore[arg-type]
        currency="EUR",
        locale="en_US",
        issue_date=None if status == "draft" else date(2025, 3, 31),
        due_date=None if status == "draft" else date(2025, 4, 30),
        seller=Party(
            name="Northwind Analytics GmbH",
            email="billing@northwind.example",
            address_lines=["Friedrichstraße 123", "10117 Berlin", "Germany"],
            tax_id="DE 123 456 789",
        ),
        customer=Party(
            name="Contoso Retail AG",
            email="accounts.payable@contoso.example",
            address_lines=["Attn. Accounts Payable", "Speicherstadt 7", "20457 Hamburg", "Germany"],
            tax_id="DE 987 654 321",
        ),
        lines=lines,
        tax_breakdown=breakdown,
        subtotal_cents=subtotal,
        tax_cents=tax,
        total_cents=total,
        amount_paid_cents=paid if status != "paid" else total,
        amount_due_cents=0 if status in ("paid", "void") else total - paid,
        payment_url="https://pay.northwind.example/p/7Q2mX9vKc4" if status == "open" else None,
        memo="Thank you for your business. Payment terms: 30 days net.\n"
        "Bank transfer: IBAN DE89 3704 0044 0532 0130 00 · BIC COBADEFFXXX",
    )


def main(argv: list[str] | None = None) -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--lines", type=int, default=len(CATALOGUE))
    statuses = ["draft", "open", "paid", "void", "uncollectible"]
    parser.add_argument("--status", default="open", choices=statuses)
    parser.add_argument("--out", type=Path, default=None, help="output prefix (default: a temp folder)")
    parser.add_argument(
        "--png",
        type=Path,
        default=REPO_ROOT / "docs" / "img" / "invoice-sample.png",
        help="where the first page's PNG is copied (default: docs/img/invoice-sample.png)",
    )
    parser.add_argument("--dpi", type=int, default=80)
    args = parser.parse_args(argv)

    doc = sample_invoice(args.lines, args.status)
    html = render_document_html(doc)
    pdf = render_pdf(html, footer_text=document_footer_text(doc))
    out = args.out or Path("/tmp") / "invoice-sample"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".html").write_text(html)
    out.with_suffix(".pdf").write_bytes(pdf)
    if shutil.which("pdftoppm") is None:
        sys.exit("pdftoppm is missing: apt-get install -y poppler-utils")
    for old in out.parent.glob(f"{out.name}-*.png"):
        old.unlink()
    pdf_path = out.with_suffix(".pdf")
    subprocess.run(["pdftoppm", "-png", "-r", str(args.dpi), str(pdf_path), str(out)], check=True)
    pages = sorted(out.parent.glob(f"{out.name}-*.png"))
    args.png.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pages[0], args.png)
    print(f"{out.with_suffix('.pdf')}: {len(pages)} page(s); first page -> {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
