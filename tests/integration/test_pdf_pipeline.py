"""The PDF pipeline against moto with real Chromium: finalize -> SQS job -> worker -> S3 -> download link."""

from __future__ import annotations

import json
import os
import uuid

import boto3
import pytest
from pypdf import PdfReader

from tests.integration.conftest import LambdaContext, load_function

pytestmark = pytest.mark.chromium


@pytest.fixture(scope="module", autouse=True)
def _chromium_present():
    from invoicing.adapters.chromium import chromium_available

    if not chromium_available():
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing: run `make chromium`")
        pytest.skip("Chromium is missing: run `make chromium`")


def sqs_event(messages):
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "0",
                    "SenderId": "x",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:local-RenderQueue",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def receive_jobs(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    return sqs.receive_message(QueueUrl=aws.render_queue_url, MaxNumberOfMessages=10).get("Messages", [])


@pytest.fixture
def worker(aws):
    return load_function("render_pdf").handle_render_jobs


@pytest.fixture
def open_invoice(api, customer):
    lines = [
        {"description": f"Hosting plan <b>#{i}</b>", "quantity": "2", "unit_amount_cents": 1250 * i}
        for i in range(1, 4)
    ]
    _, draft, _ = api("POST", "/invoices", {"customer_id": customer["id"], "lines": lines, "memo": "Thank you"})
    status, inv, _ = api("POST", f"/invoices/{draft['id']}/finalize")
    assert status == 200
    return inv


def test_finalize_enqueues_and_the_worker_renders_to_s3(api, aws, worker, open_invoice):
    # Given a finalized invoice, Then exactly one render job waits on the queue
    jobs = receive_jobs(aws)
    assert [json.loads(j["Body"])["invoice_id"] for j in jobs] == [open_invoice["id"]]
    status, body, _ = api("GET", f"/invoices/{open_invoice['id']}/pdf")
    assert status == 409 and body["error"]["code"] == "pdf_not_ready"
    # When the worker runs the batch
    result = worker(sqs_event(jobs), LambdaContext("RenderPdfFunction", 60))
    assert result == {"batchItemFailures": []}
    # Then the PDF is in S3 at the documented key, encrypted, typed, named
    key = f"invoices/{open_invoice['customer_id']}/{open_invoice['invoice_number']}.pdf"
    obj = boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=key)
    assert obj["ContentType"] == "application/pdf"
    assert obj["ServerSideEncryption"] == "AES256"
    assert open_invoice["invoice_number"] in obj["ContentDisposition"]
    pdf = obj["Body"].read()
    assert pdf.startswith(b"%PDF")
    import io

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert open_invoice["invoice_number"] in text and "Acme GmbH" in text
    assert "Hosting plan <b>#3</b>" in text  # escaped, printed as text
    assert "$150.00" in text  # total formatted for USD
    # And the invoice records it, with an audit event
    _, inv, _ = api("GET", f"/invoices/{open_invoice['id']}")
    assert inv["pdf_status"] == "rendered"
    status, link, _ = api("GET", f"/invoices/{open_invoice['id']}/pdf")
    assert status == 200 and key in link["url"] and link["expires_at"] > inv["finalized_at"]
    _, events, _ = api("GET", f"/invoices/{open_invoice['id']}/events")
    assert [e["type"] for e in events["data"]].count("invoice.pdf_rendered") == 1


def test_redelivered_job_is_harmless(api, aws, worker, open_invoice):
    jobs = receive_jobs(aws)
    event = sqs_event(jobs)
    worker(event, LambdaContext("RenderPdfFunction", 60))
    second = worker(event, LambdaContext("RenderPdfFunction", 60))
    assert second == {"batchItemFailures": []}
    _, events, _ = api("GET", f"/invoices/{open_invoice['id']}/events")
    assert [e["type"] for e in events["data"]].count("invoice.pdf_rendered") == 1
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=aws.bucket_name)["Contents"]]
    assert keys == [f"invoices/{open_invoice['customer_id']}/{open_invoice['invoice_number']}.pdf"]


def test_failed_s3_put_fails_only_that_record(api, aws, worker, open_invoice, customer, monkeypatch):
    from invoicing.root import get_services

    _, other, _ = api(
        "POST",
        "/invoices",
        {"customer_id": customer["id"], "lines": [{"description": "Other", "quantity": 1, "unit_amount_cents": 500}]},
    )
    api("POST", f"/invoices/{other['id']}/finalize")
    jobs = receive_jobs(aws)
    assert len(jobs) == 2
    store = get_services().documents
    real_put = store.put_pdf

    def flaky_put(key, body, filename):
        if open_invoice["invoice_number"] in filename and open_invoice["customer_id"] in key:
            raise RuntimeError("S3 is down")
        return real_put(key, body, filename)

    monkeypatch.setattr(store, "put_pdf", flaky_put)
    result = worker(sqs_event(jobs), LambdaContext("RenderPdfFunction", 60))
    failed_id = next(j["MessageId"] for j in jobs if json.loads(j["Body"])["invoice_id"] == open_invoice["id"])
    assert result == {"batchItemFailures": [{"itemIdentifier": failed_id}]}
    _, inv, _ = api("GET", f"/invoices/{open_invoice['id']}")
    assert inv["pdf_status"] == "pending"
    _, ok, _ = api("GET", f"/invoices/{other['id']}")
    assert ok["pdf_status"] == "rendered"


def test_drafts_have_no_pdf(api, customer):
    _, draft, _ = api("POST", "/invoices", {"customer_id": customer["id"]})
    for method in ("GET", "POST"):
        status, body, _ = api(method, f"/invoices/{draft['id']}/pdf")
        assert status == 404, (method, body)


def test_rerender_on_request_and_void_prints_void(api, aws, worker, open_invoice):
    worker(sqs_event(receive_jobs(aws)), LambdaContext("RenderPdfFunction", 60))
    api("POST", f"/invoices/{open_invoice['id']}/void")
    status, body, _ = api("POST", f"/invoices/{open_invoice['id']}/pdf")
    assert status == 202 and body["pdf_status"] == "rendered"  # the old PDF stays downloadable meanwhile
    worker(sqs_event(receive_jobs(aws)), LambdaContext("RenderPdfFunction", 60))
    key = f"invoices/{open_invoice['customer_id']}/{open_invoice['invoice_number']}.pdf"
    import io

    pdf = boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=key)["Body"].read()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "VOID" in text


def test_lost_enqueue_is_repaired(api, aws, customer, monkeypatch):
    from invoicing import clock
    from invoicing.root import get_services

    queue = get_services().render_queue
    monkeypatch.setattr(queue, "send", lambda body: (_ for _ in ()).throw(RuntimeError("SQS down")))
    _, draft, _ = api(
        "POST",
        "/invoices",
        {"customer_id": customer["id"], "lines": [{"description": "X", "quantity": 1, "unit_amount_cents": 100}]},
    )
    status, inv, _ = api("POST", f"/invoices/{draft['id']}/finalize")
    assert status == 200 and inv["pdf_status"] == "pending"  # finalize succeeded all the same
    assert receive_jobs(aws) == []
    monkeypatch.undo()
    repair = load_function("repair_pdfs").handle_repair_pdfs
    # not yet: younger than the grace period
    assert repair({}, LambdaContext("RepairPdfsFunction")) == {"requeued": 0}
    later = clock.now().timestamp() + 3600
    monkeypatch.setattr(clock, "now", lambda: __import__("datetime").datetime.fromtimestamp(later, clock.UTC))
    assert repair({}, LambdaContext("RepairPdfsFunction")) == {"requeued": 1}
    assert [json.loads(j["Body"])["invoice_id"] for j in receive_jobs(aws)] == [draft["id"]]
    _ = uuid


def test_lost_credit_note_enqueue_is_repaired(api, aws, customer, monkeypatch):
    from datetime import datetime

    from invoicing import clock
    from invoicing.root import get_services

    # Given an open invoice whose own render job went out
    _, draft, _ = api(
        "POST",
        "/invoices",
        {"customer_id": customer["id"], "lines": [{"description": "X", "quantity": 1, "unit_amount_cents": 5000}]},
    )
    assert api("POST", f"/invoices/{draft['id']}/finalize")[0] == 200
    invoice_job = receive_jobs(aws)[0]
    boto3.client("sqs", region_name="us-east-1").delete_message(
        QueueUrl=aws.render_queue_url, ReceiptHandle=invoice_job["ReceiptHandle"]
    )
    svc = get_services()
    # When a credit note is issued while SQS refuses its render job
    monkeypatch.setattr(svc.render_queue, "send", lambda body: (_ for _ in ()).throw(RuntimeError("SQS down")))
    status, note, _ = api(
        "POST",
        f"/invoices/{draft['id']}/credit-notes",
        {"amount_cents": 1000, "reason": "other", "method": "out_of_band"},
    )
    assert status == 201 and note["pdf_status"] == "pending"
    monkeypatch.undo()
    # Then the repair job re-enqueues it once it is older than the grace period
    repair = load_function("repair_pdfs").handle_repair_pdfs
    later = datetime.fromtimestamp(clock.now().timestamp() + 3600, clock.UTC)
    monkeypatch.setattr(clock, "now", lambda: later)
    requeued = repair({}, LambdaContext("RepairPdfsFunction"))["requeued"]
    jobs = [json.loads(j["Body"]) for j in receive_jobs(aws)]
    assert {"kind": "credit_note_pdf", "credit_note_id": note["id"]}.items() <= next(
        j for j in jobs if "credit_note_id" in j
    ).items()
    assert requeued == len(jobs) >= 1
    # and once rendered, the note leaves the pending index: nothing more to repair for it
    stored = svc.credit_note_store.get(note["id"])
    with svc.uow() as tx:
        tx.credit_note_pdf_rendered(
            stored, key=f"credit-notes/{customer['id']}/x.pdf", job_id="job_test", at=clock.iso(later)
        )
    assert svc.credit_note_store.get_pending_pdf(draft["id"], note["id"]) is None
    assert all(p.credit_note_id != note["id"] for p in svc.repo.pending_pdfs(clock.iso(later)))


@pytest.mark.parametrize(("einvoice_format", "facturx"), [("cii", True), ("xrechnung", True), ("ubl", False)])
def test_an_einvoice_customer_s_xml_is_stored_beside_the_pdf_which_becomes_factur_x(
    api, aws, worker, german_seller, einvoice_format, facturx
):
    """Issue #19: invoices/{customer_id}/{number}.xml in the customer's format; for cii and xrechnung
    customers the PDF is Factur-X with the CII inside, valid by the official EN 16931 rules."""
    import io

    from facturx import get_xml_from_pdf

    from tests.support.builders import GERMAN_BUYER, create_customer, create_draft, create_tax_rate, set_exchange_rate
    from tests.support.einvoice_validation import assert_valid

    set_exchange_rate(api, "EUR", "1.08")
    buyer = create_customer(api, **{**GERMAN_BUYER, "einvoice_format": einvoice_format})
    rate = create_tax_rate(api, "19")
    line = {"description": "Beratung", "quantity": "4", "unit_amount_cents": 9500, "unit_code": "HUR"}
    draft = create_draft(api, buyer, {**line, "tax_rate_id": rate["id"]})
    status, invoice, _ = api("POST", f"/invoices/{draft['id']}/finalize")
    assert status == 200, invoice

    assert worker(sqs_event(receive_jobs(aws)), LambdaContext("RenderPdfFunction", 60)) == {"batchItemFailures": []}

    s3 = boto3.client("s3")
    base = f"invoices/{invoice['customer_id']}/{invoice['invoice_number']}"
    stored = s3.get_object(Bucket=aws.bucket_name, Key=f"{base}.xml")
    assert stored["ContentType"] == "application/xml" and stored["ServerSideEncryption"] == "AES256"
    xml = stored["Body"].read()
    _, served, _ = api("GET", f"/invoices/{invoice['id']}/einvoice", query={"format": einvoice_format})
    assert xml.decode() == served  # one source: the stored XML is the one the API serves
    pdf = s3.get_object(Bucket=aws.bucket_name, Key=f"{base}.pdf")["Body"].read()
    filename, embedded = get_xml_from_pdf(pdf, check_xsd=False)
    if not facturx:
        assert not embedded  # a Peppol buyer's PDF stays a plain copy
        return
    assert filename == "factur-x.xml"
    assert invoice["invoice_number"].encode() in embedded
    assert_valid(embedded, "cii")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert invoice["invoice_number"] in text  # still the same printed invoice


@pytest.mark.parametrize(("content_type", "printed"), [("image/png", True), ("text/html", False)])
def test_the_sellers_logo_from_s3_is_printed_and_a_refused_one_is_left_out(
    api, aws, worker, open_invoice, monkeypatch, content_type, printed
):
    from invoicing import root
    from tests.unit.test_logo import tiny_png

    # Given the seller's logo in the documents bucket, named by the SellerLogoKey parameter
    boto3.client("s3").put_object(
        Bucket=aws.bucket_name, Key="branding/logo.png", Body=tiny_png(), ContentType=content_type
    )
    monkeypatch.setenv("SELLER_LOGO_KEY", "branding/logo.png")
    root.reset()
    # When the worker renders the invoice
    assert worker(sqs_event(receive_jobs(aws)), LambdaContext("RenderPdfFunction", 60)) == {"batchItemFailures": []}
    # Then the PDF holds the PNG as an image, or (stored as HTML: refused) prints without one
    key = f"invoices/{open_invoice['customer_id']}/{open_invoice['invoice_number']}.pdf"
    import io

    reader = PdfReader(io.BytesIO(boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=key)["Body"].read()))
    images = [image for page in reader.pages for image in page.images]
    assert len(images) == (1 if printed else 0)
    assert open_invoice["invoice_number"] in reader.pages[0].extract_text()
