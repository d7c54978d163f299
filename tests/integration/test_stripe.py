"""Stripe without the network: the SDK's HTTP client is replaced by a local fake at the HTTP boundary,
and webhooks are signed the way Stripe signs them (t=..., v1=HMAC-SHA256(secret, "{t}.{payload}"))."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
import stripe

from tests.conftest import ROOT
from tests.support import payments as support
from tests.support.payments import open_invoice, put_exchange_rate, token_of
from tests.support.stripe_events import WEBHOOK_SECRET, session_event, sign

pay = support.pay
serialized_moto = support.serialized_moto
settings_env = support.settings_env

CHECKOUT_URL = "https://checkout.stripe.com/c/pay/cs_test_a1Fake#fidkdWxOYHwnPyd1blpxYHZxWjA0"


class FakeStripeHttp(stripe.HTTPClient):
    """Answers every request with a canned Checkout Session (or a canned error), and records it."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.fail_with: tuple[int, dict[str, Any]] | None = None

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        params = {k: v[0] for k, v in parse_qs(post_data or "").items()}
        self.requests.append({"method": method, "url": url, "headers": dict(headers or {}), "params": params})
        if self.fail_with:
            status, body = self.fail_with
            return json.dumps(body), status, {"Request-Id": "req_fake_err"}
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

    def close(self):
        pass


@pytest.fixture
def stripe_http(settings_env):
    """PAYMENT_PROVIDER=stripe with test secrets; the SDK talks to FakeStripeHttp."""
    from invoicing.adapters.payments import build_payment_provider
    from invoicing.use_cases.services import get_services

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
        from invoicing.use_cases import payments as uc
        from invoicing.use_cases.services import get_services

        inv = open_invoice(api, customer)
        svc = get_services()
        payload = session_event(invoice_id=inv["id"], link_id=None)
        header = sign(payload)
        outcomes: list[str] = []
        barrier = threading.Barrier(50)

        def deliver() -> None:
            barrier.wait()
            try:
                outcomes.append(uc.handle_payment_webhook(svc, payload, header).status)
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

    from invoicing.adapters.payments import StripeProvider, build_payment_provider
    from invoicing.use_cases.services import get_services

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
