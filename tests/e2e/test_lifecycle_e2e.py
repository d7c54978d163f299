"""End to end over HTTP against the stack `make dev` runs: API Gateway emulation, the real authorizer,
the API function, DynamoDB/S3/SQS in the serialized moto server, the SQS poller and Chromium."""

from __future__ import annotations

import time

import pytest
import requests

pytestmark = pytest.mark.e2e


@pytest.fixture
def http(local_stack):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {local_stack.api_key}"

    def call(method, path, body=None, **kw):
        response = session.request(method, local_stack.api_url + path, json=body, timeout=30, **kw)
        return response.status_code, (response.json() if response.content else None), response

    return call


def test_customer_draft_finalize_get_list_and_pdf(http, local_stack):
    # Given a customer and a draft with lines
    status, customer, _ = http(
        "POST", "/customers", {"name": "E2E GmbH", "email": "e2e@example.test", "currency": "EUR", "locale": "de_DE"}
    )
    assert status == 201, customer
    status, draft, _ = http(
        "POST",
        "/invoices",
        {
            "customer_id": customer["id"],
            "lines": [
                {"description": "Beratung", "quantity": "2.5", "unit_amount_cents": 12000},
                {"description": "Rabatt", "quantity": 1, "unit_amount_cents": -5000},
            ],
        },
    )
    assert status == 201 and draft["currency"] == "EUR" and draft["total_cents"] == 25000
    # When it is finalized (EUR needs a rate to USD first)
    status, body, _ = http("POST", f"/invoices/{draft['id']}/finalize")
    assert status == 409 and body["error"]["code"] == "exchange_rate_missing"
    status, _, _ = http(
        "PUT", "/exchange-rates/EUR", {"rate_to_usd": "1.08", "source": "test", "as_of": "2026-11-24T00:00:00Z"}
    )
    assert status == 200
    status, invoice, _ = http("POST", f"/invoices/{draft['id']}/finalize")
    assert status == 200, invoice
    assert invoice["invoice_number"].startswith("INV-") and invoice["usd_total_cents"] == 27000
    # Then get and list show it
    status, got, _ = http("GET", f"/invoices/{draft['id']}")
    assert status == 200 and got["status"] == "open" and len(got["lines"]) == 2
    status, page, _ = http("GET", "/invoices", params={"customer_id": customer["id"], "status": "open"})
    assert [i["id"] for i in page["data"]] == [draft["id"]]
    # And within seconds the SQS path has rendered the PDF
    deadline = time.monotonic() + 60
    while True:
        status, link, _ = http("GET", f"/invoices/{draft['id']}/pdf")
        if status == 200 or time.monotonic() > deadline:
            break
        assert status == 409 and link["error"]["code"] == "pdf_not_ready"
        time.sleep(0.5)
    assert status == 200, link
    pdf = requests.get(link["url"], timeout=30)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["Content-Type"] == "application/pdf"


def test_auth_is_enforced_as_in_the_template(local_stack):
    url = local_stack.api_url
    missing = requests.get(f"{url}/invoices?status=open", timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    wrong = requests.get(f"{url}/invoices?status=open", headers={"Authorization": "Bearer inv_nope"}, timeout=10)
    assert wrong.status_code == 401
    ok = requests.get(
        f"{url}/invoices?status=open", headers={"Authorization": f"Bearer {local_stack.api_key}"}, timeout=10
    )
    assert ok.status_code == 200
    docs = requests.get(f"{url}/openapi.json", timeout=10)
    assert docs.status_code == 200 and "/invoices/{invoice_id}/finalize" in docs.json()["paths"]
    unknown = requests.get(f"{url}/nope", timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "route_not_found"


def test_bad_input_gets_a_json_4xx(http):
    status, body, response = http("POST", "/invoices", data="{broken", headers={"Content-Type": "application/json"})
    assert status == 422 and body["error"]["code"] == "validation_error"
    assert response.headers["Content-Type"].startswith("application/json")
