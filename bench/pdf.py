"""Section 4: PDFs. The worker path against its floor, WeasyPrint, a browser per job, and the cold path.

The invoices are real: created and finalized through the use cases in moto (customer snapshot, two VAT
rates, payment link), mapped by `invoicing.use_cases.documents.invoice_document` and rendered by
`invoicing.documents.render_document_html`. The 5-page invoice's line count is found by printing.

- worker path: what `render_invoice_pdf` does between its DynamoDB read and its DynamoDB write:
  document model + Jinja2 HTML + Chromium print (the warm browser of
  `invoicing.adapters.chromium.render_pdf`) + S3 put (moto). The invoice read (1 Query) and the
  rendered-mark (1 TransactWriteItems) are left out: in moto their cost is moto's serializer, not ours.
- floor: the Chromium print alone of the same HTML, same warm browser. Interleaved with the worker path.
- WeasyPrint: the same HTML (bench/requirements.txt; skipped with a note if it is not installed or
  cannot load pango).
- browser per job: `shutdown()` then print, i.e. a fresh Chromium launch for every job.
- cold path: a fresh process as on a Lambda cold start: the @sparticuz brotli files are unpacked to an
  empty TMPDIR, the browser launched (fontconfig scanning the Noto fonts into an empty cache) and the
  first PDF printed.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fixtures import ROOT, create_draft, finalize, make_customer, make_rates, moto_account, quiet_metrics
from bench.runner import Report, Row, interleaved, measure, median, ratio

SECTION = "4 pdf"
CHROMIUM_VERSION = "153.0.0"
FONTS_DIRNAME = "noto-20220127"  # invoicing.adapters.chromium_install.FONTS_DIRNAME (not imported: bench reads it cold)
BR_DIR = ROOT / ".cache" / "bench" / f"chromium-br-{CHROMIUM_VERSION}"
TARGET_WORKER = 1.3
TARGET_WEASY = {1: 2.0, 5: 5.0}
TARGET_COLD_S = 3.0

COLD_CHILD = r"""
import json, sys, time
shared, html_path = sys.argv[1:3]
sys.path.insert(0, shared)
t0 = time.perf_counter()
from invoicing.adapters import chromium
t1 = time.perf_counter()
install = chromium.locate_chromium()
t2 = time.perf_counter()
pdf = chromium.render_pdf(open(html_path, encoding="utf-8").read(), footer_text="Invoice (cold path)")
t3 = time.perf_counter()
chromium.shutdown()
print(json.dumps({"import": t1 - t0, "unpack": t2 - t1, "launch_and_print": t3 - t2, "bytes": len(pdf),
                  "executable": str(install.executable)}))
"""


def _pages(pdf: bytes) -> int:
    import pypdf

    return len(pypdf.PdfReader(io.BytesIO(pdf)).pages)


@dataclasses.dataclass
class Sample:
    pages: int
    lines: int
    invoice: Any
    payment_url: str | None
    html: str
    footer: str


def _html(invoice: Any, settings: Any, payment_url: str | None) -> tuple[str, str]:
    from invoicing.documents import document_footer_text, render_document_html
    from invoicing.use_cases.documents import invoice_document

    doc = invoice_document(invoice, settings, payment_url)
    return render_document_html(doc), document_footer_text(doc)


def _lines_for_pages(svc: Any, draft: Any, pages: int) -> int:
    """The smallest line count (<= the draft's) whose document prints to `pages` pages (binary search)."""
    from invoicing.adapters.chromium import render_pdf

    def count(k: int) -> int:
        html, footer = _html(dataclasses.replace(draft, lines=draft.lines[:k]), svc.settings, None)
        return _pages(render_pdf(html, footer_text=footer))

    low, high = 1, len(draft.lines)
    if count(high) < pages:
        return high
    while low < high:
        mid = (low + high) // 2
        if count(mid) < pages:
            low = mid + 1
        else:
            high = mid
    return low


def _samples(svc: Any) -> dict[int, Sample]:
    from invoicing.adapters.chromium import render_pdf
    from invoicing.use_cases.invoices import get_invoice

    customer = make_customer(svc)
    rates = make_rates(svc)
    probe = get_invoice(svc, create_draft(svc, customer.id, rates, 95).id)
    five = _lines_for_pages(svc, probe, 5)
    out = {}
    for pages, lines in ((1, 8), (5, five)):
        invoice, link = finalize(svc, create_draft(svc, customer.id, rates, lines).id)
        quiet_metrics()
        url = link.url if link else None
        html, footer = _html(invoice, svc.settings, url)
        printed = _pages(render_pdf(html, footer_text=footer))
        out[pages] = Sample(printed, lines, invoice, url, html, footer)
    return out


def _worker_path(svc: Any, sample: Sample) -> None:
    """render_invoice_pdf's steps between its DynamoDB read and write (see the module docstring)."""
    from invoicing.adapters.chromium import render_pdf
    from invoicing.use_cases.documents import pdf_key

    html, footer = _html(sample.invoice, svc.settings, sample.payment_url)
    pdf = render_pdf(html, footer_text=footer)
    svc.documents.put_pdf(pdf_key(sample.invoice), pdf, f"{sample.invoice.invoice_number}.pdf")


def _weasyprint(html: str) -> tuple[Any, str]:
    try:
        import weasyprint
    except Exception as exc:  # not installed, or pango/cairo libraries missing (OSError)
        return None, f"{type(exc).__name__}: {exc}"
    return weasyprint, ""


def _prepare_br_files() -> str:
    """The four .br files of @sparticuz/chromium (as in the Lambda layer), copied out of the npm tarball once."""
    if all((BR_DIR / name).is_file() for name in ("chromium.br", "al2023.tar.br", "fonts.tar.br")):
        return ""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "prepare_chromium.py"),
            "--version",
            CHROMIUM_VERSION,
            "--br-only",
            str(BR_DIR),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    return "" if done.returncode == 0 else (done.stderr or done.stdout)[-500:]


def _cold_path(html: str) -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    try:
        html_path = scratch / "invoice.html"
        html_path.write_text(html, encoding="utf-8")
        tmp = scratch / "tmp"
        tmp.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("CHROMIUM_PATH", "CHROMIUM_CACHE_DIR", "PYTHONPATH")}
        env.update(
            {"AWS_LAMBDA_FUNCTION_NAME": "bench-cold-path", "CHROMIUM_BUNDLE_DIR": str(BR_DIR), "TMPDIR": str(tmp)}
        )
        # the layer's /opt/fonts: read in place, its fontconfig cache built in the empty TMPDIR (as in Lambda)
        env.setdefault("INVOICE_FONTS_DIR", str(ROOT / ".cache" / "fonts" / FONTS_DIRNAME))
        done = subprocess.run(
            [sys.executable, "-I", "-c", COLD_CHILD, str(ROOT / "shared"), str(html_path)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"cold path child failed: {done.stderr[-1500:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if not str(result["executable"]).startswith(str(tmp)):
            raise RuntimeError(f"cold path used {result['executable']}, not a bundle unpacked to {tmp}")
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(report: Report, quick: bool) -> None:
    from invoicing.adapters.chromium import chromium_available, render_pdf, shutdown

    if not chromium_available():
        report.note("pdf: skipped: no Chromium (run `make chromium`)")
        return
    n = 8 if quick else 25
    with moto_account() as svc:
        samples = _samples(svc)
        render_pdf(samples[1].html, footer_text=samples[1].footer)  # the browser is warm from here on

        floor_rows: dict[int, Row] = {}
        worker_rows: dict[int, Row] = {}
        for pages, sample in samples.items():
            label = f"{pages} page{'s' if pages > 1 else ''}"

            def floor(s: Sample = sample) -> float:
                started = time.perf_counter()
                render_pdf(s.html, footer_text=s.footer)
                return time.perf_counter() - started

            def worker(s: Sample = sample) -> float:
                started = time.perf_counter()
                _worker_path(svc, s)
                return time.perf_counter() - started

            timings = interleaved({"floor": floor, "worker": worker}, n, warmup=2)
            detail = f"{sample.lines} lines, printed {sample.pages} page(s)"
            floor_rows[pages] = report.add(
                Row.timed(
                    SECTION, f"floor: Chromium print only, {label}", timings["floor"], note=f"{detail}; warm browser"
                )
            )
            r = ratio(median(timings["worker"]), median(timings["floor"]))
            worker_rows[pages] = report.add(
                Row.timed(
                    SECTION,
                    f"worker path, {label}",
                    timings["worker"],
                    baseline=f"floor {label}",
                    ratio=r,
                    target=f"<= {TARGET_WORKER}x floor",
                    met=r is not None and r <= TARGET_WORKER,
                    note=f"{detail}; document model + Jinja2 + print + S3 put (moto)",
                )
            )

        weasy, why = _weasyprint(samples[1].html)
        if weasy is None:
            report.note(
                f"pdf: WeasyPrint skipped: {why} (pip install -r bench/requirements.txt; apt-get install -y libpango-1.0-0 libpangoft2-1.0-0)"
            )
        else:
            for pages, sample in samples.items():
                label = f"{pages} page{'s' if pages > 1 else ''}"
                printed: list[int] = []

                def print_weasy(s: Sample = sample, out: list[int] = printed) -> None:
                    out.append(_pages(weasy.HTML(string=s.html).write_pdf()))

                # the first call loads fonts: one warm-up before the 1-page case is enough for both
                seconds = measure(
                    lambda _: print_weasy(), (3 if pages == 1 else 2) if quick else 6, warmup=int(pages == 1)
                )
                worker_median = worker_rows[pages].median
                r = ratio(median(seconds) * 1000, worker_median)
                target = TARGET_WEASY[pages]
                report.add(
                    Row.timed(
                        SECTION,
                        f"WeasyPrint {weasy.__version__}, same HTML, {label}",
                        seconds,
                        baseline=f"worker path {label}",
                        ratio=r,
                        target=f"worker >= {target:g}x faster",
                        met=r is not None and r >= target,
                        note=f"printed {printed[-1]} page(s) (no Chromium footer template)",
                    )
                )

        seconds = measure(
            lambda _: render_pdf(samples[1].html, footer_text=samples[1].footer),
            3 if quick else 8,
            setup=shutdown,
            warmup=0,
        )
        report.add(
            Row.timed(
                SECTION,
                "browser launched per job, 1 page",
                seconds,
                baseline="floor 1 page",
                ratio=ratio(median(seconds) * 1000, floor_rows[1].median),
                note="shutdown() before each job: launch + print; what a new browser per job would cost",
            )
        )
        render_pdf(samples[1].html, footer_text=samples[1].footer)
        shutdown()
        cold_html = samples[1].html

    problem = _prepare_br_files()
    if problem:
        report.note(f"pdf: cold path skipped: the .br files could not be prepared: {problem}")
        return
    runs = [_cold_path(cold_html) for _ in range(1 if quick else 3)]
    totals = [r["unpack"] + r["launch_and_print"] for r in runs]
    report.add(
        Row.timed(
            SECTION,
            "cold path: unpack .br to empty /tmp + launch + first PDF",
            totals,
            target=f"<= {TARGET_COLD_S:g} s",
            met=median(totals) <= TARGET_COLD_S,
            note=(
                f"unpack {median([r['unpack'] for r in runs]):.2f} s, launch + first print "
                f"{median([r['launch_and_print'] for r in runs]):.2f} s (+ importing the adapter "
                f"{median([r['import'] for r in runs]) * 1000:.0f} ms); fresh process"
            ),
        )
    )
    report.note(
        "pdf: the worker path excludes render_invoice_pdf's DynamoDB read (1 Query) and write (1 TransactWriteItems): "
        "in moto their time is moto's serializer; on AWS they add a few ms each. Lambda's CPU share at 2048 MB is "
        "about 1.2 vCPU, so expect the cold path's unpack (CPU-bound brotli) to be slower there than on this machine."
    )
