"""Billing runs on the local stack over HTTP: POST /billing-runs -> the FIFO queue (grouped by
customer) -> the worker function -> GET /billing-runs/{id}; and an upload through the pre-signed PUT."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import pytest
import requests

from tests.support.billing_runs import run_draft

pytestmark = pytest.mark.e2e

CUSTOMERS = 4
PER_CUSTOMER = 10


def _call(stack: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    r = requests.request(method, f"{stack.api_url}{path}", json=body, headers=headers, timeout=60)
    return r.status_code, (r.json() if r.content else None)


def _wait_done(stack: Any, run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, run = _call(stack, "GET", f"/billing-runs/{run_id}")
        assert status == 200, run
        if run["status"] in ("completed", "completed_with_failures"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"billing run {run_id} did not complete: {run}")


def _customers(stack: Any, count: int) -> list[str]:
    ids = []
    for i in range(count):
        status, customer = _call(
            stack, "POST", "/customers", {"name": f"Run customer {i}", "email": f"r{i}@example.test"}
        )
        assert status == 201, customer
        ids.append(customer["id"])
    return ids


def test_a_run_of_40_finalizes_gap_free_per_customer_and_a_resubmit_creates_nothing(local_stack) -> None:
    # Given 4 customers and 40 drafts
    customers = _customers(local_stack, CUSTOMERS)
    drafts = [run_draft(c, f"sub_{c}_{k}") for c in customers for k in range(PER_CUSTOMER)]
    # When they are submitted as one finalizing run
    status, run = _call(local_stack, "POST", "/billing-runs", {"invoices": drafts, "finalize": True})
    assert status == 202, run
    done = _wait_done(local_stack, run["id"])
    # Then every draft was created and finalized once
    assert done["status"] == "completed", done
    assert done["counts"] | {} == {
        "total": 40,
        "queued": 40,
        "processed": 40,
        "created": 40,
        "finalized": 40,
        "skipped_duplicates": 0,
        "failed": 0,
    }
    status, page = _call(local_stack, "GET", f"/billing-runs/{run['id']}/results?limit=1000")
    numbers: dict[str, list[int]] = defaultdict(list)
    for result in page["data"]:
        assert result["outcome"] == "finalized"
        numbers[result["customer_id"]].append(int(result["number"].rsplit("-", 1)[1]))
    # with each customer's numbers 1..10 in the order of the run
    assert {c: numbers[c] for c in customers} == {c: list(range(1, PER_CUSTOMER + 1)) for c in customers}
    # When the same run is submitted again
    status, again = _call(local_stack, "POST", "/billing-runs", {"invoices": drafts, "finalize": True})
    second = _wait_done(local_stack, again["id"])
    # Then it creates nothing
    assert second["counts"]["skipped_duplicates"] == 40 and second["counts"]["created"] == 0
    status, listed = _call(local_stack, "GET", f"/invoices?customer_id={customers[0]}&limit=100")
    assert len(listed["data"]) == PER_CUSTOMER


def test_an_upload_goes_through_the_presigned_put(local_stack) -> None:
    # Given an upload URL and a JSONL of 5 drafts and one bad line
    (customer,) = _customers(local_stack, 1)
    status, run = _call(local_stack, "POST", "/billing-runs/uploads", {"finalize": False})
    assert status == 201, run
    lines = [json.dumps(run_draft(customer, f"up_{k}")) for k in range(5)] + ['{"customer_id": 5}']
    # When the client PUTs it to the pre-signed URL and starts the run
    put = requests.put(
        run["upload_url"], data="\n".join(lines).encode(), headers={"Content-Type": "application/x-ndjson"}, timeout=30
    )
    assert put.status_code == 200, put.text
    status, started = _call(local_stack, "POST", f"/billing-runs/{run['id']}/start")
    assert status == 202, started
    assert started["status"] == "starting"  # the starter function reads it, not the request
    done = _wait_done(local_stack, run["id"])
    # Then the 5 drafts exist and the bad line is a failure with its index
    assert done["counts"]["total"] == 6 and done["counts"]["queued"] == 5
    assert done["counts"]["created"] == 5 and done["counts"]["failed"] == 1
    assert [(f["index"], f["code"]) for f in done["failures"]] == [(5, "validation_error")]
