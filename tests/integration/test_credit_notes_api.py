"""Credit notes, refunds and the customer balance through the admin API, against moto."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
import stripe

from invoicing.store import keys
from tests.conftest import ROOT
from tests.support import payments as support
from tests.support.builders import create_draft, finalize

settings_env = support.settings_env  # fixture
serialized_moto = support.serialized_moto  # fixture

LINE = {"description": "Consulting", "quantity": "2", "unit_amount_cents": 5000}  # 100.00


def draft(api, customer, lines=None, **extra) -> dict:
    return create_draft(api, customer, *(lines or [LINE]), **extra)  # this module's amounts: 100.00


def open_invoice(api, customer, lines=None) -> dict:
    return finalize(api, draft(api, customer, lines)["id"])


def pay(api, invoice_id, amount) -> dict:
    status, body, _ = api(
        "POST", f"/invoices/{invoice_id}/payments", {"amount_cents": amount, "method": "bank_transfer"}
    )
    assert status == 201, body
    return body


def credit(api, invoice_id, **body) -> tuple[int, Any]:
    body.setdefault("reason", "order_change")
    status, out, _ = api("POST", f"/invoices/{invoice_id}/credit-notes", body)
    return status, out


def invoice(api, invoice_id) -> dict:
    return api("GET", f"/invoices/{invoice_id}")[1]


def balance(api, customer) -> dict:
    return api("GET", f"/customers/{customer['id']}")[1]["balances"]


def ledger(api, customer) -> list[dict]:
    status, body, _ = api("GET", f"/customers/{customer['id']}/balance-transactions")
    assert status == 200, body
    return body["data"]


class TestIssue:
    def test_paid_invoice_credit_to_customer_balance(self, api, customer):
        # Given a paid invoice of 100.00
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 10000)
        # When 30.00 is credited to the customer balance
        status, note = credit(api, inv["id"], amount_cents=3000, method="customer_balance", memo="late delivery")
        # Then the credit note has a number, and all of it is post-payment credit on the balance
        assert status == 201, note
        assert note["number"].startswith("CN-") and note["number"].endswith("-00001")
        assert note["invoice_number"] == inv["invoice_number"] and note["status"] == "issued"
        assert (note["total_cents"], note["pre_payment_cents"], note["customer_balance_cents"]) == (3000, 0, 3000)
        assert note["memo"] == "late delivery" and note["reason"] == "order_change"
        # And the invoice gains derived amounts only
        after = invoice(api, inv["id"])
        assert after["status"] == "paid" and after["total_cents"] == 10000 and after["lines"] == inv["lines"]
        assert (after["credited_cents"], after["post_payment_credited_cents"]) == (3000, 3000)
        # And the balance and its ledger agree
        assert balance(api, customer) == {"USD": 3000}
        entries = ledger(api, customer)
        assert [(e["amount_cents"], e["ending_balance_cents"], e["type"]) for e in entries] == [
            (3000, 3000, "credit_note")
        ]
        assert entries[0]["credit_note_id"] == note["id"]
        # And it can be read back, and is in the audit trail
        assert api("GET", f"/credit-notes/{note['id']}")[1] == note
        listed = api("GET", f"/invoices/{inv['id']}/credit-notes")[1]["data"]
        assert [n["id"] for n in listed] == [note["id"]]
        events = [e["type"] for e in api("GET", f"/invoices/{inv['id']}/events")[1]["data"]]
        assert "invoice.credit_note_issued" in events

    def test_numbers_are_gapless_per_customer(self, api, customer):
        inv = open_invoice(api, customer)
        numbers = [credit(api, inv["id"], amount_cents=100)[1]["number"] for _ in range(3)]
        assert [n[-5:] for n in numbers] == ["00001", "00002", "00003"]

    def test_open_invoice_credit_reduces_amount_due(self, api, customer):
        # Given an open invoice of 100.00 with 20.00 paid
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 2000)
        # When 30.00 is credited
        status, note = credit(api, inv["id"], amount_cents=3000, method="out_of_band")
        # Then it is pre-payment credit: the amount due falls, no money moves, the invoice stays open
        assert status == 201, note
        assert (note["pre_payment_cents"], note["post_payment_cents"]) == (3000, 0)
        after = invoice(api, inv["id"])
        assert after["status"] == "open" and after["amount_remaining_cents"] == 5000
        assert after["pre_payment_credited_cents"] == 3000 and balance(api, customer) == {}

    def test_credit_to_zero_due_makes_the_invoice_paid(self, api, aws, customer):
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 4000)
        # When the rest due (60.00) plus 10.00 is credited to the balance
        status, note = credit(api, inv["id"], amount_cents=7000, method="customer_balance")
        assert status == 201, note
        assert (note["pre_payment_cents"], note["post_payment_cents"], note["customer_balance_cents"]) == (
            6000,
            1000,
            1000,
        )
        after = invoice(api, inv["id"])
        assert after["status"] == "paid" and after["amount_remaining_cents"] == 0 and after["paid_at"]
        item = (
            boto3.resource("dynamodb", region_name="us-east-1")
            .Table(aws.table_name)
            .get_item(Key={"pk": f"INVOICE#{inv['id']}", "sk": "INVOICE"})["Item"]
        )
        assert "due_pk" not in item and item["gsi2pk"] == keys.status_pk("paid", inv["id"])
        assert balance(api, customer) == {"USD": 1000}

    def test_uncollectible_invoice_can_be_credited(self, api, customer):
        inv = open_invoice(api, customer)
        api("POST", f"/invoices/{inv['id']}/mark-uncollectible")
        status, note = credit(api, inv["id"], amount_cents=10000, method="out_of_band", reason="fraudulent")
        assert status == 201, note
        assert invoice(api, inv["id"])["status"] == "paid"

    def test_lines_credit_tax_in_proportion(self, api, customer):
        # Given a 10 % exclusive rate on a line of 3 x 33.35 (tax 10.005 -> 1001)
        status, rate, _ = api("POST", "/tax-rates", {"display_name": "VAT", "percentage": "10", "inclusive": False})
        assert status == 201, rate
        line = {"description": "Seat", "quantity": "3", "unit_amount_cents": 3335, "tax_rate_id": rate["id"]}
        inv = open_invoice(api, customer, [line])
        assert (inv["subtotal_cents"], inv["tax_cents"], inv["total_cents"]) == (10005, 1001, 11006)
        line_id = inv["lines"][0]["id"]
        # When one seat and a free line are credited
        status, note = credit(
            api,
            inv["id"],
            method="out_of_band",
            lines=[{"line_id": line_id, "quantity": "1"}, {"description": "Goodwill", "amount_cents": 1100}],
        )
        # Then one seat credits 33.35 + round(1001 x 3335 / 10005 = 333.67) = 334 tax; the free line
        # is tax-inclusive with round(1100 x 1001 / 11006 = 100.05) = 100 tax
        assert status == 201, note
        first, second = note["lines"]
        assert (first["amount_cents"], first["tax_cents"], first["total_cents"]) == (3335, 334, 3669)
        assert first["quantity"] == "1.0000" and first["description"] == "Seat"
        assert (second["amount_cents"], second["tax_cents"], second["total_cents"]) == (1100, 100, 1100)
        assert (note["total_cents"], note["tax_cents"], note["subtotal_cents"]) == (4769, 434, 4335)


class TestRules:
    def test_draft_is_409(self, api, customer):
        d = draft(api, customer)
        status, body = credit(api, d["id"], amount_cents=100)
        assert status == 409 and body["error"]["code"] == "invoice_not_open"

    def test_void_invoice_is_409(self, api, customer):
        inv = open_invoice(api, customer)
        api("POST", f"/invoices/{inv['id']}/void")
        status, body = credit(api, inv["id"], amount_cents=100)
        assert status == 409 and body["error"]["code"] == "invoice_void"

    def test_credits_never_exceed_the_total(self, api, customer):
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 10000)
        assert credit(api, inv["id"], amount_cents=6000, method="out_of_band")[0] == 201
        status, body = credit(api, inv["id"], amount_cents=4001, method="out_of_band")
        assert status == 409 and body["error"]["code"] == "credit_exceeds_creditable"
        assert credit(api, inv["id"], amount_cents=4000, method="out_of_band")[0] == 201
        assert invoice(api, inv["id"])["credited_cents"] == 10000

    def test_refund_splits_off_the_amount_due_first(self, api, customer):
        # Given 30.00 paid of 100.00
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 3000)
        # When 90.00 is credited as a refund
        status, body = credit(api, inv["id"], amount_cents=9000, method="refund")
        # Then 70.00 cancels the amount due and only 20.00 is refunded
        assert status == 201, body
        assert (body["pre_payment_cents"], body["refund_cents"]) == (7000, 2000)
        after = invoice(api, inv["id"])
        assert after["status"] == "paid" and after["refunded_cents"] == 2000

    def test_refund_exceeds_paid_is_409(self, api, customer):
        # Given 30.00 of balance applied to an invoice of 100.00 and 70.00 paid
        first = open_invoice(api, customer)
        pay(api, first["id"], 10000)
        credit(api, first["id"], amount_cents=3000, method="customer_balance")
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 7000)
        # When 80.00 is refunded (creditable: 100.00; actually paid: 70.00)
        status, body = credit(api, inv["id"], amount_cents=8000, method="refund")
        # Then it is refused, and 70.00 is fine
        assert status == 409 and body["error"]["code"] == "refund_exceeds_paid"
        assert credit(api, inv["id"], amount_cents=7000, method="refund")[0] == 201
        status, body = credit(api, inv["id"], amount_cents=1, method="refund")
        assert status == 409 and body["error"]["code"] == "refund_exceeds_paid"

    def test_refund_on_a_balance_covered_invoice_is_409(self, api, customer):
        # Given an invoice paid entirely from the customer balance (nothing actually paid)
        first = open_invoice(api, customer)
        pay(api, first["id"], 10000)
        credit(api, first["id"], amount_cents=10000, method="customer_balance")
        second = open_invoice(api, customer)
        assert second["status"] == "paid" and second["amount_paid_cents"] == 0
        # When a refund is asked for
        status, body = credit(api, second["id"], amount_cents=100, method="refund")
        # Then nothing was paid that could be refunded
        assert status == 409 and body["error"]["code"] == "refund_exceeds_paid"

    @pytest.mark.parametrize(
        "body",
        [
            {"reason": "other"},
            {"reason": "other", "amount_cents": 100, "lines": [{"description": "x", "amount_cents": 1}]},
            {"reason": "nope", "amount_cents": 100},
            {"reason": "other", "amount_cents": 0},
            {"reason": "other", "amount_cents": "100"},
            {"reason": "other", "amount_cents": 100, "method": "cheque"},
            {"reason": "other", "amount_cents": 100, "colour": "red"},
            {"reason": "other", "lines": [{"description": "x"}]},
            {"reason": "other", "lines": [{"line_id": "il_x"}]},
            {"reason": "other", "lines": []},
        ],
    )
    def test_bad_body_is_422(self, api, customer, body):
        inv = open_invoice(api, customer)
        status, out, _ = api("POST", f"/invoices/{inv['id']}/credit-notes", body)
        assert status == 422 and out["error"]["code"] == "validation_error", out

    def test_an_unknown_line_is_404_and_more_than_the_line_is_409(self, api, customer):
        # well-formed requests that the invoice's lines refuse: like any missing item or state, not a 422
        inv = open_invoice(api, customer)
        status, out = credit(api, inv["id"], lines=[{"line_id": "il_unknown", "quantity": "1"}])
        assert status == 404 and out["error"]["code"] == "line_not_found"
        assert out["error"]["details"][0]["field"] == "lines.0.line_id"
        status, out = credit(api, inv["id"], lines=[{"line_id": inv["lines"][0]["id"], "quantity": "3"}])
        assert status == 409 and out["error"]["code"] == "credit_exceeds_line"

    def test_unknown_ids_are_404(self, api, customer):
        assert credit(api, "in_missing", amount_cents=1)[0] == 404
        assert api("GET", "/credit-notes/cn_missing")[0] == 404
        assert api("GET", "/customers/cus_missing/balance-transactions")[0] == 404


class TestBalanceAtFinalization:
    def test_balance_is_applied_to_the_next_invoice(self, api, customer):
        # Given 30.00 of customer balance
        first = open_invoice(api, customer)
        pay(api, first["id"], 10000)
        credit(api, first["id"], amount_cents=3000, method="customer_balance")
        # When the next invoice of 100.00 is finalized
        second = open_invoice(api, customer)
        # Then the balance pays 30.00 of it
        assert second["status"] == "open"
        assert (second["starting_balance_cents"], second["applied_balance_cents"]) == (3000, 3000)
        assert (second["total_cents"], second["amount_remaining_cents"]) == (10000, 7000)
        assert balance(api, customer) == {"USD": 0}
        entries = ledger(api, customer)
        assert [(e["amount_cents"], e["ending_balance_cents"], e["type"]) for e in entries] == [
            (-3000, 0, "applied_to_invoice"),
            (3000, 3000, "credit_note"),
        ]
        assert entries[0]["invoice_id"] == second["id"]
        assert sum(e["amount_cents"] for e in entries) == 0
        events = [e["type"] for e in api("GET", f"/invoices/{second['id']}/events")[1]["data"]]
        assert "invoice.customer_balance_applied" in events

    def test_full_coverage_pays_the_invoice_at_once(self, api, aws, customer):
        first = open_invoice(api, customer)
        pay(api, first["id"], 10000)
        credit(api, first["id"], amount_cents=10000, method="customer_balance")
        small = open_invoice(api, customer, [{"description": "Add-on", "unit_amount_cents": 2500}])
        assert small["status"] == "paid" and small["paid_at"] == small["finalized_at"]
        assert small["payment_url"] is None  # nothing left to pay: no link
        assert (small["applied_balance_cents"], small["amount_remaining_cents"]) == (2500, 0)
        item = (
            boto3.resource("dynamodb", region_name="us-east-1")
            .Table(aws.table_name)
            .get_item(Key={"pk": f"INVOICE#{small['id']}", "sk": "INVOICE"})["Item"]
        )
        assert "due_pk" not in item and item["gsi2pk"] == keys.status_pk("paid", small["id"])
        assert balance(api, customer) == {"USD": 7500}

    def test_balance_in_another_currency_is_not_applied(self, api, customer):
        first = open_invoice(api, customer)
        pay(api, first["id"], 10000)
        credit(api, first["id"], amount_cents=3000, method="customer_balance")
        support.put_exchange_rate(api, "EUR", "1.08")
        eur = finalize(api, draft(api, customer, currency="EUR")["id"])
        assert eur["applied_balance_cents"] == 0 and eur["amount_remaining_cents"] == eur["total_cents"]
        assert balance(api, customer) == {"USD": 3000}


class TestVoid:
    def test_void_reverses_balance_and_credited_amount(self, api, customer):
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 10000)
        _, note = credit(api, inv["id"], amount_cents=3000, method="customer_balance")
        status, voided, _ = api("POST", f"/credit-notes/{note['id']}/void")
        assert status == 200, voided
        assert voided["status"] == "void" and voided["voided_at"]
        after = invoice(api, inv["id"])
        assert (after["credited_cents"], after["post_payment_credited_cents"]) == (0, 0)
        assert balance(api, customer) == {"USD": 0}
        assert [e["type"] for e in ledger(api, customer)] == ["credit_note_void", "credit_note"]
        events = [e["type"] for e in api("GET", f"/invoices/{inv['id']}/events")[1]["data"]]
        assert "invoice.credit_note_voided" in events
        # and twice is a 409
        status, body, _ = api("POST", f"/credit-notes/{note['id']}/void")
        assert status == 409 and body["error"]["code"] == "credit_note_not_voidable"

    def test_void_puts_the_amount_due_back_on_an_open_invoice(self, api, customer):
        inv = open_invoice(api, customer)
        _, note = credit(api, inv["id"], amount_cents=2500, method="out_of_band")
        assert invoice(api, inv["id"])["amount_remaining_cents"] == 7500
        assert api("POST", f"/credit-notes/{note['id']}/void")[0] == 200
        after = invoice(api, inv["id"])
        assert (after["amount_remaining_cents"], after["credited_cents"]) == (10000, 0)

    def test_void_is_refused_once_the_balance_is_consumed(self, api, customer):
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 10000)
        _, note = credit(api, inv["id"], amount_cents=3000, method="customer_balance")
        open_invoice(api, customer)  # spends the 30.00
        status, body, _ = api("POST", f"/credit-notes/{note['id']}/void")
        assert status == 409 and body["error"]["code"] == "credit_balance_consumed"
        assert api("GET", f"/credit-notes/{note['id']}")[1]["status"] == "issued"

    def test_refunded_credit_note_cannot_be_voided(self, api, customer):
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 10000)
        _, note = credit(api, inv["id"], amount_cents=1000, method="refund")
        status, body, _ = api("POST", f"/credit-notes/{note['id']}/void")
        assert status == 409 and body["error"]["code"] == "credit_note_not_voidable"


class TestRefunds:
    def test_manual_refund_is_recorded_against_the_payment(self, api, customer):
        inv = open_invoice(api, customer)
        first = pay(api, inv["id"], 4000)["payment"]
        second = pay(api, inv["id"], 6000)["payment"]
        # When 80.00 is refunded: the newest payment first
        status, note = credit(api, inv["id"], amount_cents=8000, method="refund")
        assert status == 201, note
        refunds = sorted(note["refunds"], key=lambda r: r["amount_cents"])
        assert [(r["payment_id"], r["amount_cents"]) for r in refunds] == [(first["id"], 2000), (second["id"], 6000)]
        assert {(r["provider"], r["status"]) for r in refunds} == {("manual", "pending")}
        assert invoice(api, inv["id"])["refunded_cents"] == 8000
        status, body = credit(api, inv["id"], amount_cents=2001, method="refund")
        assert status == 409 and body["error"]["code"] == "credit_exceeds_creditable"


class TestManualRefunds:
    """A refund of a payment made by hand (bank transfer) is paid back by hand: finance records it."""

    @staticmethod
    def refunded(api, customer, amount=3000):
        inv = open_invoice(api, customer)
        pay(api, inv["id"], 10000)
        status, note = credit(api, inv["id"], amount_cents=amount, method="refund")
        assert status == 201, note
        (refund,) = note["refunds"]
        assert (refund["provider"], refund["status"], refund["attempts"]) == ("manual", "pending", 0)
        return inv, note, refund

    @staticmethod
    def complete(api, note, refund, body):
        return api("POST", f"/credit-notes/{note['id']}/refunds/{refund['id']}/complete", body)

    def test_finance_records_the_money_paid_back(self, api, customer):
        # Given a manual refund of 30.00, pending
        inv, note, refund = self.refunded(api, customer)
        # When finance records the transfer that paid it back
        body = {"reference": "  SEPA 2026-11-24 / 4711  ", "paid_at": "2026-11-24T09:30:00+01:00"}
        status, out, _ = self.complete(api, note, refund, body)
        # Then it is succeeded with the reference, when and who
        assert status == 200, out
        assert (out["id"], out["status"], out["reference"]) == (refund["id"], "succeeded", "SEPA 2026-11-24 / 4711")
        assert out["paid_at"].startswith("2026-11-24T08:30:00") and out["completed_by"] == "api_key:tester"
        assert (out["credit_note_id"], out["invoice_id"], out["amount_cents"]) == (note["id"], inv["id"], 3000)
        assert api("GET", f"/credit-notes/{note['id']}")[1]["refunds"] == [out]
        # And the audit trail says so
        _, events, _ = api("GET", f"/invoices/{inv['id']}/events")
        last = events["data"][-1]
        assert (last["type"], last["actor"]) == ("invoice.refund_completed", "api_key:tester")
        assert last["data"]["refund_id"] == refund["id"] and last["data"]["reference"] == "SEPA 2026-11-24 / 4711"
        assert (last["data"]["previous_status"], last["data"]["status"]) == ("pending", "succeeded")
        # And the money side is unchanged: it was counted as refunded when the credit note was issued
        assert invoice(api, inv["id"])["refunded_cents"] == 3000

    def test_paid_at_defaults_to_now_and_a_second_complete_is_409(self, api, customer):
        inv, note, refund = self.refunded(api, customer)
        status, out, _ = self.complete(api, note, refund, {"reference": "TRX-1"})
        assert status == 200 and out["paid_at"] is not None
        status, body, _ = self.complete(api, note, refund, {"reference": "TRX-2"})
        assert status == 409 and body["error"]["code"] == "refund_not_completable"
        assert "succeeded" in body["error"]["message"]
        assert api("GET", f"/credit-notes/{note['id']}")[1]["refunds"][0]["reference"] == "TRX-1"

    def test_a_manual_refund_is_not_retried(self, api, customer):
        _, note, refund = self.refunded(api, customer)
        status, body, _ = api("POST", f"/credit-notes/{note['id']}/refunds/{refund['id']}/retry")
        assert status == 409 and body["error"]["code"] == "refund_not_retryable"
        assert "complete" in body["error"]["message"]

    def test_unknown_ids_are_404(self, api, customer):
        inv, note, refund = self.refunded(api, customer)
        _, other = credit(api, inv["id"], amount_cents=1000, method="refund")
        body = {"reference": "TRX-1"}
        for path, code in [
            (f"/credit-notes/{note['id']}/refunds/re_unknown/complete", "refund_not_found"),
            (f"/credit-notes/cn_unknown/refunds/{refund['id']}/complete", "credit_note_not_found"),
            (f"/credit-notes/{other['id']}/refunds/{refund['id']}/complete", "refund_not_found"),
        ]:
            status, out, _ = api("POST", path, body)
            assert status == 404 and out["error"]["code"] == code, (path, out)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "reference"),
            ({"reference": ""}, "reference"),
            ({"reference": "   "}, "reference"),
            ({"reference": "x" * 201}, "reference"),
            ({"reference": 4711}, "reference"),
            ({"reference": "TRX-1", "paid_at": "2026-11-24T09:30:00"}, "paid_at"),  # no time zone
            ({"reference": "TRX-1", "paid_at": "2999-01-01T00:00:00Z"}, "paid_at"),  # the future
            ({"reference": "TRX-1", "paid_at": "yesterday"}, "paid_at"),
            ({"reference": "TRX-1", "amount_cents": 3000}, "amount_cents"),  # unknown fields are refused
        ],
    )
    def test_bad_input_is_422_naming_the_field(self, api, customer, body, field):
        _, note, refund = self.refunded(api, customer)
        status, out, _ = self.complete(api, note, refund, body)
        assert status == 422, out
        assert set(out) == {"error"} and {"code", "message"} <= set(out["error"])
        assert out["error"]["code"] == "validation_error"
        assert field in out["error"]["message"] or field in json.dumps(out["error"].get("details"))
        assert api("GET", f"/credit-notes/{note['id']}")[1]["refunds"][0]["status"] == "pending"

    def test_a_body_that_is_not_an_object_is_422(self, api, customer):
        _, note, refund = self.refunded(api, customer)
        path = f"/credit-notes/{note['id']}/refunds/{refund['id']}/complete"
        for raw in ("[]", '"TRX-1"', "{not json"):
            status, out, _ = api("POST", path, raw_body=raw)
            assert status == 422 and out["error"]["code"] == "validation_error", (raw, out)

    def test_two_concurrent_completes_one_wins(self, api, customer, serialized_moto):
        import threading

        from invoicing.domain.events import Actor
        from invoicing.errors import Conflict
        from invoicing.root import get_services
        from invoicing.use_cases.refunds import CompleteRefund, complete_refund

        inv, note, refund = self.refunded(api, customer)
        svc, barrier, outcomes = get_services(), threading.Barrier(2), []

        def run(reference: str) -> None:
            barrier.wait()
            try:
                done = complete_refund(
                    svc, Actor(f"api_key:{reference}"), note["id"], refund["id"], CompleteRefund(reference)
                )
                outcomes.append(done.reference)
            except Conflict as exc:
                outcomes.append(exc.code)

        threads = [threading.Thread(target=run, args=(r,)) for r in ("alice", "bob")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes, key=lambda o: o == "refund_not_completable") in (
            ["alice", "refund_not_completable"],
            ["bob", "refund_not_completable"],
        ), outcomes
        stored = api("GET", f"/credit-notes/{note['id']}")[1]["refunds"][0]
        assert stored["status"] == "succeeded" and stored["reference"] in outcomes
        assert stored["completed_by"] == f"api_key:{stored['reference']}"
        _, events, _ = api("GET", f"/invoices/{inv['id']}/events")
        assert [e["type"] for e in events["data"]].count("invoice.refund_completed") == 1


class FakeStripeRefunds(stripe.HTTPClient):
    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        params = {k: v[0] for k, v in parse_qs(post_data or "").items()}
        self.requests.append({"url": url, "headers": dict(headers or {}), "params": params})
        refund = {
            "id": "re_3Fake",
            "object": "refund",
            "amount": int(params.get("amount", 0)),
            "currency": "usd",
            "payment_intent": params.get("payment_intent"),
            "status": "succeeded",
        }
        return json.dumps(refund), 200, {"Request-Id": "req_fake_refund"}

    def close(self):
        pass


def test_stripe_refund_goes_through_the_sdk(api, customer, settings_env):
    from invoicing.adapters.payments import build_payment_provider
    from invoicing.domain.payments import Payment, PaymentMethod, PaymentSource
    from invoicing.root import get_services

    # Given an invoice paid by a Stripe checkout (payment intent pi_3Fake)
    settings_env(PAYMENT_PROVIDER="stripe", STRIPE_SECRET_KEY="sk_test_fake", STRIPE_WEBHOOK_SECRET="whsec_x")
    fake = FakeStripeRefunds()
    svc = get_services()
    svc.adapters["payments"] = build_payment_provider(svc.settings, http_client=fake)
    inv = open_invoice(api, customer)
    from invoicing.settlement import settle as _settle

    def make(invoice):
        return Payment(
            id="pay_stripe_cs_test_1",
            invoice_id=invoice.id,
            amount_cents=10000,
            currency="USD",
            method=PaymentMethod.CARD,
            reference="pi_3Fake",
            paid_at=invoice.finalized_at,
            recorded_at=invoice.finalized_at,
            actor="system:stripe_webhook",
            source=PaymentSource.STRIPE,
            provider_ref="cs_test_1",
        )

    from invoicing.domain.events import Actor

    _settle(svc, Actor("system:stripe_webhook"), inv["id"], make)
    assert svc.payment_store.list_payments(inv["id"])[0].source is PaymentSource.STRIPE
    # When 25.00 is credited as a refund
    status, note = credit(api, inv["id"], amount_cents=2500, method="refund", reason="product_unsatisfactory")
    # Then Stripe was asked to refund 2500 of the payment intent, idempotently, and it is recorded
    assert status == 201, note
    (req,) = fake.requests
    assert req["url"].endswith("/v1/refunds")
    assert req["params"]["payment_intent"] == "pi_3Fake" and req["params"]["amount"] == "2500"
    assert req["headers"]["Idempotency-Key"] == f"refund-{note['refunds'][0]['id']}"
    (refund,) = note["refunds"]
    assert (refund["provider"], refund["status"], refund["provider_ref"]) == ("stripe", "succeeded", "re_3Fake")


def test_credit_note_pdf_is_rendered_and_downloadable(api, aws, customer):
    from invoicing.root import get_services
    from invoicing.use_cases.documents import render_invoice_pdf

    inv = open_invoice(api, customer)
    pay(api, inv["id"], 10000)
    _, note = credit(api, inv["id"], amount_cents=1500, method="customer_balance")
    # Then a render job is queued after the commit
    sqs = boto3.client("sqs", region_name="us-east-1")
    jobs = []
    for _ in range(5):
        for msg in sqs.receive_message(QueueUrl=aws.render_queue_url, MaxNumberOfMessages=10).get("Messages", []):
            jobs.append(json.loads(msg["Body"]))
    job = next(j for j in jobs if j["kind"] == "credit_note_pdf")
    assert job["credit_note_id"] == note["id"]
    status, body, _ = api("GET", f"/credit-notes/{note['id']}/pdf")
    assert status == 409 and body["error"]["code"] == "pdf_not_ready"
    # When the worker renders it (a fake printer: the HTML is what we check)
    printed: list[str] = []

    def render(html, footer_text=""):
        printed.append(html)
        return b"%PDF-1.4 fake"

    assert render_invoice_pdf(get_services(), job, render=render) == "rendered"
    html = printed[0]
    assert note["number"] in html and inv["invoice_number"] in html and "Credit note" in html
    key = f"credit-notes/{customer['id']}/{note['number']}.pdf"
    obj = boto3.client("s3", region_name="us-east-1").get_object(Bucket=aws.bucket_name, Key=key)
    assert obj["ContentType"] == "application/pdf"
    status, body, _ = api("GET", f"/credit-notes/{note['id']}/pdf")
    assert status == 200 and key in body["url"]
    # a redelivered job is harmless
    assert render_invoice_pdf(get_services(), job, render=render) == "already_recorded"


def test_sample_event_issues_a_credit_note(api, customer):
    sample = json.loads((ROOT / "events" / "api_issue_credit_note.json").read_text())
    inv = open_invoice(api, customer)
    pay(api, inv["id"], 10000)
    status, note = credit(api, inv["id"], **json.loads(sample["body"]))
    assert status == 201, note
