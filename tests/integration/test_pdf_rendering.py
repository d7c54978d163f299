"""Invoice PDFs printed by the real headless Chromium (no browser mocks), read back with pypdf.

Skips only when no Chromium is installed and CI is not "true": in CI a missing browser fails.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import unicodedata
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pypdf
import pytest

from invoicing.adapters import chromium, chromium_install
from invoicing.adapters.chromium import RenderError, render_pdf
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

REPO_ROOT = Path(__file__).resolve().parents[2]
HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_TEMPLATE = "{{ 7*7 }}"


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def browser_ready() -> Iterator[None]:
    if not chromium.chromium_available():
        message = "no Chromium: run `make chromium` or set CHROMIUM_PATH"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield


def make_document(
    *,
    line_count: int = 3,
    status: str = "open",
    currency: str = "USD",
    locale: str = "en_US",
    descriptions: list[str] | None = None,
    kind: str = "invoice",
) -> InvoiceDocument:
    descriptions = descriptions or [f"Service item {index + 1:03d}" for index in range(line_count)]
    lines = []
    for index, text in enumerate(descriptions):
        unit = 1_250 + index
        lines.append(DocumentLine(text, Decimal("2"), unit, 2 * unit, "Sales tax 10%", unit // 5))
    subtotal = sum(line.amount_cents for line in lines)
    tax = sum(line.tax_cents for line in lines)
    return InvoiceDocument(
        kind=kind,  # type: ignore[arg-type]
        number=None if status == "draft" else "INV-2025-0042",
        status=status,  # type: ignore[arg-type]
        currency=currency,
        locale=locale,
        issue_date=date(2025, 5, 2),
        due_date=date(2025, 6, 1),
        seller=Party("Example Billing Ltd", "billing@example.com", ["1 Market St", "Springfield"], "US-99"),
        customer=Party("Globex Corporation", "ap@globex.example", ["500 Industrial Way", "Cypress"], ""),
        lines=lines,
        tax_breakdown=[TaxBreakdownRow("Sales tax 10%", Decimal("10"), False, subtotal, tax)],
        subtotal_cents=subtotal,
        tax_cents=tax,
        total_cents=subtotal + tax,
        amount_paid_cents=1_000,
        amount_due_cents=subtotal + tax - 1_000,
        payment_url="https://pay.example.com/p/tok" if status == "open" else None,
        memo="Thank you!",
        reference_number="INV-2025-0001" if kind == "credit_note" else None,
    )


def pdf_pages(pdf: bytes) -> list[str]:
    """Each page's text, NFKC-normalized (ligatures, no-break spaces) for plain `in` checks."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [_normalize(page.extract_text()) for page in reader.pages]


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("\u00a0", " ").replace("\u202f", " ")


def print_document(doc: InvoiceDocument) -> list[str]:
    pdf = render_pdf(render_document_html(doc), footer_text=document_footer_text(doc))
    assert pdf.startswith(b"%PDF-")
    return pdf_pages(pdf)


# ---------------------------------------------------------------- content


@pytest.mark.parametrize(
    ("currency", "locale"),
    [("USD", "en_US"), ("EUR", "de_DE"), ("JPY", "en_US"), ("KWD", "en_US"), ("EUR", "fr_FR")],
)
def test_pdf_holds_number_customer_lines_and_totals(browser_ready, currency, locale):
    # Given an open invoice in a currency and locale
    doc = make_document(line_count=4, currency=currency, locale=locale)
    # When it is printed
    text = "\n".join(print_document(doc))
    # Then the PDF's text has the number, the customer, every line and the totals in that currency
    assert "INV-2025-0042" in text
    assert "Globex Corporation" in text
    for line in doc.lines:
        assert line.description in text
        assert _normalize(format_money(line.amount_cents, currency, locale)) in text
    for amount in (doc.subtotal_cents, doc.tax_cents, doc.total_cents, doc.amount_due_cents):
        assert _normalize(format_money(amount, currency, locale)) in text


def test_long_invoice_paginates_with_header_and_page_numbers_on_every_page(browser_ready):
    # Given 200 lines
    doc = make_document(line_count=200)
    # When printed
    pages = print_document(doc)
    # Then it spans several pages, each numbered "k / N" (no words: the same in every language), and every page the line table
    # reaches repeats its header
    assert len(pages) >= 4
    total = len(pages)
    for number, text in enumerate(pages, start=1):
        assert f"{number} / {total}" in text
        if any(line.description in text for line in doc.lines):
            assert "UNIT PRICE" in text.upper(), f"page {number} lacks the table header"
    assert sum("UNIT PRICE" in text.upper() for text in pages) >= 4
    assert f"1 / {total}" in pages[0]
    # and no line is lost or split between pages
    joined = "\n".join(pages)
    for line in doc.lines:
        assert joined.count(line.description) == 1
    # the totals come last
    assert _normalize(format_money(doc.amount_due_cents, "USD", "en_US")) in pages[-1]


def test_hostile_descriptions_print_as_literal_text(browser_ready):
    doc = make_document(descriptions=[HOSTILE_SCRIPT, HOSTILE_TEMPLATE, "A & B <c> \"d\" 'e'"])
    text = "\n".join(print_document(doc))
    assert HOSTILE_SCRIPT in text
    assert HOSTILE_TEMPLATE in text
    assert "A & B <c> \"d\" 'e'" in text


@pytest.mark.parametrize(("status", "mark"), [("draft", "DRAFT"), ("void", "VOID")])
def test_draft_and_void_marks_are_on_every_page(browser_ready, status, mark):
    pages = print_document(make_document(line_count=60, status=status))
    assert len(pages) >= 2
    for text in pages:
        assert mark in text


def test_an_open_invoice_has_no_draft_or_void_mark(browser_ready):
    text = "\n".join(print_document(make_document()))
    assert "DRAFT" not in text
    assert "VOID" not in text


def test_credit_note_prints(browser_ready):
    text = "\n".join(print_document(make_document(kind="credit_note")))
    assert "Credit note" in text
    assert "INV-2025-0001" in text


# ---------------------------------------------------------------- the browser manager


def test_browser_is_reused_across_renders(browser_ready):
    render_pdf("<p>warm up</p>")
    first = chromium.current_browser()
    launches = chromium.browser_launches()
    for _ in range(3):
        render_pdf("<p>again</p>")
    assert chromium.current_browser() is first
    assert chromium.browser_launches() == launches


def test_browser_is_relaunched_after_its_process_is_killed(browser_ready):
    render_pdf("<p>warm up</p>")
    browser = chromium.current_browser()
    process = chromium.browser_process()
    assert browser is not None and process is not None
    launches = chromium.browser_launches()
    # When the Chromium process dies (OOM killer, crash)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=5)
    # Then the next render starts a new browser and succeeds
    pages = pdf_pages(render_pdf("<p>after the crash</p>"))
    assert "after the crash" in pages[0]
    assert chromium.current_browser() is not browser
    assert chromium.current_browser() is not None
    assert chromium.browser_launches() == launches + 1
    new_process = chromium.browser_process()
    assert new_process is not None and new_process.pid != process.pid


def test_a_broken_binary_fails_fast_with_render_error(browser_ready, tmp_path, monkeypatch):
    # Given a "Chromium" that exits at once
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'cannot open shared object file' >&2\nexit 127\n")
    fake.chmod(0o755)
    original = os.environ.get("CHROMIUM_PATH")
    chromium.shutdown()
    monkeypatch.setenv("CHROMIUM_PATH", str(fake))
    # When rendering, Then a RenderError quotes its output, within a second rather than a 30 s poll
    started = time.perf_counter()
    with pytest.raises(RenderError, match="exited with status 127.*cannot open shared object"):
        render_pdf("<p>never</p>")
    assert time.perf_counter() - started < 5
    # and once the binary is fixed, the next render works
    if original:
        monkeypatch.setenv("CHROMIUM_PATH", original)
    else:
        monkeypatch.delenv("CHROMIUM_PATH")
    assert "recovered" in pdf_pages(render_pdf("<p>recovered</p>"))[0]


def test_timeout_raises_render_error_and_the_renderer_recovers(browser_ready):
    render_pdf("<p>warm up</p>")
    with pytest.raises(RenderError, match="longer than"):
        render_pdf("<p>too slow</p>" * 20_000, timeout_s=0.01)
    assert "still fine" in pdf_pages(render_pdf("<p>still fine</p>"))[0]


def test_concurrent_renders_from_threads_share_one_browser(browser_ready):
    render_pdf("<p>warm up</p>")
    launches = chromium.browser_launches()
    results: dict[int, str] = {}

    def work(index: int) -> None:
        results[index] = pdf_pages(render_pdf(f"<p>thread {index}</p>"))[0]

    threads = [threading.Thread(target=work, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    printed = {index: f"thread {index}" in text for index, text in results.items()}
    assert printed == dict.fromkeys(range(6), True)
    assert chromium.browser_launches() == launches


class _RecordingHandler(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"body { color: red }")

    def log_message(self, *args: object) -> None:
        pass


def test_documents_get_no_network(browser_ready):
    # Given a local HTTP server that records every request
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        # When a document references it in every way HTML allows
        html = (
            f'<link rel="stylesheet" href="{base}/style.css"><img src="{base}/logo.png">'
            f'<iframe src="{base}/frame"></iframe><p style="background:url({base}/bg.png)">no network</p>'
        )
        text = pdf_pages(render_pdf(html))[0]
    finally:
        server.shutdown()
    # Then it prints, and the server saw nothing (no SSRF through document content)
    assert "no network" in text
    assert _RecordingHandler.requests == []


# ---------------------------------------------------------------- the Lambda cold path


def test_lambda_cold_path_unpacks_the_layer_to_tmp_and_prints(browser_ready, tmp_path):
    # Given the layer's brotli files, as `sam build` puts them under /opt/chromium
    tarball = REPO_ROOT / ".cache" / "chromium" / f"sparticuz-chromium-{chromium.CHROMIUM_VERSION}.tgz"
    if not tarball.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tarball} is missing: `make chromium` keeps it")
        pytest.skip(f"{tarball} is missing: run `make chromium`")
    bundle = tmp_path / "opt" / "chromium"
    bundle.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        for name in chromium_install.BUNDLE_FILES:
            source = archive.extractfile(f"package/bin/{name}")
            assert source is not None
            (bundle / name).write_bytes(source.read())
    # When a fresh "Lambda" process renders (AWS_LAMBDA_FUNCTION_NAME set, /tmp empty)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO_ROOT / "shared"),
        "AWS_LAMBDA_FUNCTION_NAME": "render-pdf-test",
        "CHROMIUM_BUNDLE_DIR": str(bundle),
        "TMPDIR": str(tmp_path / "tmp"),
        "HOME": "/nonexistent",
    }
    (tmp_path / "tmp").mkdir()
    script = (
        "import time; t = time.perf_counter()\n"
        "from invoicing.adapters.chromium import render_pdf\n"
        "pdf = render_pdf('<p>cold start</p>')\n"
        "print(round(time.perf_counter() - t, 3)); assert pdf.startswith(b'%PDF-')\n"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    # Then the bundle was unpacked into TMPDIR (libs, fonts, our fonts.conf) and used
    unpacked = tmp_path / "tmp" / f"chromium-{chromium.CHROMIUM_VERSION}"
    assert chromium.is_unpacked(unpacked)
    assert (unpacked / "lib" / "libnss3.so").is_file()
    assert str(unpacked / "fonts") in (unpacked / "fonts.conf").read_text()
    assert time.perf_counter() - started < 60
