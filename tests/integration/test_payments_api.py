"""Recording payments and managing payment links through the admin API, against moto."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from invoicing.store import keys
from tests.conftest import ROOT
from tests.support import payments as support
from tests.support.builders import open_invoice

serialized_moto = support.serialized_moto  # fixture

LINE = {"description": "Consulting, November", "quantity": "1.5", "unit_amount_cents": 10000}  # 150.00


def pay(api, invoice_id, amount, method="bank_transfer", **extra):
    return api("POST", f"/invoices/{invoice_id}/payments", {"amount_cents": amount, "method": method, **extra})


def raw_header(aws, invoice_id):
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name)
    return table.get_item(Key={"pk": f"INVOICE#{invoice_id}", "sk": "INVOICE"}, ConsistentRead=True)["Item"]


class TestRecordPayment:
    def test_partial_payments_then_paid(self, api, aws, customer):
        # Given an open invoice of 150.00
        inv = open_invoice(api, customer)
        assert raw_header(aws, inv["id"])["due_pk"].startswith("DUE#")
        # When 50.00 is paid
        status, body, _ = pay(api, inv["id"], 5000, reference="SEPA 123")
        # Then the remainder falls and the invoice stays open
        assert status == 201, body
        assert body["payment"]["amount_cents"] == 5000 and body["payment"]["method"] == "bank_transfer"
        assert body["payment"]["reference"] == "SEPA 123" and body["payment"]["source"] == "api"
        assert body["invoice"]["status"] == "open" and body["invoice"]["paid_at"] is None
        assert (body["invoice"]["amount_paid_cents"], body["invoice"]["amount_remaining_cents"]) == (5000, 10000)
        # When the rest is paid
        status, body, _ = pay(api, inv["id"], 10000, method="card")
        # Then it is paid, with paid_at, off the due index and listed as paid
        assert status == 201, body
        paid = body["invoice"]
        assert paid["status"] == "paid" and paid["paid_at"] == body["payment"]["paid_at"]
        assert (paid["amount_paid_cents"], paid["amount_remaining_cents"]) == (15000, 0)
        item = raw_header(aws, inv["id"])
        assert "due_pk" not in item and "due_sk" not in item and item["gsi2pk"] == keys.status_pk("paid", inv["id"])
        _, page, _ = api("GET", "/invoices", query={"status": "paid"})
        assert inv["id"] in [i["id"] for i in page["data"]]
        _, page, _ = api("GET", "/invoices", query={"status": "open"})
        assert inv["id"] not in [i["id"] for i in page["data"]]

    def test_payments_are_listed_in_order(self, api, customer):
        inv = open_invoice(api, customer)
        ids = [pay(api, inv["id"], amount)[1]["payment"]["id"] for amount in (1000, 2000, 3000)]
        status, body, _ = api("GET", f"/invoices/{inv['id']}/payments")
        assert status == 200 and [p["id"] for p in body["data"]] == ids
        assert [p["amount_cents"] for p in body["data"]] == [1000, 2000, 3000]
        assert all(p["currency"] == "USD" and p["applied"] and p["actor"] == "api_key:tester" for p in body["data"])

    def test_audit_trail_shows_payments_and_the_status_change(self, api, customer):
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 5000)
        pay(api, inv["id"], 10000)
        _, body, _ = api("GET", f"/invoices/{inv['id']}/events")
        recorded = [e for e in body["data"] if e["type"] == "invoice.payment_recorded"]
        assert len(recorded) == 2
        first, last = recorded
        assert (first["from_status"], first["to_status"]) == (None, None)
        assert first["data"]["amount_cents"] == 5000 and first["data"]["amount_remaining_cents"] == 10000
        assert (last["from_status"], last["to_status"]) == ("open", "paid")
        assert last["actor"] == "api_key:tester" and last["request_id"]

    def test_overpayment_is_refused_and_nothing_changes(self, api, customer):
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 10000)
        status, body, _ = pay(api, inv["id"], 5001)
        assert status == 409 and body["error"]["code"] == "payment_exceeds_amount_due"
        _, after, _ = api("GET", f"/invoices/{inv['id']}")
        assert after["amount_remaining_cents"] == 5000 and after["status"] == "open"
        _, listed, _ = api("GET", f"/invoices/{inv['id']}/payments")
        assert len(listed["data"]) == 1

    def test_uncollectible_invoice_may_still_be_paid(self, api, customer):
        inv = open_invoice(api, customer)
        api("POST", f"/invoices/{inv['id']}/mark-uncollectible")
        status, body, _ = pay(api, inv["id"], 15000)
        assert status == 201 and body["invoice"]["status"] == "paid"
        _, events, _ = api("GET", f"/invoices/{inv['id']}/events")
        last = events["data"][-1]
        assert (last["type"], last["from_status"], last["to_status"]) == (
            "invoice.payment_recorded",
            "uncollectible",
            "paid",
        )

    def test_draft_void_and_paid_invoices_take_no_payment(self, api, customer):
        _, draft, _ = api("POST", "/invoices", {"customer_id": customer["id"], "lines": [LINE]})
        status, body, _ = pay(api, draft["id"], 100)
        assert status == 409 and body["error"]["code"] == "invoice_not_open"

        voided = open_invoice(api, customer)
        api("POST", f"/invoices/{voided['id']}/void")
        status, body, _ = pay(api, voided["id"], 100)
        assert status == 409 and body["error"]["code"] == "invalid_transition"

        paid = open_invoice(api, customer)
        pay(api, paid["id"], 15000)
        status, body, _ = pay(api, paid["id"], 1)
        assert status == 409 and body["error"]["code"] == "invalid_transition"

    def test_paid_invoice_cannot_be_voided(self, api, customer):
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 15000)
        status, body, _ = api("POST", f"/invoices/{inv['id']}/void")
        assert status == 409 and body["error"]["code"] == "invalid_transition"

    def test_paid_at_is_kept_and_must_not_be_in_the_future(self, api, customer):
        inv = open_invoice(api, customer)
        status, body, _ = pay(api, inv["id"], 100, paid_at="2026-01-05T09:30:00+01:00")
        assert status == 201 and body["payment"]["paid_at"] == "2026-01-05T08:30:00.000Z"
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        status, body, _ = pay(api, inv["id"], 100, paid_at=future)
        assert status == 422 and body["error"]["details"][0]["field"] == "paid_at"
        status, body, _ = pay(api, inv["id"], 100, paid_at="2026-01-05T09:30:00")  # no zone
        assert status == 422 and "paid_at" in body["error"]["message"]

    @pytest.mark.parametrize(
        "body,field",
        [
            ({"amount_cents": 0, "method": "cash"}, "amount_cents"),
            ({"amount_cents": -5, "method": "cash"}, "amount_cents"),
            ({"amount_cents": 1.5, "method": "cash"}, "amount_cents"),
            ({"amount_cents": "100", "method": "cash"}, "amount_cents"),
            ({"amount_cents": 100, "method": "cheque"}, "method"),
            ({"amount_cents": 100}, "method"),
            ({"amount_cents": 100, "method": "cash", "reference": "x" * 201}, "reference"),
            ({"amount_cents": 100, "method": "cash", "extra": 1}, "extra"),
        ],
    )
    def test_invalid_bodies_get_422_naming_the_field(self, api, customer, body, field):
        inv = open_invoice(api, customer)
        status, err, _ = api("POST", f"/invoices/{inv['id']}/payments", body)
        assert status == 422, err
        assert field in [d["field"] for d in err["error"].get("details") or []] or field in err["error"]["message"]

    def test_a_retried_request_with_the_same_idempotency_key_pays_once(self, api, customer):
        inv = open_invoice(api, customer)
        body = {"amount_cents": 5000, "method": "bank_transfer", "reference": "SEPA 42"}
        headers = {"Idempotency-Key": "sepa-42"}
        s1, first, _ = api("POST", f"/invoices/{inv['id']}/payments", body, headers=headers)
        s2, second, h2 = api("POST", f"/invoices/{inv['id']}/payments", body, headers=headers)
        assert s1 == s2 == 201 and first == second and h2.get("Idempotent-Replayed") == "true"
        _, listed, _ = api("GET", f"/invoices/{inv['id']}/payments")
        assert len(listed["data"]) == 1

    def test_unknown_invoice_is_404(self, api):
        assert pay(api, "in_nope", 100)[0] == 404
        assert api("GET", "/invoices/in_nope/payments")[0] == 404

    def test_concurrent_payments_never_overpay(self, services, customer, api, serialized_moto):
        # Given 150.00 due, When 10 clients pay 30.00 each at the same time
        from invoicing.domain.events import Actor
        from invoicing.domain.payments import PaymentMethod
        from invoicing.use_cases import payments as uc

        inv = open_invoice(api, customer)
        results: list[str] = []

        def one() -> None:
            try:
                uc.record_payment(
                    services, Actor("api_key:t"), inv["id"], uc.RecordPayment(3000, PaymentMethod.BANK_TRANSFER)
                )
                results.append("ok")
            except Exception as exc:
                results.append(getattr(exc, "code", type(exc).__name__))

        threads = [threading.Thread(target=one) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Then exactly five succeed, the rest are refused, and the invoice is exactly paid
        assert results.count("ok") == 5, results
        assert set(results) - {"ok"} <= {"invalid_transition", "payment_exceeds_amount_due", "concurrent_modification"}
        _, after, _ = api("GET", f"/invoices/{inv['id']}")
        assert after["status"] == "paid" and after["amount_remaining_cents"] == 0
        _, listed, _ = api("GET", f"/invoices/{inv['id']}/payments")
        assert sum(p["amount_cents"] for p in listed["data"]) == 15000


class TestPaymentLinks:
    def test_finalize_returns_the_url_once(self, api, aws, customer):
        inv = open_invoice(api, customer)
        url = inv["payment_url"]
        assert url.startswith("https://pay.example.test/pay/")
        token = url.rsplit("/", 1)[1]
        assert len(token) >= 43
        _, again, _ = api("GET", f"/invoices/{inv['id']}")
        assert again["payment_url"] is None
        # only the hash is stored, anywhere in the table
        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=aws.table_name)["Items"]
        assert token not in json.dumps(items)
        links = [i for i in items if i["sk"]["S"].startswith("PAYLINK#")]
        assert len(links) == 1 and links[0]["gsi1pk"]["S"].startswith("PAYTOKEN#")
        assert links[0]["gsi1sk"]["S"] == "PAYLINK"

    def test_link_expires_ttl_days_after_the_due_date(self, api, customer):
        inv = open_invoice(api, customer, due_date=(datetime.now(UTC).date() + timedelta(days=10)).isoformat())
        status, link, headers = api("POST", f"/invoices/{inv['id']}/payment-link")
        assert status == 201 and headers.get("Cache-Control") == "no-store"
        due = datetime.fromisoformat(inv["due_date"]).date()
        assert link["expires_at"] == f"{(due + timedelta(days=30)).isoformat()}T23:59:59.999Z"

    def test_reissue_revokes_the_old_link(self, api, customer):
        inv = open_invoice(api, customer)
        status, first, _ = api("POST", f"/invoices/{inv['id']}/payment-link")
        assert status == 201 and first["url"] != inv["payment_url"]
        status, second, _ = api("POST", f"/invoices/{inv['id']}/payment-link")
        assert status == 201 and second["url"] not in (first["url"], inv["payment_url"])
        _, events, _ = api("GET", f"/invoices/{inv['id']}/events")
        issued = [e for e in events["data"] if e["type"] == "invoice.payment_link_issued"]
        assert len(issued) == 2 and issued[1]["data"]["revoked_link_ids"] == [first["link_id"]]
        assert all(first["url"].rsplit("/", 1)[1] not in json.dumps(e) for e in events["data"])

    def test_revoke(self, api, customer):
        inv = open_invoice(api, customer)
        status, body, _ = api("DELETE", f"/invoices/{inv['id']}/payment-link")
        assert status == 204 and body is None
        _, events, _ = api("GET", f"/invoices/{inv['id']}/events")
        assert events["data"][-1]["type"] == "invoice.payment_links_revoked"

    def test_links_only_for_invoices_that_take_payments(self, api, customer):
        _, draft, _ = api("POST", "/invoices", {"customer_id": customer["id"], "lines": [LINE]})
        status, body, _ = api("POST", f"/invoices/{draft['id']}/payment-link")
        assert status == 409 and body["error"]["code"] == "invoice_not_open"
        voided = open_invoice(api, customer)
        api("POST", f"/invoices/{voided['id']}/void")
        for method in ("POST", "DELETE"):
            status, body, _ = api(method, f"/invoices/{voided['id']}/payment-link")
            assert status == 409 and body["error"]["code"] == "invalid_transition"
        uncollectible = open_invoice(api, customer)
        api("POST", f"/invoices/{uncollectible['id']}/mark-uncollectible")
        assert api("POST", f"/invoices/{uncollectible['id']}/payment-link")[0] == 201
        assert api("POST", "/invoices/in_nope/payment-link")[0] == 404


def test_sample_event_is_a_valid_request(api, customer):
    # the sample event of events/ goes through the real handler (with its ids swapped for live ones)
    inv = open_invoice(api, customer)
    event = json.loads((ROOT / "events" / "api_record_payment.json").read_text())
    body = json.loads(event["body"])
    status, out, _ = api("POST", f"/invoices/{inv['id']}/payments", body)
    assert status == 201, out
    assert event["resource"] == "/invoices/{invoice_id}/payments" and event["httpMethod"] == "POST"
