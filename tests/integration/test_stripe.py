"""Stripe without the network: the SDK's HTTP client is replaced by a local fake at the HTTP boundary,
and webhooks are signed the way Stripe signs them (t=..., v1=HMAC-SHA256(secret, "{t}.{payload}"))."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
import stripe

from tests.conftest import ROOT
from tests.integration.conftest import LambdaContext, load_function, rest_event
from tests.support import payments as support
from tests.support.payments import open_invoice, put_exchange_rate, token_of
from tests.support.stripe_events import WEBHOOK_SECRET, refund_event, session_event, sign

pay = support.pay
serialized_moto = support.serialized_moto
settings_env = support.settings_env

CHECKOUT_URL = "https://checkout.stripe.com/c/pay/cs_test_a1Fake#fidkdWxOYHwnPyd1blpxYHZxWjA0"


class FakeStripeHttp(stripe.HTTPClient):
    """Stripe at the SDK's HTTP boundary: answers with a canned Checkout Session or, on /v1/refunds,
    like Stripe's refunds (or with a canned error), and records every request.

    Refunds: `refunds.create` makes a refund in `refund_status` unless `refund_outcomes` holds the next
    instruction: ("error", http status, body) answers that error and makes nothing; ("lost", status)
    makes the refund but the connection drops before the answer (what a timeout looks like). A key
    seen before gets its first answer again, as Stripe's idempotency does. `refunds.list` lists the
    refunds of a payment intent, newest first, or fails with `list_fail_with`.
    """

    name = "fake"
    NO_RETRY = {"Request-Id": "req_fake_err", "stripe-should-retry": "false"}

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.fail_with: tuple[int, dict[str, Any]] | None = None
        self.refunds: list[dict[str, Any]] = []  # made at "Stripe"
        self.refund_status = "succeeded"
        self.refund_outcomes: list[tuple[Any, ...]] = []
        self.list_fail_with: tuple[int, dict[str, Any]] | None = None
        self.list_page_size = 100  # Stripe's largest page
        self.on_list: Any = None  # called before each refunds.list, outside the lock (to order races)
        self._answers: dict[str, tuple[str, int]] = {}  # idempotency key -> first answer
        self._created = 1_790_000_000
        self._lock = threading.Lock()

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        target = urlparse(url)
        params = {k: v[0] for k, v in parse_qs(post_data or target.query or "").items()}
        self.requests.append({"method": method, "url": url, "headers": dict(headers or {}), "params": params})
        if self.fail_with:
            status, body = self.fail_with
            return json.dumps(body), status, {"Request-Id": "req_fake_err"}
        if target.path == "/v1/refunds":
            if method == "get" and self.on_list is not None:
                self.on_list()
            with self._lock:
                return self._refunds(method, params, dict(headers or {}))
        session = {
            "id": "cs_test_a1Fake",
            "object": "checkout.session",
            "url": CHECKOUT_URL,
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": int(params.get("line_items[0][price_data][unit_amount]", 0)),
            "currency": params.get("line_items[0][price_data][currency]"),
            "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
        }
        return json.dumps(session), 200, {"Request-Id": "req_fake_1"}

    def _refunds(self, method, params, headers):
        if method == "get":
            if self.list_fail_with:
                status, body = self.list_fail_with
                return json.dumps(body), status, self.NO_RETRY
            data = [r for r in reversed(self.refunds) if r["payment_intent"] == params.get("payment_intent")]
            if "starting_after" in params:
                data = data[[r["id"] for r in data].index(params["starting_after"]) + 1 :]
            size = min(int(params.get("limit", 10)), self.list_page_size)
            page = {"object": "list", "url": "/v1/refunds", "has_more": len(data) > size, "data": data[:size]}
            return json.dumps(page), 200, {}
        key = headers["Idempotency-Key"]
        if key in self._answers:
            body, status = self._answers[key]
            return body, status, {"Request-Id": "req_fake_replay", "Idempotent-Replayed": "true"}
        outcome = self.refund_outcomes.pop(0) if self.refund_outcomes else ("made", self.refund_status)
        if outcome[0] == "error":
            _, status, error = outcome
            self._answers[key] = (json.dumps(error), status)
            return json.dumps(error), status, self.NO_RETRY
        self._created += 10
        refund = {
            "id": f"re_fake_{len(self.refunds) + 1}",
            "object": "refund",
            "amount": int(params["amount"]),
            "currency": "usd",
            "payment_intent": params["payment_intent"],
            "status": outcome[1],
            "created": self._created,
            "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
            "failure_reason": "expired_or_canceled_card" if outcome[1] == "failed" else None,
        }
        self.refunds.append(refund)
        self._answers[key] = (json.dumps(refund), 200)
        if outcome[0] == "lost":
            raise stripe.APIConnectionError("the connection dropped before Stripe's answer", should_retry=False)
        return json.dumps(refund), 200, {"Request-Id": "req_fake_refund"}

    def refund_calls(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if urlparse(r["url"]).path == "/v1/refunds" and r["method"] == "post"]

    def close(self):
        pass


@pytest.fixture
def stripe_http(settings_env):
    """PAYMENT_PROVIDER=stripe with test secrets; the SDK talks to FakeStripeHttp."""
    from invoicing.adapters.payments import build_payment_provider
    from invoicing.root import get_services

    settings_env(PAYMENT_PROVIDER="stripe", STRIPE_SECRET_KEY="sk_test_fake", STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    fake = FakeStripeHttp()
    svc = get_services()
    svc.adapters["payments"] = build_payment_provider(svc.settings, http_client=fake)
    return fake


def webhook(pay, payload: str, signature: str | None):
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    status, body, _ = pay("POST", "/webhooks/stripe", raw_body=payload, headers=headers, ip="3.18.12.63")
    return status, json.loads(body)


def start_checkout(pay, stripe_http, invoice):
    status, _, headers = pay("POST", token_of(invoice["payment_url"]), form={"amount_cents": "15000"})
    assert status == 303, status
    return stripe_http.requests[-1]["params"]


def table_items(aws):
    return boto3.client("dynamodb", region_name="us-east-1").scan(TableName=aws.table_name)["Items"]


def payments_of(api, invoice_id):
    status, body, _ = api("GET", f"/invoices/{invoice_id}/payments")
    assert status == 200
    return body["data"]


class TestCheckout:
    def test_pay_button_opens_a_checkout_session(self, api, customer, pay, stripe_http):
        # Given an open invoice and Stripe
        inv = open_invoice(api, customer)
        token = token_of(inv["payment_url"])
        status, html, headers = pay("GET", token)
        assert status == 200 and 'data-testid="pay-button"' in html
        assert "form-action 'self' https://checkout.stripe.com" in headers["Content-Security-Policy"]
        # When the Pay button is pressed
        status, body, headers = pay("POST", token, form={"amount_cents": "15000"})
        # Then the payer is sent to Stripe Checkout, and nothing is recorded yet
        assert status == 303 and headers["Location"] == CHECKOUT_URL and body == ""
        assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
        assert "https://checkout.stripe.com" in headers["Content-Security-Policy"]
        [request] = stripe_http.requests
        assert request["method"] == "post" and request["url"] == "https://api.stripe.com/v1/checkout/sessions"
        assert request["headers"]["Authorization"] == "Bearer sk_test_fake"
        assert request["headers"]["Idempotency-Key"].startswith("paylink-plink_")
        p = request["params"]
        assert p["mode"] == "payment"
        assert p["line_items[0][price_data][currency]"] == "usd"
        assert p["line_items[0][price_data][unit_amount]"] == "15000"
        assert p["line_items[0][price_data][product_data][name]"] == f"Invoice {inv['invoice_number']}"
        assert p["line_items[0][quantity]"] == "1"
        assert p["metadata[invoice_id]"] == inv["id"] and p["metadata[link_id]"].startswith("plink_")
        assert p["payment_intent_data[metadata][invoice_id]"] == inv["id"]
        assert p["client_reference_id"] == inv["id"] and p["customer_email"] == "billing@acme.test"
        assert p["success_url"] == f"https://pay.example.test/pay/{token}?checkout=success"
        assert p["cancel_url"] == f"https://pay.example.test/pay/{token}"
        _, after, _ = api("GET", f"/invoices/{inv['id']}")
        assert after["status"] == "open" and payments_of(api, inv["id"]) == []

    def test_a_reload_reuses_the_session(self, api, customer, pay, stripe_http):
        inv = open_invoice(api, customer)
        start_checkout(pay, stripe_http, inv)
        start_checkout(pay, stripe_http, inv)
        keys = {r["headers"]["Idempotency-Key"] for r in stripe_http.requests}
        assert len(keys) == 1  # Stripe answers a repeated key with the same session

    def test_zero_decimal_currency_goes_through_unscaled(self, api, pay, stripe_http):
        _, cust, _ = api("POST", "/customers", {"name": "Tanaka KK", "email": "ap@tanaka.test", "currency": "JPY"})
        put_exchange_rate(api, "JPY", "0.0067")
        inv = open_invoice(api, cust, line={"description": "Support", "quantity": "1", "unit_amount_cents": 15000})
        assert inv["total_cents"] == 15000  # ¥15,000
        params = start_checkout(pay, stripe_http, inv)
        assert params["line_items[0][price_data][currency]"] == "jpy"
        assert params["line_items[0][price_data][unit_amount]"] == "15000"

    def test_back_from_checkout_the_page_says_processing(self, api, customer, pay, stripe_http):
        inv = open_invoice(api, customer)
        status, html, _ = pay("GET", token_of(inv["payment_url"]), query={"checkout": "success"})
        assert status == 200 and "being confirmed" in html and 'data-testid="pay-button"' not in html

    def test_provider_failure_charges_nothing(self, api, customer, pay, stripe_http):
        stripe_http.fail_with = (400, {"error": {"type": "invalid_request_error", "message": "No such price"}})
        inv = open_invoice(api, customer)
        status, html, headers = pay("POST", token_of(inv["payment_url"]), form={"amount_cents": "15000"})
        assert status == 503 and "Nothing was charged" in html and "Location" not in headers
        assert pay("GET", token_of(inv["payment_url"]))[0] == 200  # the link still works


class TestWebhook:
    def test_completed_checkout_records_the_payment_and_uses_the_link(self, api, customer, pay, stripe_http):
        # Given a checkout started from the pay page
        inv = open_invoice(api, customer)
        params = start_checkout(pay, stripe_http, inv)
        payload = session_event(invoice_id=inv["id"], link_id=params["metadata[link_id]"])
        # When Stripe confirms it
        status, body = webhook(pay, payload, sign(payload))
        # Then the invoice is paid by card, and the link is used up
        assert status == 200 and body == {"received": True, "outcome": "recorded"}
        _, after, _ = api("GET", f"/invoices/{inv['id']}")
        assert after["status"] == "paid" and after["amount_remaining_cents"] == 0
        [payment] = payments_of(api, inv["id"])
        assert (payment["method"], payment["source"], payment["amount_cents"]) == ("card", "stripe", 15000)
        assert payment["provider_ref"] == "cs_test_a1Fake" and payment["reference"] == "pi_3Fake"
        assert payment["actor"] == "system:stripe_webhook"
        status, html, _ = pay("GET", token_of(inv["payment_url"]))
        assert status == 404 and "already paid" in html
        _, events, _ = api("GET", f"/invoices/{inv['id']}/events")
        assert (events["data"][-1]["type"], events["data"][-1]["to_status"]) == ("invoice.payment_recorded", "paid")

    def test_the_sdk_helper_signature_is_accepted_too(self, api, customer, pay, stripe_http):
        inv = open_invoice(api, customer)
        payload = session_event(invoice_id=inv["id"], link_id=None)
        header = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
        assert webhook(pay, payload, header) == (200, {"received": True, "outcome": "recorded"})

    def test_the_same_event_fifty_times_records_one_payment(self, api, customer, pay, stripe_http):
        inv = open_invoice(api, customer)
        params = start_checkout(pay, stripe_http, inv)
        payload = session_event(invoice_id=inv["id"], link_id=params["metadata[link_id]"])
        outcomes = [webhook(pay, payload, sign(payload))[1]["outcome"] for _ in range(50)]
        assert outcomes[0] == "recorded" and set(outcomes[1:]) == {"duplicate"}
        assert len(payments_of(api, inv["id"])) == 1
        _, events, _ = api("GET", f"/invoices/{inv['id']}/events")
        assert [e["type"] for e in events["data"]].count("invoice.payment_recorded") == 1

    def test_fifty_concurrent_deliveries_record_one_payment(self, api, customer, stripe_http, serialized_moto):
        from invoicing.root import get_services
        from invoicing.use_cases import payments as uc

        inv = open_invoice(api, customer)
        svc = get_services()
        payload = session_event(invoice_id=inv["id"], link_id=None)
        header = sign(payload)
        outcomes: list[str] = []
        barrier = threading.Barrier(50)

        def deliver() -> None:
            barrier.wait()
            try:
                outcomes.append(
                    uc.record_provider_payment(svc, svc.payment_provider().verify_webhook(payload, header)).status
                )
            except Exception as exc:  # a 5xx: Stripe would redeliver
                outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=deliver) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes.count("recorded") == 1, outcomes
        assert set(outcomes) <= {"recorded", "duplicate", "ConcurrentModification"}, outcomes
        assert len(payments_of(api, inv["id"])) == 1
        _, after, _ = api("GET", f"/invoices/{inv['id']}")
        assert after["amount_paid_cents"] == 15000

    @pytest.mark.parametrize("case", ["wrong_secret", "tampered", "missing", "stale", "garbage"])
    def test_a_bad_signature_is_a_400_and_nothing_is_written(self, api, aws, customer, pay, stripe_http, case):
        inv = open_invoice(api, customer)
        payload = session_event(invoice_id=inv["id"], link_id=None)
        signature = {
            "wrong_secret": sign(payload, secret="whsec_other"),
            "tampered": sign(payload.replace("15000", "1")),  # signed for another body
            "missing": None,
            "stale": sign(payload, timestamp=int(time.time()) - 3600),
            "garbage": "not-a-signature",
        }[case]
        before = table_items(aws)
        status, body = webhook(pay, payload, signature)
        assert status == 400 and body["error"]["code"] == "invalid_signature"
        after = [i for i in table_items(aws) if not i["pk"]["S"].startswith("RATELIMIT#")]
        assert sorted(map(json.dumps, after)) == sorted(
            json.dumps(i) for i in before if not i["pk"]["S"].startswith("RATELIMIT#")
        )

    def test_other_event_types_are_acknowledged_and_ignored(self, api, aws, customer, pay, stripe_http):
        inv = open_invoice(api, customer)
        before = len(table_items(aws))
        for type_ in ("payment_intent.succeeded", "checkout.session.expired", "charge.refunded"):
            payload = session_event(invoice_id=inv["id"], link_id=None, type_=type_)
            assert webhook(pay, payload, sign(payload)) == (200, {"received": True, "outcome": "ignored"})
        assert len(table_items(aws)) == before

    def test_delayed_methods_are_recorded_when_the_money_arrives(self, api, customer, pay, stripe_http):
        inv = open_invoice(api, customer)
        pending = session_event(invoice_id=inv["id"], link_id=None, payment_status="unpaid")
        assert webhook(pay, pending, sign(pending))[1]["outcome"] == "ignored"
        settled = session_event(
            invoice_id=inv["id"], link_id=None, type_="checkout.session.async_payment_succeeded", event_id="evt_2"
        )
        assert webhook(pay, settled, sign(settled))[1]["outcome"] == "recorded"
        assert len(payments_of(api, inv["id"])) == 1

    def test_money_for_an_invoice_voided_meanwhile_is_kept_unapplied(self, api, customer, pay, stripe_http):
        inv = open_invoice(api, customer)
        params = start_checkout(pay, stripe_http, inv)
        api("POST", f"/invoices/{inv['id']}/void")
        payload = session_event(invoice_id=inv["id"], link_id=params["metadata[link_id]"])
        assert webhook(pay, payload, sign(payload))[1]["outcome"] == "unapplied"
        assert webhook(pay, payload, sign(payload))[1]["outcome"] == "duplicate"
        _, after, _ = api("GET", f"/invoices/{inv['id']}")
        assert after["status"] == "void" and after["amount_paid_cents"] == 0
        [payment] = payments_of(api, inv["id"])
        assert payment["applied"] is False and payment["amount_cents"] == 15000
        _, events, _ = api("GET", f"/invoices/{inv['id']}/events")
        last = events["data"][-1]
        assert last["type"] == "invoice.payment_unapplied" and last["data"]["reason"] == "invalid_transition"

    def test_a_second_checkout_after_payment_is_unapplied_not_double_counted(self, api, customer, pay, stripe_http):
        inv = open_invoice(api, customer)
        first = session_event(invoice_id=inv["id"], link_id=None, session_id="cs_test_1", event_id="evt_a")
        second = session_event(invoice_id=inv["id"], link_id=None, session_id="cs_test_2", event_id="evt_b")
        assert webhook(pay, first, sign(first))[1]["outcome"] == "recorded"
        assert webhook(pay, second, sign(second))[1]["outcome"] == "unapplied"
        _, after, _ = api("GET", f"/invoices/{inv['id']}")
        assert after["amount_paid_cents"] == 15000

    def test_webhook_is_not_served_without_stripe(self, api, pay, settings_env):
        settings_env(PAYMENT_PROVIDER="manual")
        payload = json.dumps({"id": "evt_x", "type": "checkout.session.completed"})
        status, body = webhook(pay, payload, sign(payload))
        assert status == 404

    def test_a_body_that_is_not_utf8_is_a_400_not_a_500(self, aws, stripe_http):
        # Given bytes that are not UTF-8 (API Gateway hands them on base64-encoded) with a signature
        raw = b'{"id": "evt_1", "type": "checkout.session.completed", "x": "\xff"}'
        headers = {"Content-Type": "application/json", "Stripe-Signature": sign(raw.decode("latin-1"))}
        event = rest_event("POST", "/webhooks/stripe", headers=headers)
        event["resource"] = "/webhooks/stripe"
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
        before = table_items(aws)
        # When the webhook reads them
        response = load_function("pay").handle_pay_request(event, LambdaContext())
        # Then they are not what Stripe signed: the signature's 400 (a 500 would be retried for days)
        assert response["statusCode"] == 400, response
        assert json.loads(response["body"])["error"]["code"] == "invalid_signature"
        assert table_items(aws) == before

    def test_sample_event_is_rejected_for_its_placeholder_signature(self, aws, pay, stripe_http):
        from tests.integration.conftest import LambdaContext, load_function

        handler = load_function("pay")
        event = json.loads((ROOT / "events" / "pay_stripe_webhook.json").read_text())
        response = handler.handle_pay_request(event, LambdaContext("PayFunction", 10))
        assert response["statusCode"] == 400
        event["headers"]["Stripe-Signature"] = sign(event["body"])
        event["multiValueHeaders"]["Stripe-Signature"] = [event["headers"]["Stripe-Signature"]]
        response = handler.handle_pay_request(event, LambdaContext("PayFunction", 10))
        assert response["statusCode"] == 200 and json.loads(response["body"])["outcome"] == "ignored"  # no invoice


def test_secrets_are_read_from_ssm_parameter_store(aws, settings_env):
    from aws_lambda_powertools.utilities import parameters

    from invoicing.adapters.payments import build_payment_provider
    from invoicing.adapters.stripe_provider import StripeProvider
    from invoicing.root import get_services

    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/invoicing/stripe/secret-key", Value="sk_test_from_ssm", Type="SecureString")
    ssm.put_parameter(Name="/invoicing/stripe/webhook-secret", Value=WEBHOOK_SECRET, Type="SecureString")
    parameters.clear_caches()
    settings_env(
        PAYMENT_PROVIDER="stripe",
        STRIPE_SECRET_KEY_PARAM="/invoicing/stripe/secret-key",
        STRIPE_WEBHOOK_SECRET_PARAM="/invoicing/stripe/webhook-secret",
    )
    fake = FakeStripeHttp()
    provider = build_payment_provider(get_services().settings, http_client=fake)
    assert isinstance(provider, StripeProvider)
    payload = json.dumps({"id": "evt_x", "object": "event", "type": "charge.refunded", "data": {"object": {}}})
    assert provider.verify_webhook(payload, sign(payload)) is None  # verified with the SSM secret
    parameters.clear_caches()


# ---------------------------------------------------------------- refunds through Stripe
def stripe_paid_invoice(api, customer, pay) -> dict:
    """An invoice of 150.00 paid by a Stripe checkout (PaymentIntent pi_3Fake)."""
    inv = open_invoice(api, customer)
    payload = session_event(invoice_id=inv["id"], link_id=None)
    assert webhook(pay, payload, sign(payload))[1]["outcome"] == "recorded"
    return inv


def refund_note(api, invoice_id, amount=2500) -> dict:
    status, note, _ = api(
        "POST",
        f"/invoices/{invoice_id}/credit-notes",
        {"amount_cents": amount, "reason": "product_unsatisfactory", "method": "refund"},
    )
    assert status == 201, note
    return note


def retry(api, note, refund):
    return api("POST", f"/credit-notes/{note['id']}/refunds/{refund['id']}/retry")


def refund_of(api, note) -> dict:
    status, body, _ = api("GET", f"/credit-notes/{note['id']}")
    assert status == 200, body
    (refund,) = body["refunds"]
    return refund


def refund_events(api, invoice_id) -> list[dict]:
    _, events, _ = api("GET", f"/invoices/{invoice_id}/events")
    return [e for e in events["data"] if e["type"].startswith("invoice.refund_")]


def refund_webhook(pay, **fields) -> str:
    payload = refund_event(**fields)
    status, body = webhook(pay, payload, sign(payload))
    assert status == 200, body
    return body["outcome"]


STRIPE_DOWN = ("error", 500, {"error": {"type": "api_error", "message": "An unknown error occurred"}})


class TestStripeRefunds:
    def test_a_refund_goes_to_stripe_with_our_ids_in_its_metadata(self, api, customer, pay, stripe_http):
        inv = stripe_paid_invoice(api, customer, pay)
        # When 25.00 is credited as a refund
        note = refund_note(api, inv["id"])
        # Then Stripe refunded it once, under the refund's own key, with our ids to find it again
        (call,) = stripe_http.refund_calls()
        (refund,) = note["refunds"]
        p = call["params"]
        assert (p["payment_intent"], p["amount"]) == ("pi_3Fake", "2500")
        assert p["metadata[refund_id]"] == refund["id"] and p["metadata[invoice_id]"] == inv["id"]
        assert p["metadata[credit_note_id]"] == note["id"]
        assert call["headers"]["Idempotency-Key"] == f"refund-{refund['id']}"
        assert (refund["status"], refund["provider_ref"], refund["attempts"]) == ("succeeded", "re_fake_1", 1)
        # And the outcome is in the audit trail
        (event,) = refund_events(api, inv["id"])
        assert event["type"] == "invoice.refund_updated" and event["actor"] == "api_key:tester"
        assert event["data"]["previous_status"] == "pending" and event["data"]["status"] == "succeeded"
        assert event["data"]["attempt"] == 1 and event["data"]["provider_ref"] == "re_fake_1"

    def test_a_failed_refund_is_retried_under_a_new_key(self, api, customer, pay, stripe_http):
        # Given a refund Stripe could not take
        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_outcomes = [STRIPE_DOWN]
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        assert refund["status"] == "failed" and "api_error" in refund["failure"] and refund["provider_ref"] is None
        assert stripe_http.refunds == []
        # When finance retries it
        status, body, _ = retry(api, note, refund)
        # Then Stripe was asked first for earlier attempts, then refunded under attempt 2's own key
        assert status == 200, body
        listing, create = [r for r in stripe_http.requests if "/v1/refunds" in r["url"]][-2:]
        assert listing["method"] == "get" and listing["params"]["payment_intent"] == "pi_3Fake"
        assert create["method"] == "post" and create["headers"]["Idempotency-Key"] == f"refund-{refund['id']}-attempt-2"
        assert create["params"]["metadata[refund_id]"] == refund["id"]
        assert (body["status"], body["attempts"], body["provider_ref"], body["failure"]) == (
            "succeeded",
            2,
            "re_fake_1",
            None,
        )
        assert len(stripe_http.refunds) == 1
        assert refund_of(api, note) == body
        last = refund_events(api, inv["id"])[-1]
        assert last["type"] == "invoice.refund_retried" and last["data"]["attempt"] == 2
        assert (last["data"]["previous_status"], last["data"]["status"]) == ("failed", "succeeded")
        assert last["data"]["found_existing"] is False
        # And it is not retried again
        status, body, _ = retry(api, note, refund)
        assert status == 409 and body["error"]["code"] == "refund_not_retryable"
        assert len(stripe_http.refund_calls()) == 2

    def test_a_failed_then_retried_refund_publishes_refund_failed_then_refund_succeeded(
        self, api, customer, pay, pipeline, receiver, stripe_http
    ):
        # (the pipeline's local stage first: stripe_http puts its fake into the services then built)
        # Given an endpoint subscribed to refund outcomes, after the events before it went out
        inv = stripe_paid_invoice(api, customer, pay)
        pipeline.drain()
        status, endpoint, _ = api(
            "POST", "/webhook-endpoints", {"url": receiver.url, "events": ["refund.failed", "refund.succeeded"]}
        )
        assert status == 201, endpoint
        receiver.secrets = [endpoint["secret"]]
        # When Stripe cannot take the refund, and finance retries it
        stripe_http.refund_outcomes = [STRIPE_DOWN]
        note = refund_note(api, inv["id"])
        failed = refund_of(api, note)
        status, succeeded, _ = retry(api, note, note["refunds"][0])
        assert status == 200 and succeeded["status"] == "succeeded", succeeded
        pipeline.drain()
        # Then exactly one refund.failed and one refund.succeeded came, verified, in sequence order
        assert all(r.verified_with == [endpoint["secret"]] for r in receiver.received)
        events = sorted((json.loads(r.body) for r in receiver.received), key=lambda e: e["sequence"])
        assert [e["type"] for e in events] == ["refund.failed", "refund.succeeded"]
        assert events[0]["data"]["object"] == failed and failed["status"] == "failed"
        assert events[1]["data"]["object"] == succeeded == refund_of(api, note)
        # planned (1), failed (2), attempt 2 claimed (3), succeeded (4)
        assert [e["sequence"] for e in events] == [200, 400]

    def test_a_first_attempt_that_went_through_at_stripe_is_recorded_not_repeated(
        self, api, customer, pay, stripe_http
    ):
        # Given a refund Stripe made although the answer never reached us
        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_outcomes = [("lost", "succeeded")]
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        assert refund["status"] == "failed" and len(stripe_http.refunds) == 1
        # When finance retries it
        status, body, _ = retry(api, note, refund)
        # Then the refund Stripe made is recorded, and no second refund is asked for
        assert status == 200, body
        assert (body["status"], body["provider_ref"], body["attempts"]) == ("succeeded", "re_fake_1", 1)
        assert len(stripe_http.refund_calls()) == 1 and len(stripe_http.refunds) == 1
        last = refund_events(api, inv["id"])[-1]
        assert last["type"] == "invoice.refund_retried" and last["data"]["found_existing"] is True

    def test_earlier_attempts_are_looked_for_on_every_page(self, api, customer, pay, stripe_http):
        # Given a payment with refunds of other credit notes, and ours made at Stripe but unheard of
        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_outcomes = [("lost", "succeeded")]
        note = refund_note(api, inv["id"], amount=1000)
        for _ in range(3):
            refund_note(api, inv["id"], amount=1000)
        stripe_http.list_page_size = 1
        # When it is retried
        status, body, _ = retry(api, note, note["refunds"][0])
        # Then ours is found on the last page and not made again
        assert status == 200 and (body["status"], body["provider_ref"]) == ("succeeded", "re_fake_1"), body
        listings = [r for r in stripe_http.requests if r["method"] == "get"]
        assert len(listings) == 4 and listings[-1]["params"]["starting_after"] == "re_fake_2"
        assert len(stripe_http.refunds) == 4

    def test_an_attempt_still_in_flight_at_stripe_is_not_repeated(self, api, customer, pay, stripe_http):
        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_outcomes = [("lost", "pending")]
        note = refund_note(api, inv["id"])
        status, body, _ = retry(api, note, note["refunds"][0])
        assert status == 200 and (body["status"], body["provider_ref"]) == ("pending", "re_fake_1")
        assert len(stripe_http.refund_calls()) == 1
        status, body, _ = retry(api, note, note["refunds"][0])
        assert status == 409 and body["error"]["code"] == "refund_not_retryable"

    def test_a_retry_that_fails_again_stays_retryable(self, api, customer, pay, stripe_http):
        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_outcomes = [STRIPE_DOWN, STRIPE_DOWN]
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        status, body, _ = retry(api, note, refund)
        assert status == 200 and (body["status"], body["attempts"]) == ("failed", 2)
        status, body, _ = retry(api, note, refund)
        assert status == 200 and (body["status"], body["attempts"]) == ("succeeded", 3)
        keys = [c["headers"]["Idempotency-Key"] for c in stripe_http.refund_calls()]
        assert keys == [
            f"refund-{refund['id']}",
            f"refund-{refund['id']}-attempt-2",
            f"refund-{refund['id']}-attempt-3",
        ]
        assert len(stripe_http.refunds) == 1
        assert [e["data"]["status"] for e in refund_events(api, inv["id"])] == ["failed", "failed", "succeeded"]

    def test_a_refund_stripe_declines_is_failed_with_its_reason(self, api, customer, pay, stripe_http):
        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_status = "failed"
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        assert (refund["status"], refund["provider_ref"], refund["failure"]) == (
            "failed",
            "re_fake_1",
            "expired_or_canceled_card",
        )
        # the declined refund at Stripe is not one to keep: the retry makes a new one
        stripe_http.refund_status = "succeeded"
        status, body, _ = retry(api, note, refund)
        assert status == 200 and (body["status"], body["provider_ref"], body["attempts"]) == (
            "succeeded",
            "re_fake_2",
            2,
        )

    def test_retry_when_stripe_cannot_be_asked_is_503_and_changes_nothing(self, api, aws, customer, pay, stripe_http):
        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_outcomes = [STRIPE_DOWN]
        note = refund_note(api, inv["id"])
        stripe_http.list_fail_with = (500, {"error": {"type": "api_error", "message": "down"}})
        before = table_items(aws)
        status, body, _ = retry(api, note, note["refunds"][0])
        assert status == 503 and body["error"]["code"] == "service_unavailable"
        assert len(stripe_http.refund_calls()) == 1  # no refund without knowing the earlier ones
        assert sorted(map(json.dumps, table_items(aws))) == sorted(map(json.dumps, before))

    def test_retry_is_only_for_failed_stripe_refunds(self, api, customer, pay, stripe_http):
        inv = stripe_paid_invoice(api, customer, pay)
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        status, body, _ = retry(api, note, refund)  # succeeded
        assert status == 409 and body["error"]["code"] == "refund_not_retryable"
        assert "succeeded" in body["error"]["message"]
        # a Stripe refund is not completed by hand
        status, body, _ = api(
            "POST", f"/credit-notes/{note['id']}/refunds/{refund['id']}/complete", {"reference": "TRX-1"}
        )
        assert status == 409 and body["error"]["code"] == "refund_not_completable"
        # unknown ids, and a refund asked for under another credit note
        other = refund_note(api, inv["id"], amount=1000)
        for path, code in [
            (f"/credit-notes/{note['id']}/refunds/re_unknown/retry", "refund_not_found"),
            (f"/credit-notes/cn_unknown/refunds/{refund['id']}/retry", "credit_note_not_found"),
            (f"/credit-notes/{other['id']}/refunds/{refund['id']}/retry", "refund_not_found"),
        ]:
            status, body, _ = api("POST", path)
            assert status == 404 and body["error"]["code"] == code, (path, body)
        status, body, _ = api("POST", f"/credit-notes/{note['id']}/refunds/re%20x/retry")
        assert status == 422 and set(body["error"]) >= {"code", "message"}
        assert len(stripe_http.refund_calls()) == 2

    def test_two_concurrent_retries_refund_once(self, api, customer, pay, stripe_http, serialized_moto):
        from invoicing.domain.events import Actor
        from invoicing.errors import Conflict
        from invoicing.root import get_services
        from invoicing.use_cases.refunds import retry_refund

        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_outcomes = [STRIPE_DOWN]
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        svc, barrier, outcomes = get_services(), threading.Barrier(2), []

        def run() -> None:
            barrier.wait()
            try:
                outcomes.append(retry_refund(svc, Actor("api_key:finance"), note["id"], refund["id"]).status.value)
            except Conflict as exc:
                outcomes.append(exc.code)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # One retry claims the attempt and refunds. The other either loses the claim (409) or, when it
        # looks at Stripe after the winner's refund exists, finds that refund and reports it: both
        # callers then truthfully read "succeeded". What must hold is one refund and one event.
        assert "succeeded" in outcomes, outcomes
        assert set(outcomes) - {"succeeded"} <= {"concurrent_modification", "refund_not_retryable"}, outcomes
        assert len(stripe_http.refunds) == 1 and len(stripe_http.refund_calls()) == 2  # the first attempt + one
        assert refund_of(api, note)["status"] == "succeeded"
        assert [e["type"] for e in refund_events(api, inv["id"])].count("invoice.refund_retried") == 1

    def test_a_retry_while_another_attempt_is_under_way_is_refused_until_its_lease_ran_out(
        self, api, customer, pay, stripe_http, monkeypatch
    ):
        """The interleaving that refunded twice (a CI run, 2026-11-28): "early" claimed attempt 2 and
        was still waiting for Stripe when "late" read the refund (still `failed`, attempts 2), found
        nothing at Stripe yet and claimed attempt 3 under a new idempotency key. A claim now holds
        the refund until its outcome is recorded or its lease ran out."""
        from datetime import timedelta

        from invoicing import clock
        from invoicing.domain.refunds import ATTEMPT_LEASE
        from invoicing.root import get_services

        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_outcomes = [STRIPE_DOWN]
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        # Given another retry's claim on attempt 2, its Stripe call still under way
        svc = get_services()
        stored = svc.refund_store.get(inv["id"], refund["id"])
        assert stored is not None
        claimed_at = clock.now()
        with svc.uow() as tx:
            tx.claim_refund_attempt(stored, 2, clock.iso(claimed_at))
        # When a retry comes meanwhile, Then it is refused and Stripe is not called
        status, body, _ = retry(api, note, refund)
        assert status == 409 and body["error"]["code"] == "concurrent_modification", body
        assert len(stripe_http.refund_calls()) == 1 and stripe_http.refunds == []
        # When the claim's lease ran out (that attempt died), Then the retry looks at Stripe and refunds
        later = claimed_at + ATTEMPT_LEASE + timedelta(seconds=1)
        monkeypatch.setattr(clock, "now", lambda: later)
        status, body, _ = retry(api, note, refund)
        assert status == 200 and (body["status"], body["attempts"]) == ("succeeded", 3), body
        assert len(stripe_http.refunds) == 1

    def test_a_retry_that_looks_after_another_retry_refunded_reports_that_refund(
        self, api, customer, pay, stripe_http, serialized_moto
    ):
        """The interleaving the race above can take: "late" read the failed refund, then asks Stripe
        only after "early" has refunded and recorded it. It finds that refund: no second refund, no
        second event, and it reports succeeded."""
        from invoicing.domain.events import Actor
        from invoicing.root import get_services
        from invoicing.use_cases.refunds import retry_refund

        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_outcomes = [STRIPE_DOWN]
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        svc, outcomes = get_services(), {}
        late_has_read, early_done = threading.Event(), threading.Event()

        def order() -> None:
            if threading.current_thread().name == "late":
                late_has_read.set()
                assert early_done.wait(30)
            else:
                assert late_has_read.wait(30)

        stripe_http.on_list = order

        def run() -> None:
            name = threading.current_thread().name
            try:
                outcomes[name] = retry_refund(svc, Actor("api_key:finance"), note["id"], refund["id"]).status.value
            finally:
                if name == "early":
                    early_done.set()

        threads = [threading.Thread(target=run, name=name) for name in ("early", "late")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert outcomes == {"early": "succeeded", "late": "succeeded"}
        assert len(stripe_http.refunds) == 1 and len(stripe_http.refund_calls()) == 2  # the first attempt + one
        assert refund_of(api, note)["status"] == "succeeded"
        assert [e["type"] for e in refund_events(api, inv["id"])].count("invoice.refund_retried") == 1


class TestRefundWebhooks:
    def test_a_pending_refund_is_settled_by_its_webhook_once(self, api, customer, pay, stripe_http):
        # Given a refund Stripe took as pending (an asynchronous method)
        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_status = "pending"
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        assert (refund["status"], refund["provider_ref"]) == ("pending", "re_fake_1")
        ours = {"refund_id": refund["id"], "invoice_id": inv["id"], "provider_ref": "re_fake_1"}
        created = stripe_http.refunds[0]["created"]
        # When Stripe reports it succeeded (and then delivers that again)
        assert refund_webhook(pay, **ours, created=created) == "refund_updated"
        assert refund_webhook(pay, **ours, created=created) == "duplicate"
        # Then it is succeeded, with one event
        assert refund_of(api, note)["status"] == "succeeded"
        events = [e for e in refund_events(api, inv["id"]) if e["actor"] == "system:stripe_webhook"]
        assert len(events) == 1 and events[0]["data"]["provider_event_id"] == "evt_refund_1"
        assert (events[0]["data"]["previous_status"], events[0]["data"]["status"]) == ("pending", "succeeded")

    def test_a_failed_refund_reported_by_webhook_can_be_retried(self, api, customer, pay, stripe_http):
        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_status = "pending"
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        ours = {"refund_id": refund["id"], "invoice_id": inv["id"], "provider_ref": "re_fake_1"}
        created = stripe_http.refunds[0]["created"]
        # When Stripe reports the refund failed
        stripe_http.refunds[0]["status"] = "failed"
        outcome = refund_webhook(
            pay, **ours, created=created, status="failed", type_="refund.failed", failure_reason="lost_or_stolen_card"
        )
        assert outcome == "refund_updated"
        failed = refund_of(api, note)
        assert (failed["status"], failed["failure"]) == ("failed", "lost_or_stolen_card")
        # And a late "pending" of the same refund does not bring it back
        assert refund_webhook(pay, **ours, created=created, status="pending", event_id="evt_old") == "ignored"
        # Then finance retries: a new refund at Stripe, and the old one's events change nothing
        stripe_http.refund_status = "succeeded"
        status, body, _ = retry(api, note, refund)
        assert status == 200 and (body["status"], body["provider_ref"], body["attempts"]) == (
            "succeeded",
            "re_fake_2",
            2,
        )
        assert refund_webhook(pay, **ours, created=created, status="failed", event_id="evt_late") == "ignored"
        assert refund_of(api, note)["status"] == "succeeded"

    def test_a_lost_answer_is_brought_in_by_the_refund_created_webhook(self, api, customer, pay, stripe_http):
        inv = stripe_paid_invoice(api, customer, pay)
        stripe_http.refund_outcomes = [("lost", "succeeded")]
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        assert refund["status"] == "failed"
        made = stripe_http.refunds[0]
        outcome = refund_webhook(
            pay,
            refund_id=refund["id"],
            invoice_id=inv["id"],
            provider_ref=made["id"],
            created=made["created"],
            type_="refund.created",
        )
        assert outcome == "refund_updated"
        after = refund_of(api, note)
        assert (after["status"], after["provider_ref"], after["failure"]) == ("succeeded", made["id"], None)

    def test_a_refund_that_fails_after_it_succeeded_becomes_retryable(self, api, customer, pay, stripe_http):
        inv = stripe_paid_invoice(api, customer, pay)
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        made = stripe_http.refunds[0]
        ours = {
            "refund_id": refund["id"],
            "invoice_id": inv["id"],
            "provider_ref": made["id"],
            "created": made["created"],
        }
        assert refund_webhook(pay, **ours, status="failed", type_="charge.refund.updated") == "refund_updated"
        assert refund_of(api, note)["status"] == "failed"
        # the older "succeeded", delivered late, is dropped: a refund only moves forward
        assert refund_webhook(pay, **ours, status="succeeded", event_id="evt_late") == "ignored"
        assert refund_of(api, note)["status"] == "failed"

    def test_events_for_no_refund_of_ours_are_acknowledged_and_change_nothing(
        self, api, aws, customer, pay, stripe_http
    ):
        inv = stripe_paid_invoice(api, customer, pay)
        note = refund_note(api, inv["id"])
        refund = note["refunds"][0]
        ours = {"refund_id": refund["id"], "invoice_id": inv["id"], "provider_ref": "re_fake_1", "status": "failed"}
        before = [i for i in table_items(aws) if not i["pk"]["S"].startswith("RATELIMIT#")]
        cases = [
            {**ours, "refund_id": "re_unknown"},
            {**ours, "invoice_id": "in_unknown"},
            {**ours, "refund_id": None},  # another integration's refund: no metadata of ours
            {**ours, "invoice_id": None},
            {**ours, "amount": 2499},  # not the refund it names
            {**ours, "currency": "eur"},
            {**ours, "payment_intent": "pi_other"},
            {**ours, "status": "in_a_new_api_version"},
            {**ours, "refund_id": "re/../x"},
            {**ours, "refund_id": "x" * 300},
            {**ours, "amount": 0},
            {**ours, "amount": True},
            {**ours, "amount": "2500"},
            {**ours, "id": None},
            {**ours, "id": 42},
            {**ours, "status": None},
            {**ours, "currency": None},
            {**ours, "metadata": "refund"},
            {**ours, "metadata": [refund["id"]]},
            {**ours, "payment_intent": {"id": 7}},
        ]
        for case in cases:
            assert refund_webhook(pay, **case) == "ignored", case
        for shape in ("[]", '"refund"', "null", "42"):
            payload = json.dumps(
                {"id": "evt_x", "object": "event", "type": "refund.updated", "data": {"object": json.loads(shape)}}
            )
            assert webhook(pay, payload, sign(payload)) == (200, {"received": True, "outcome": "ignored"})
        payload = json.dumps({"id": "evt_y", "object": "event", "type": "refund.failed", "data": {}})
        assert webhook(pay, payload, sign(payload)) == (200, {"received": True, "outcome": "ignored"})
        after = [i for i in table_items(aws) if not i["pk"]["S"].startswith("RATELIMIT#")]
        assert sorted(map(json.dumps, after)) == sorted(map(json.dumps, before))
        assert refund_of(api, note)["status"] == "succeeded"

    def test_a_badly_signed_refund_event_is_a_400(self, api, customer, pay, stripe_http):
        inv = stripe_paid_invoice(api, customer, pay)
        note = refund_note(api, inv["id"])
        payload = refund_event(refund_id=note["refunds"][0]["id"], invoice_id=inv["id"], status="failed")
        status, body = webhook(pay, payload, sign(payload, secret="whsec_other"))
        assert status == 400 and body["error"]["code"] == "invalid_signature"
        assert refund_of(api, note)["status"] == "succeeded"


def test_signed_refund_events_of_any_shape_never_fail(api, customer, pay, stripe_http):
    """Near misses of a refund event of ours (up to 3 fields changed or removed): acknowledged with a
    known outcome, never a 5xx, and the refund stays one of ours with its amount."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    inv = stripe_paid_invoice(api, customer, pay)
    stripe_http.refund_status = "pending"
    note = refund_note(api, inv["id"])
    refund = note["refunds"][0]
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.text(max_size=30))
    valid = {
        "id": "re_fake_1",
        "object": "refund",
        "amount": 2500,
        "currency": "usd",
        "created": stripe_http.refunds[0]["created"],
        "metadata": {"refund_id": refund["id"], "invoice_id": inv["id"]},
        "payment_intent": "pi_3Fake",
        "status": "succeeded",
    }
    removed = object()
    changes = {
        "id": st.one_of(st.sampled_from(["re_fake_2", ""]), scalars),
        "amount": st.one_of(st.sampled_from([0, 2499, 2500, 250000]), scalars),
        "currency": st.one_of(st.sampled_from(["eur", "USD", "jpy", ""]), scalars),
        "created": st.one_of(st.integers(-5, 2**40), scalars),
        "metadata": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "refund_id": st.one_of(st.sampled_from([refund["id"], "re_unknown", "x" * 300]), scalars),
                    "invoice_id": st.one_of(st.sampled_from([inv["id"], "in_unknown", "a/b"]), scalars),
                },
            ),
            scalars,
        ),
        "payment_intent": st.one_of(st.sampled_from(["pi_other", {"id": "pi_3Fake"}]), scalars),
        "status": st.one_of(st.sampled_from(["pending", "failed", "canceled", "requires_action", "new"]), scalars),
    }
    objects = st.lists(st.sampled_from(sorted(changes)), max_size=3, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: st.one_of(changes[k], st.just(removed)) for k in keys})
    )
    seen: dict[str, int] = {}

    @settings(
        max_examples=80,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        change=objects,
        kind=st.sampled_from(["refund.updated", "refund.failed", "refund.created", "charge.refund.updated"]),
    )
    def check(change, kind):
        obj = {k: v for k, v in {**valid, **change}.items() if v is not removed}
        payload = json.dumps({"id": "evt_fuzz", "object": "event", "type": kind, "data": {"object": obj}})
        status, body = webhook(pay, payload, sign(payload))
        assert status == 200, (status, body, payload[:300])
        assert body["outcome"] in {"ignored", "duplicate", "refund_updated"}
        seen[body["outcome"]] = seen.get(body["outcome"], 0) + 1

    check()
    after = refund_of(api, note)
    assert (after["id"], after["amount_cents"], after["provider"]) == (refund["id"], 2500, "stripe")
    assert after["status"] in {"pending", "succeeded", "failed"}
    assert seen.get("ignored", 0) >= 1 and seen.get("refund_updated", 0) >= 1, seen
