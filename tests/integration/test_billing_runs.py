"""Bulk billing runs over moto: POST /billing-runs -> the FIFO queue -> the worker -> counts and results."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from tests.integration.conftest import LambdaContext, load_function
from tests.support.billing_runs import drain, run_draft
from tests.support.builders import create_customer


@pytest.fixture
def worker(aws):  # type: ignore[no-untyped-def]
    return load_function("billing_run_worker")


@pytest.fixture
def starter(aws):  # type: ignore[no-untyped-def]
    return load_function("api", "starter")


def _queue_url() -> str:
    import os

    return os.environ["BILLING_RUN_QUEUE_URL"]


def _start_queue_url() -> str:
    import os

    return os.environ["BILLING_RUN_START_QUEUE_URL"]


def _results(api: Any, run_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    start = 0
    while True:
        status, page, _ = api(
            "GET", f"/billing-runs/{run_id}/results", query={"starting_at": str(start), "limit": "20"}
        )
        assert status == 200, page
        out += page["data"]
        if not page["has_more"]:
            return out
        start = page["next_starting_at"]


def test_a_run_of_50_over_5_customers_with_2_bad_drafts_and_1_duplicate(api, worker) -> None:
    # Given 5 customers and 50 drafts: 10 each, one of them repeats another's subscription and period,
    # and 2 drafts that only the worker can refuse (an unknown customer, an unknown tax rate)
    customers = [create_customer(api, name=f"Customer {i}", email=f"c{i}@example.test") for i in range(5)]
    drafts = [run_draft(c["id"], f"sub_{c['id']}_{k}", amount_cents=1000 + k) for c in customers for k in range(10)]
    drafts[47] = dict(drafts[3])  # a duplicate of draft 3 (same customer, subscription and period)
    drafts[10] = run_draft("cus_missing", "sub_x")
    drafts[20] = run_draft(
        customers[2]["id"],
        "sub_taxed",
        lines=[{"description": "Taxed", "quantity": "1", "unit_amount_cents": 500, "tax_rate_id": "txr_missing"}],
    )
    # When the run is submitted with finalize and the queue drained
    status, run, _ = api("POST", "/billing-runs", {"invoices": drafts, "finalize": True})
    assert status == 202, run
    assert run["status"] == "queued" and run["counts"]["total"] == 50 and run["counts"]["queued"] == 50
    drain(worker, _queue_url(), LambdaContext("BillingRunWorkerFunction", 60))

    # Then the counts match the table
    status, done, _ = api("GET", f"/billing-runs/{run['id']}")
    assert status == 200, done
    counts = done["counts"]
    assert done["status"] == "completed_with_failures"
    assert counts["processed"] == 50
    assert counts["created"] == 47 and counts["finalized"] == 47
    assert counts["skipped_duplicates"] == 1 and counts["failed"] == 2
    assert sorted((f["index"], f["code"]) for f in done["failures"]) == [
        (10, "customer_not_found"),
        (20, "tax_rate_not_found"),
    ]
    results = _results(api, run["id"])
    assert [r["index"] for r in results] == list(range(50))
    by_outcome = defaultdict(list)
    for r in results:
        by_outcome[r["outcome"]].append(r)
    assert len(by_outcome["finalized"]) == 47
    assert by_outcome["skipped_duplicate"][0]["invoice_id"] == results[3]["invoice_id"]
    # every finalized invoice is in the table, open, with the number the results say
    numbers: dict[str, list[str]] = defaultdict(list)
    for r in by_outcome["finalized"]:
        status, invoice, _ = api("GET", f"/invoices/{r['invoice_id']}")
        assert status == 200 and invoice["status"] == "open"
        assert invoice["invoice_number"] == r["number"]
        numbers[invoice["customer_id"]].append(invoice["invoice_number"])
    for customer in customers:
        status, page, _ = api("GET", "/invoices", query={"customer_id": customer["id"], "limit": "100"})
        assert len(page["data"]) == len(numbers[customer["id"]])
    # and each customer's numbers are gap-free, from 1, in the order of the run
    for customer_numbers in numbers.values():
        seq = [int(n.rsplit("-", 1)[1]) for n in customer_numbers]
        assert seq == list(range(1, len(seq) + 1))

    # When the same run is submitted again, it creates nothing
    status, again, _ = api("POST", "/billing-runs", {"invoices": drafts, "finalize": True})
    assert status == 202
    drain(worker, _queue_url(), LambdaContext("BillingRunWorkerFunction", 60))
    status, second, _ = api("GET", f"/billing-runs/{again['id']}")
    assert second["counts"]["created"] == 0 and second["counts"]["finalized"] == 0
    assert second["counts"]["skipped_duplicates"] == 48 and second["counts"]["failed"] == 2
    status, page, _ = api("GET", "/invoices", query={"customer_id": customers[0]["id"], "limit": "100"})
    assert len(page["data"]) == 10


def test_a_redelivered_batch_counts_nothing_twice(api, worker) -> None:
    # Given a run whose batch was processed
    customer = create_customer(api, name="Acme", email="billing@acme.test")
    drafts = [run_draft(customer["id"], f"sub_{k}") for k in range(3)]
    status, run, _ = api("POST", "/billing-runs", {"invoices": drafts, "finalize": False})
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=_queue_url(), MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    from local.sqs import sqs_record

    event = {"Records": [sqs_record(m, "arn:aws:sqs:us-east-1:123456789012:q.fifo", "us-east-1") for m in messages]}
    context = LambdaContext("BillingRunWorkerFunction", 60)
    # When SQS delivers the same batch twice
    assert worker.handle_billing_run_jobs(event, context) == {"batchItemFailures": []}
    assert worker.handle_billing_run_jobs(event, context) == {"batchItemFailures": []}
    # Then each draft is counted once, as created by this run
    status, done, _ = api("GET", f"/billing-runs/{run['id']}")
    assert done["counts"] | {} == {
        "total": 3,
        "queued": 3,
        "processed": 3,
        "created": 3,
        "finalized": 0,
        "skipped_duplicates": 0,
        "failed": 0,
    }
    assert done["status"] == "completed"


def test_a_bad_draft_refuses_the_whole_run_naming_its_index(api) -> None:
    customer = create_customer(api, name="Acme", email="billing@acme.test")
    drafts = [run_draft(customer["id"], f"sub_{k}") for k in range(4)]
    drafts[1] = {k: v for k, v in drafts[1].items() if k != "period_end"}
    drafts[3]["lines"][0]["quantity"] = "abc"
    status, body, _ = api("POST", "/billing-runs", {"invoices": drafts})
    assert status == 422, body
    assert body["error"]["code"] == "validation_error"
    assert "invoices.1" in body["error"]["message"]
    status, runs, _ = api("GET", "/billing-runs")
    assert runs["data"] == []


def test_submitting_needs_the_billing_runs_scope(api) -> None:
    customer = create_customer(api, name="Acme", email="billing@acme.test")
    body = {"invoices": [run_draft(customer["id"], "sub_1")]}
    status, error, _ = api("POST", "/billing-runs", body, scopes="invoices:read invoices:write")
    assert status == 403 and error["error"]["code"] == "insufficient_scope"


def test_an_uploaded_run_streams_its_lines_and_bad_lines_become_failures(api, worker, starter) -> None:
    import json
    from urllib.parse import urlparse

    import boto3

    customer = create_customer(api, name="Acme", email="billing@acme.test")
    status, run, _ = api("POST", "/billing-runs/uploads", {"finalize": True})
    assert status == 201, run
    assert run["status"] == "awaiting_upload" and run["upload_url"]
    status, error, _ = api("POST", f"/billing-runs/{run['id']}/start")
    assert status == 409 and error["error"]["code"] == "billing_run_upload_missing"
    lines = [json.dumps(run_draft(customer["id"], f"sub_{k}")) for k in range(5)]
    lines.insert(2, "{not json")
    lines.insert(4, json.dumps({"customer_id": customer["id"]}))  # no subscription or period
    # the pre-signed URL names the bucket and key (moto in-process: put with the client instead of HTTP)
    path = urlparse(run["upload_url"]).path.lstrip("/")
    bucket, key = path.split("/", 1)
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())
    status, started, _ = api("POST", f"/billing-runs/{run['id']}/start")
    assert status == 202, started
    # the request only starts it: the starter function reads the lines, from the start queue
    assert started["status"] == "starting" and started["counts"]["total"] == 0
    assert (
        drain(
            starter,
            _start_queue_url(),
            LambdaContext("BillingRunStarterFunction", 900),
            handler="handle_billing_run_starts",
        )
        == 1
    )
    status, read, _ = api("GET", f"/billing-runs/{run['id']}")
    assert read["status"] == "running", read
    assert read["counts"]["total"] == 7 and read["counts"]["queued"] == 5 and read["counts"]["failed"] == 2
    drain(worker, _queue_url(), LambdaContext("BillingRunWorkerFunction", 60))
    status, done, _ = api("GET", f"/billing-runs/{run['id']}")
    assert done["status"] == "completed_with_failures"
    assert done["counts"]["finalized"] == 5 and done["counts"]["processed"] == 7
    assert [f["index"] for f in done["failures"]] == [2, 4]
    status, error, _ = api("POST", f"/billing-runs/{run['id']}/start")
    assert status == 409 and error["error"]["code"] == "billing_run_started"


def test_a_long_upload_is_read_over_several_starter_messages(api, starter, monkeypatch) -> None:
    import json
    from urllib.parse import urlparse

    import boto3

    # Given an upload of 21 drafts read in chunks of 10 lines (1,000 in production; moto's SQS slows
    # with the queue's depth), and a starter whose time is always short (30 s left, under the 60 s
    # margin), so each invocation reads one chunk and hands on to the next message
    from invoicing.use_cases import billing_runs

    monkeypatch.setattr(billing_runs, "READ_CHUNK_LINES", 10)
    customer = create_customer(api, name="Acme", email="billing@acme.test")
    status, run, _ = api("POST", "/billing-runs/uploads", {"finalize": False})
    path = urlparse(run["upload_url"]).path.lstrip("/")
    bucket, key = path.split("/", 1)
    lines = [json.dumps(run_draft(customer["id"], f"sub_{k}")) for k in range(21)]
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())
    status, started, _ = api("POST", f"/billing-runs/{run['id']}/start")
    assert status == 202 and started["status"] == "starting", started
    # When the start queue is drained
    short = LambdaContext("BillingRunStarterFunction", 30)
    assert drain(starter, _start_queue_url(), short, handler="handle_billing_run_starts") == 3
    # Then every line was queued once, and the run waits for the worker
    status, read, _ = api("GET", f"/billing-runs/{run['id']}")
    assert read["status"] == "queued", read
    assert read["counts"]["total"] == 21 and read["counts"]["queued"] == 21
    sqs = boto3.client("sqs", region_name="us-east-1")
    attributes = sqs.get_queue_attributes(QueueUrl=_queue_url(), AttributeNames=["ApproximateNumberOfMessages"])
    assert int(attributes["Attributes"]["ApproximateNumberOfMessages"]) == 21


def test_unknown_runs_are_404(api) -> None:
    assert api("GET", "/billing-runs/br_missing")[0] == 404
    assert api("GET", "/billing-runs/br_missing/results")[0] == 404


def test_a_billing_run_only_key_may_post_runs_and_nothing_else(aws) -> None:  # type: ignore[no-untyped-def]
    authorizer = load_function("authorizer")
    arn = "arn:aws:execute-api:us-east-1:123456789012:api1/local/POST/billing-runs"
    (statement,) = authorizer.build_policy(arn, ("billing_runs:write",))["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == [
        "arn:aws:execute-api:us-east-1:123456789012:api1/local/POST/billing-runs",
        "arn:aws:execute-api:us-east-1:123456789012:api1/local/POST/billing-runs/*",
    ]
