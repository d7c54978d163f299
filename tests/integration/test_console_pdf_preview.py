"""The invoice page previews its PDF inline, through the console's own PDF route (same session).

Given an open invoice, when its PDF is still being rendered the page has no preview; once rendered,
the page frames /console/invoices/{id}/pdf, and its Content-Security-Policy allows framing that route
and the signed S3 URL it redirects to, and nothing else.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.support.builders import draft_of, open_invoice_of
from tests.support.console import browser


def _render(svc, invoice_id: str) -> None:  # type: ignore[no-untyped-def]
    from invoicing.use_cases import documents

    job = {"invoice_id": invoice_id, "job_id": "job-1"}
    assert documents.render_invoice_pdf(svc, job, render=lambda html, footer_text: b"%PDF-1.7 test") == "rendered"


def test_the_invoice_page_frames_its_pdf_once_rendered_and_the_csp_allows_just_that(console):
    from invoicing.root import get_services
    from invoicing.use_cases import customers, documents

    svc = get_services()
    customer = customers.create_customer(svc, name="Acme GmbH", email="ap@acme.test", currency="USD")
    invoice = open_invoice_of(svc, customer.id, 1200)
    draft = draft_of(svc, customer.id, 300)
    b = browser(console, "viewer@acme.example")

    status, page, headers = b.get(f"/console/invoices/{invoice.id}")
    assert status == 200 and "<iframe" not in page and "frame-src" not in headers["Content-Security-Policy"]
    assert "<iframe" not in b.get(f"/console/invoices/{draft.id}")[1]

    _render(svc, invoice.id)
    status, page, headers = b.get(f"/console/invoices/{invoice.id}")
    assert status == 200
    assert f'<iframe class="pdf" src="/test/console/invoices/{invoice.id}/pdf"' in page
    url, _ = documents.pdf_download(svc, invoice.id)
    s3 = urlsplit(url)
    csp = headers["Content-Security-Policy"]
    assert csp.endswith(f"; frame-src 'self' {s3.scheme}://{s3.netloc}") and "frame-ancestors 'none'" in csp

    status, _, headers = b.get(f"/console/invoices/{invoice.id}/pdf")
    assert status == 302 and urlsplit(headers["Location"]).netloc == s3.netloc, "the frame follows to that origin"
    assert browser(console).get(f"/console/invoices/{invoice.id}/pdf")[0] == 303, "no session: the login"
