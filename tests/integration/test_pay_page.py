"""The public pay page (PayFunction) through its real handler, against moto."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import time_machine

from tests.conftest import ROOT
from tests.integration.conftest import LambdaContext, load_function
from tests.support import payments as support
from tests.support.payments import open_invoice, put_exchange_rate, token_of, without_nonce

# fixtures shared with the other payment tests
pay = support.pay
serialized_moto = support.serialized_moto
settings_env = support.settings_env


@pytest.fixture
def local_provider(settings_env):
    settings_env(PAYMENT_PROVIDER="local")


SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def assert_secure(headers, *, form_action="'self'"):
    for key, value in SECURITY_HEADERS.items():
        assert headers.get(key) == value, (key, headers)
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert f"form-action {form_action}" in csp
    assert re.search(r"style-src 'nonce-[A-Za-z0-9_-]{20,}'", csp)
    assert "unsafe-inline" not in csp and "script-src" not in csp


class TestPage:
    def test_shows_seller_number_lines_total_and_amount_due(self, api, customer, pay):
        # Given a finalized invoice and its link
        inv = open_invoice(api, customer)
        # When the customer opens the link
        status, html, headers = pay("GET", token_of(inv["payment_url"]))
        # Then the page shows who bills what, and is locked down
        assert status == 200, html
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert_secure(headers)
        assert "Example Billing Ltd" in html
        assert inv["invoice_number"] in html
        assert "Consulting &lt;b&gt;November&lt;/b&gt;" in html  # autoescaped
        assert "<b>November" not in html
        assert '<div class="amount" data-testid="amount-due">$150.00</div>' in html
        assert 'data-testid="total">$150.00<' in html
        assert 'name="viewport"' in html and "<script" not in html
        nonce = re.search(r"'nonce-([^']+)'", headers["Content-Security-Policy"]).group(1)
        assert f'<style nonce="{nonce}">' in html

    def test_manual_provider_shows_bank_instructions_and_no_pay_button(self, api, customer, pay, settings_env):
        settings_env(BANK_TRANSFER_INSTRUCTIONS="IBAN DE02 1203 0000 0000 2020 51\nBIC BYLADEM1001")
        inv = open_invoice(api, customer)
        status, html, _ = pay("GET", token_of(inv["payment_url"]))
        assert status == 200
        assert "IBAN DE02 1203 0000 0000 2020 51\nBIC BYLADEM1001" in html
        assert "<form" not in html and 'data-testid="pay-button"' not in html
        # the form POST changes nothing either
        status, html, _ = pay("POST", token_of(inv["payment_url"]), form={"amount_cents": "15000"})
        assert status == 200 and 'data-testid="pay-button"' not in html
        _, listed, _ = api("GET", f"/invoices/{inv['id']}/payments")
        assert listed["data"] == []

    def test_money_follows_currency_and_the_customers_locale(self, api, pay):
        _, cust, _ = api(
            "POST",
            "/customers",
            {"name": "Müller GmbH", "email": "ap@mueller.test", "currency": "EUR", "locale": "de_DE"},
        )
        put_exchange_rate(api, "EUR", "1.08")
        inv = open_invoice(api, cust)
        status, html, _ = pay("GET", token_of(inv["payment_url"]))
        assert status == 200, html
        assert "150,00\u00a0€" in html and 'lang="de-DE"' in html

    def test_partial_payment_shows_what_remains(self, api, customer, pay):
        inv = open_invoice(api, customer)
        api("POST", f"/invoices/{inv['id']}/payments", {"amount_cents": 5000, "method": "cash"})
        _, html, _ = pay("GET", token_of(inv["payment_url"]))
        assert 'data-testid="amount-due">$100.00<' in html and 'data-testid="total">$150.00<' in html

    def test_pdf_link_only_when_the_invoice_has_a_pdf(self, api, aws, customer, pay):
        inv = open_invoice(api, customer)
        token = token_of(inv["payment_url"])
        _, html, _ = pay("GET", token)
        assert "pdf-link" not in html
        key = f"invoices/{customer['id']}/{inv['invoice_number']}.pdf"
        boto3.client("s3", region_name="us-east-1").put_object(Bucket=aws.bucket_name, Key=key, Body=b"%PDF-1.7")
        boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name).update_item(
            Key={"pk": f"INVOICE#{inv['id']}", "sk": "INVOICE"},
            UpdateExpression="SET pdf_s3_key = :k, pdf_status = :s",
            ExpressionAttributeValues={":k": key, ":s": "rendered"},
        )
        _, html, _ = pay("GET", token)
        href = re.search(r'href="([^"]+)" rel="noopener noreferrer" data-testid="pdf-link"', html).group(1)
        url = href.replace("&amp;", "&")
        assert aws.bucket_name in url and key in url and "Signature=" in url
        import requests  # moto intercepts the signed GET like S3 would answer it

        assert requests.get(url, timeout=5).content == b"%PDF-1.7"

    def test_pdf_route_redirects_to_a_fresh_url_while_the_link_lives_also_once_paid(
        self, api, aws, customer, pay, local_provider
    ):
        inv = open_invoice(api, customer)
        token = token_of(inv["payment_url"])
        # no PDF yet: the neutral page, like any bad token
        status, html, _ = pay("GET", f"/pay/{token}/pdf")
        _, neutral, _ = pay("GET", "A" * 43)
        assert status == 404 and without_nonce(html) == without_nonce(neutral)
        key = f"invoices/{customer['id']}/{inv['invoice_number']}.pdf"
        boto3.client("s3", region_name="us-east-1").put_object(Bucket=aws.bucket_name, Key=key, Body=b"%PDF-1.7")
        boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name).update_item(
            Key={"pk": f"INVOICE#{inv['id']}", "sk": "INVOICE"},
            UpdateExpression="SET pdf_s3_key = :k, pdf_status = :s",
            ExpressionAttributeValues={":k": key, ":s": "rendered"},
        )
        import requests

        def download() -> tuple[int, bytes | None]:
            status, _, headers = pay("GET", f"/pay/{token}/pdf")
            if status != 302:
                return status, None
            assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
            assert "X-Amz-Expires=300" in headers["Location"]  # minutes, signed now: not days
            return status, requests.get(headers["Location"], timeout=5).content

        assert download() == (302, b"%PDF-1.7")
        # paid through the link: the pay page turns neutral, the invoice PDF stays reachable
        assert pay("POST", token, form={"amount_cents": "15000"})[0] == 200
        assert pay("GET", token)[0] == 404
        assert download() == (302, b"%PDF-1.7")
        # a bad or altered token, and a revoked link, get the neutral page
        assert pay("GET", f"/pay/{token[:-1]}x/pdf")[0] == 404
        other = open_invoice(api, customer)
        api("DELETE", f"/invoices/{other['id']}/payment-link")
        assert pay("GET", f"/pay/{token_of(other['payment_url'])}/pdf")[0] == 404

    def test_sample_event_reaches_the_handler(self, pay, aws):
        handler = load_function("pay")
        event = json.loads((ROOT / "events" / "pay_get_page.json").read_text())
        response = handler.handle_pay_request(event, LambdaContext("PayFunction", 10))
        assert response["statusCode"] == 404  # a sample token: the neutral page
        assert response["multiValueHeaders"]["Cache-Control"] == ["no-store"]


class TestNeutralAnswers:
    def test_unknown_expired_revoked_used_and_closed_look_the_same(self, api, customer, pay, local_provider):
        inv = open_invoice(api, customer)
        bodies = {}

        # unknown (well-formed), malformed
        bodies["unknown"] = pay("GET", "A" * 43)
        bodies["malformed"] = pay("GET", "not a token!")
        # revoked
        revoked = open_invoice(api, customer)
        api("DELETE", f"/invoices/{revoked['id']}/payment-link")
        bodies["revoked"] = pay("GET", token_of(revoked["payment_url"]))
        # replaced by a re-issue
        reissued = open_invoice(api, customer)
        api("POST", f"/invoices/{reissued['id']}/payment-link")
        bodies["replaced"] = pay("GET", token_of(reissued["payment_url"]))
        # used
        assert pay("POST", token_of(inv["payment_url"]), form={"amount_cents": "15000"})[0] == 200
        bodies["used"] = pay("GET", token_of(inv["payment_url"]))
        # voided invoice, invoice paid by other means
        voided = open_invoice(api, customer)
        api("POST", f"/invoices/{voided['id']}/void")
        bodies["void"] = pay("GET", token_of(voided["payment_url"]))
        paid = open_invoice(api, customer)
        api("POST", f"/invoices/{paid['id']}/payments", {"amount_cents": 15000, "method": "cash"})
        bodies["paid_elsewhere"] = pay("GET", token_of(paid["payment_url"]))
        # expired: after the last day
        expiring = open_invoice(api, customer)
        due = datetime.fromisoformat(expiring["due_date"]).date()
        with time_machine.travel(datetime(due.year, due.month, due.day, tzinfo=UTC) + timedelta(days=31), tick=False):
            bodies["expired"] = pay("GET", token_of(expiring["payment_url"]))

        statuses = {name: status for name, (status, _, _) in bodies.items()}
        assert set(statuses.values()) == {404}, statuses
        texts = {without_nonce(html) for _, html, _ in bodies.values()}
        assert len(texts) == 1
        text = texts.pop()
        assert "already paid" in text and "not active" in text
        for _, _, headers in bodies.values():
            assert_secure(headers)

    def test_link_is_valid_through_its_last_day(self, api, customer, pay):
        inv = open_invoice(api, customer)
        due = datetime.fromisoformat(inv["due_date"]).date()
        last = datetime(due.year, due.month, due.day, 23, 59, tzinfo=UTC) + timedelta(days=30)
        with time_machine.travel(last, tick=False):
            assert pay("GET", token_of(inv["payment_url"]))[0] == 200

    def test_uncollectible_invoice_is_still_payable(self, api, customer, pay):
        inv = open_invoice(api, customer)
        api("POST", f"/invoices/{inv['id']}/mark-uncollectible")
        assert pay("GET", token_of(inv["payment_url"]))[0] == 200

    def test_reissued_link_works(self, api, customer, pay):
        inv = open_invoice(api, customer)
        _, link, _ = api("POST", f"/invoices/{inv['id']}/payment-link")
        assert pay("GET", token_of(link["url"]))[0] == 200


class TestPayButtonLocal:
    def test_pays_once_and_second_use_shows_the_neutral_already_paid_page(self, api, customer, pay, local_provider):
        # Given an open invoice with the local provider
        inv = open_invoice(api, customer)
        token = token_of(inv["payment_url"])
        _, html, _ = pay("GET", token)
        assert 'data-testid="pay-button">Pay $150.00<' in html
        # When the Pay button is pressed
        status, html, headers = pay("POST", token, form={"amount_cents": "15000"})
        # Then it is paid at once, as a card payment through the link
        assert status == 200 and "Payment received" in html
        assert_secure(headers)
        _, after, _ = api("GET", f"/invoices/{inv['id']}")
        assert after["status"] == "paid" and after["amount_remaining_cents"] == 0 and after["paid_at"]
        _, listed, _ = api("GET", f"/invoices/{inv['id']}/payments")
        [payment] = listed["data"]
        assert (payment["method"], payment["source"], payment["amount_cents"]) == ("card", "pay_link", 15000)
        # When it is pressed again: nothing is charged, the neutral page says an already paid invoice is settled
        status, html, _ = pay("POST", token, form={"amount_cents": "15000"})
        assert status == 404 and "already paid" in html
        _, listed, _ = api("GET", f"/invoices/{inv['id']}/payments")
        assert len(listed["data"]) == 1
        _, events, _ = api("GET", f"/invoices/{inv['id']}/events")
        last = events["data"][-1]
        assert (last["type"], last["to_status"], last["actor"]) == ("invoice.payment_recorded", "paid", last["actor"])
        assert last["actor"].startswith("pay_link:plink_")

    def test_a_stale_amount_shows_the_new_amount_and_charges_nothing(self, api, customer, pay, local_provider):
        inv = open_invoice(api, customer)
        token = token_of(inv["payment_url"])
        api("POST", f"/invoices/{inv['id']}/payments", {"amount_cents": 5000, "method": "cash"})
        for form in ({"amount_cents": "15000"}, {}, {"amount_cents": "abc"}):
            status, html, _ = pay("POST", token, form=form)
            assert status == 200 and "amount due has changed" in html
            assert 'data-testid="amount-due">$100.00<' in html
        _, listed, _ = api("GET", f"/invoices/{inv['id']}/payments")
        assert len(listed["data"]) == 1
        assert pay("POST", token, form={"amount_cents": "10000"})[0] == 200

    def test_fifty_concurrent_uses_pay_exactly_once(self, api, customer, services, local_provider, serialized_moto):
        from invoicing.root import get_services
        from invoicing.use_cases import payments as uc

        inv = open_invoice(api, customer)
        token = token_of(inv["payment_url"])
        svc = get_services()
        outcomes: list[str] = []
        barrier = threading.Barrier(50)

        def use() -> None:
            barrier.wait()
            try:
                result = uc.pay_with_link(svc, token, 15000)
                outcomes.append(result.kind if result else "neutral")
            except Exception as exc:
                outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=use) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert outcomes.count("paid") == 1, outcomes
        assert set(outcomes) <= {"paid", "neutral"}, outcomes
        _, listed, _ = api("GET", f"/invoices/{inv['id']}/payments")
        assert len(listed["data"]) == 1
        _, after, _ = api("GET", f"/invoices/{inv['id']}")
        assert after["amount_paid_cents"] == 15000 and after["status"] == "paid"

    def test_local_provider_is_refused_outside_local_stages(self):
        from pydantic import ValidationError

        from invoicing.settings import Settings

        with pytest.raises(ValidationError, match="only allowed when STAGE is local or test"):
            Settings.from_env({"PAYMENT_PROVIDER": "local", "STAGE": "prod"})


class TestAbuse:
    def test_per_ip_limit_gives_a_neutral_429(self, api, customer, pay, settings_env):
        settings_env(PAY_RATE_LIMIT_PER_MINUTE="3")
        inv = open_invoice(api, customer)
        token = token_of(inv["payment_url"])
        start = datetime.now(UTC).replace(second=5, microsecond=0)
        with time_machine.travel(start, tick=False):
            assert [pay("GET", token, ip="203.0.113.9")[0] for _ in range(3)] == [200, 200, 200]
            status, html, headers = pay("GET", token, ip="203.0.113.9")
            assert status == 429 and "Too many requests" in html and inv["invoice_number"] not in html
            assert_secure(headers)
            assert pay("POST", "A" * 43, ip="203.0.113.9", form={})[0] == 429
            # another client is not affected
            assert pay("GET", token, ip="203.0.113.10")[0] == 200
        # the next minute is a new window
        with time_machine.travel(start + timedelta(minutes=1), tick=False):
            assert pay("GET", token, ip="203.0.113.9")[0] == 200

    def test_the_counter_stores_no_ip_and_expires(self, api, aws, customer, pay):
        pay("GET", "A" * 43, ip="203.0.113.77")
        items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=aws.table_name)["Items"]
        counters = [i for i in items if i["pk"]["S"].startswith("RATELIMIT#")]
        assert counters and "203.0.113.77" not in json.dumps(counters)
        assert all(int(c["ttl"]["N"]) > 0 for c in counters)

    def test_the_token_never_reaches_the_logs(self, api, customer, pay, capsys, local_provider):
        inv = open_invoice(api, customer)
        token = token_of(inv["payment_url"])
        capsys.readouterr()
        pay("GET", token)
        pay("POST", token, form={"amount_cents": "15000"})
        pay("POST", token, form={"amount_cents": "15000"})
        pay("GET", token + "x")
        out, err = capsys.readouterr()
        assert out  # the handler did log (structured lines)
        assert token not in out and token not in err
        for line in out.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                assert "/pay/" not in str(record.get("correlation_id", ""))
