"""PNG snapshots of the German, Japanese, Arabic and Traditional Chinese invoices in docs/img (issue #18), to look at
before a change to the documents lands:

    make snapshots        # or: PYTHONPATH=shared:. .venv/bin/python scripts/document_snapshots.py

Printed by the same Chromium and fonts as the PDF worker, rasterized with poppler's pdftoppm.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "shared", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from invoicing.adapters import chromium  # noqa: E402
from invoicing.documents import document_footer_text, render_document_html  # noqa: E402
from tests.support.documents import SAMPLES, invoice_document  # noqa: E402

LANGUAGES = ("de", "ja", "ar", "zh_Hant")
OUT = ROOT / "docs" / "img"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for language in LANGUAGES:
                doc = invoice_document(SAMPLES[language])
                pdf = Path(tmp) / f"invoice-{language}.pdf"
                pdf.write_bytes(chromium.render_pdf(render_document_html(doc), footer_text=document_footer_text(doc)))
                target = OUT / f"invoice-{language}"
                subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(pdf), str(target)], check=True)
                print(f"wrote {target}.png")
    finally:
        chromium.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
