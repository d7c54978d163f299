"""Finalization recomputes tax and freezes it, converts to USD and locks the rate (docs/money.md).

Covers the default tax service (TaxRate records) in USD, EUR, JPY and KWD, inclusive and exclusive,
a rate edited between draft and finalize, a rate archived meanwhile, a missing exchange rate, and the
external HTTP tax service (a real local server) answering, failing, talking garbage and timing out.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

AS_OF = "2026-11-24T00:00:00Z"


# ---------------------------------------------------------------- helpers
def create_customer(api, currency: str) -> dict[str, Any]:
    status, body, _ = api(
        "POST",
        "/customers",
        {
            "name": f"{currency} Customer",
            "email": "ap@example.test",
            "currency": currency,
            "address": {"country": "DE"},
        },
    )
    assert status == 201, body
    return body


def create_rate(api, percentage: str, inclusive: bool, name: str = "VAT") -> dict[str, Any]:
    status, body, _ = api(
        "POST", "/tax-rates", {"display_name": name, "percentage": percentage, "inclusive": inclusive}
    )
    assert status == 201, body
    return body


def set_fx(api, currency: str, rate: str, source: str = "ecb") -> None:
    status, body, _ = api("PUT", f"/exchange-rates/{currency}", {"rate_to_usd": rate, "source": source, "as_of": AS_OF})
    assert status == 200, body


def line(unit: int, rate_id: str | None = None, quantity: str = "1", description: str = "Service") -> dict[str, Any]:
    return {"description": description, "quantity": quantity, "unit_amount_cents": unit, "tax_rate_id": rate_id}


def create_draft(api, customer, *lines) -> dict[str, Any]:
    status, body, _ = api("POST", "/invoices", {"customer_id": customer["id"], "lines": list(lines)})
    assert status == 201, body
    return body


def finalize(api, invoice_id: str) -> dict[str, Any]:
    status, body, _ = api("POST", f"/invoices/{invoice_id}/finalize")
    assert status == 200, body
    return body


def snapshot(api, invoice_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The invoice and its audit trail, to show that a refused finalization changed nothing."""
    _, invoice, _ = api("GET", f"/invoices/{invoice_id}")
    _, events, _ = api("GET", f"/invoices/{invoice_id}/events")
    return invoice, events


def taxes(invoice) -> list[tuple[str | None, str | None, bool | None, int | None]]:
    return [(ln["tax_rate_id"], ln["tax_percentage"], ln["tax_inclusive"], ln["tax_cents"]) for ln in invoice["lines"]]


# ---------------------------------------------------------------- default tax service, per currency kind
class TestFinalizeWithTaxRates:
    def test_usd_exclusive_tax_is_rounded_half_up_per_line_then_summed(self, api, customer):
        # Given two USD lines of 10.05 at 10 % exclusive (10.05 x 10 % = 1.005 -> 1.01 each, half-up)
        rate = create_rate(api, "10", inclusive=False)
        draft = create_draft(api, customer, line(1005, rate["id"]), line(1005, rate["id"]))
        # When finalized
        inv = finalize(api, draft["id"])
        # Then each line keeps its own rounded tax, the invoice tax is their sum (202, not round(201.0))
        assert taxes(inv) == [(rate["id"], "10.0000", False, 101)] * 2
        assert (inv["subtotal_cents"], inv["tax_cents"], inv["total_cents"]) == (2010, 202, 2212)
        assert inv["amount_remaining_cents"] == 2212
        # USD needs no lookup: rate 1, identity
        assert inv["usd_total_cents"] == 2212 and inv["fx_rate"] == "1" and inv["fx_rate_source"] == "identity"

    def test_eur_inclusive_tax_is_carved_out_and_converted_at_the_locked_rate(self, api):
        # Given a EUR customer (the invoice takes the customer's currency) and 19 % inclusive VAT
        eur = create_customer(api, "EUR")
        rate = create_rate(api, "19", inclusive=True, name="MwSt")
        set_fx(api, "EUR", "1.08")
        draft = create_draft(api, eur, line(11900, rate["id"]), line(999, rate["id"]))
        assert draft["currency"] == "EUR"
        # When finalized
        inv = finalize(api, draft["id"])
        # Then tax = round(amount x 19/119): 1900 and 159.5 -> 160; the total is the amounts (tax inside)
        assert sorted(taxes(inv)) == [(rate["id"], "19.0000", True, 160), (rate["id"], "19.0000", True, 1900)]
        assert (inv["subtotal_cents"], inv["tax_cents"], inv["total_cents"]) == (12899, 2060, 12899)
        assert inv["lines"][0]["tax_display_name"] == "MwSt"
        # and USD value = 128.99 EUR x 1.08 = 139.3092 -> 13931 cents, with the rate's source and date
        assert inv["usd_total_cents"] == 13931
        assert (inv["fx_rate"], inv["fx_rate_source"], inv["fx_rate_as_of"]) == (
            "1.08",
            "ecb",
            "2026-11-24T00:00:00.000Z",
        )

    def test_jpy_has_no_decimals(self, api):
        # Given 3 x ¥1235 at 10 % exclusive: ¥3705, tax 370.5 -> ¥371 (half-up)
        jpy = create_customer(api, "JPY")
        rate = create_rate(api, "10", inclusive=False)
        set_fx(api, "JPY", "0.0067")
        draft = create_draft(api, jpy, line(1235, rate["id"], quantity="3"))
        inv = finalize(api, draft["id"])
        assert inv["currency"] == "JPY"
        assert (inv["subtotal_cents"], inv["tax_cents"], inv["total_cents"]) == (3705, 371, 4076)
        # ¥4076 x 0.0067 = $27.3092 -> 2731 cents
        assert inv["usd_total_cents"] == 2731 and inv["fx_rate"] == "0.0067"

    def test_kwd_has_three_decimals(self, api):
        # Given 1.234 KWD (1234 fils) with 5 % inclusive: tax = 1234 x 5/105 = 58.76 -> 59 fils
        kwd = create_customer(api, "KWD")
        rate = create_rate(api, "5", inclusive=True)
        set_fx(api, "KWD", "3.25")
        draft = create_draft(api, kwd, line(1234, rate["id"]))
        inv = finalize(api, draft["id"])
        assert (inv["subtotal_cents"], inv["tax_cents"], inv["total_cents"]) == (1234, 59, 1234)
        # 1.234 KWD x 3.25 = $4.0105 -> 401 cents
        assert inv["usd_total_cents"] == 401 and inv["fx_rate"] == "3.25"

    def test_discount_line_carries_negative_tax_and_mixed_rates_add_only_exclusive_tax(self, api, customer):
        # Given a line with 19 % inclusive tax, one with 10 % exclusive, a taxed discount and an untaxed line
        incl = create_rate(api, "19", inclusive=True)
        excl = create_rate(api, "10", inclusive=False)
        draft = create_draft(
            api,
            customer,
            line(11900, incl["id"], description="Inclusive"),
            line(10000, excl["id"], description="Exclusive"),
            line(-1005, excl["id"], description="Discount"),
            line(500, description="Untaxed"),
        )
        inv = finalize(api, draft["id"])
        by_name = {ln["description"]: ln for ln in inv["lines"]}
        # Then the discount's tax is -100.5 -> -101 (halves away from zero), an untaxed line has 0 tax
        assert {name: ln["tax_cents"] for name, ln in by_name.items()} == {
            "Inclusive": 1900,
            "Exclusive": 1000,
            "Discount": -101,
            "Untaxed": 0,
        }
        assert by_name["Untaxed"]["tax_rate_id"] is None and by_name["Untaxed"]["tax_percentage"] == "0.0000"
        # subtotal = Σ amounts; tax = Σ line tax; total = subtotal + exclusive tax only
        assert inv["subtotal_cents"] == 11900 + 10000 - 1005 + 500
        assert inv["tax_cents"] == 1900 + 1000 - 101
        assert inv["total_cents"] == inv["subtotal_cents"] + 1000 - 101

    def test_negative_total_after_tax_is_rejected_and_nothing_changes(self, api, customer):
        rate = create_rate(api, "10", inclusive=False)
        draft = create_draft(api, customer, line(1000, rate["id"]), line(-1100, rate["id"]))
        before = snapshot(api, draft["id"])
        status, body, _ = api("POST", f"/invoices/{draft['id']}/finalize")
        assert status == 409 and "below zero" in body["error"]["message"]
        assert snapshot(api, draft["id"]) == before


class TestRatesChangeUntilFinalization:
    def test_finalize_reads_the_edited_rate_and_freezes_it(self, api, customer):
        # Given a draft made while the (unused) rate was 19 %
        rate = create_rate(api, "19", inclusive=False)
        draft = create_draft(api, customer, line(10000, rate["id"]))
        assert draft["lines"][0]["tax_percentage"] == "19.0000" and draft["lines"][0]["tax_cents"] == 1900
        # When the rate is edited to 21 % before finalization
        status, edited, _ = api("PATCH", f"/tax-rates/{rate['id']}", {"percentage": "21"})
        assert status == 200 and edited["used"] is False
        inv = finalize(api, draft["id"])
        # Then finalization recomputed with 21 % and froze it
        assert taxes(inv) == [(rate["id"], "21.0000", False, 2100)]
        assert inv["tax_cents"] == 2100 and inv["total_cents"] == 12100
        # and the rate is now used: further edits are refused, the invoice keeps its frozen result
        _, used, _ = api("GET", f"/tax-rates/{rate['id']}")
        assert used["used"] is True
        status, body, _ = api("PATCH", f"/tax-rates/{rate['id']}", {"percentage": "25"})
        assert status == 409 and body["error"]["code"] == "tax_rate_in_use"
        status, _, _ = api("PATCH", f"/tax-rates/{rate['id']}", {"active": False})
        assert status == 200
        _, again, _ = api("GET", f"/invoices/{inv['id']}")
        assert taxes(again) == taxes(inv) and again["total_cents"] == 12100

    def test_an_edit_between_the_reads_and_the_commit_makes_finalize_read_again(self, api, customer, monkeypatch):
        # Given finalize has read the (unused) rate at 19 %, and the rate is edited to 21 % right after
        from invoicing.root import get_services

        rate = create_rate(api, "19", inclusive=False)
        draft = create_draft(api, customer, line(10000, rate["id"]))
        repo, edits = get_services().repo, []
        read = repo.finalize_inputs

        def read_then_edit(*args: Any, **kwargs: Any) -> Any:
            inputs = read(*args, **kwargs)
            if not edits:
                edits.append(api("PATCH", f"/tax-rates/{rate['id']}", {"percentage": "21"})[0])
            return inputs

        monkeypatch.setattr(repo, "finalize_inputs", read_then_edit)
        # When finalizing: the first transaction's rate condition fails, and finalize reads again
        inv = finalize(api, draft["id"])
        # Then the invoice froze what the rate was when it committed, and the rate is used from then on
        assert edits == [200]
        assert taxes(inv) == [(rate["id"], "21.0000", False, 2100)]
        _, used, _ = api("GET", f"/tax-rates/{rate['id']}")
        assert used["used"] is True and used["percentage"] == "21.0000"

    def test_a_finalization_between_the_edits_read_and_its_write_refuses_the_edit(self, api, customer, monkeypatch):
        # Given an edit that read the rate while it was unused, and a finalization that uses it right after
        from invoicing.root import get_services

        rate = create_rate(api, "19", inclusive=False)
        draft = create_draft(api, customer, line(10000, rate["id"]))
        rates, finalized = get_services().tax_rates, []
        read = rates.get

        def read_then_finalize(rate_id: str) -> Any:
            current = read(rate_id)
            if not finalized:
                finalized.append(finalize(api, draft["id"]))
            return current

        monkeypatch.setattr(rates, "get", read_then_finalize)
        # When the edit commits
        status, body, _ = api("PATCH", f"/tax-rates/{rate['id']}", {"percentage": "21"})
        monkeypatch.undo()
        # Then its write is refused by the "never used" condition, and the invoice's frozen 19 % stands
        assert status == 409 and body["error"]["code"] == "tax_rate_in_use"
        _, now, _ = api("GET", f"/tax-rates/{rate['id']}")
        assert now["used"] is True and now["percentage"] == "19.0000"
        assert taxes(finalized[0]) == [(rate["id"], "19.0000", False, 1900)]

    def test_dozens_of_rates_used_for_the_first_time_fit_dynamodbs_transaction_limit(self, api, customer):
        # Given a customer holding a balance (the finalization also writes it, its ledger entry and one
        # more event), and a draft of 95 lines (the most a draft holds), each with a rate never used
        give_balance(api, customer, 5000)
        rates = [create_rate(api, f"{n % 20 + 1}", inclusive=False, name=f"R{n}") for n in range(95)]
        draft = create_draft(api, customer, *[line(1000 + n, r["id"]) for n, r in enumerate(rates)])
        # When finalizing: more first uses than the finalization's own transaction takes beside its
        # other items (they are frozen first, in a transaction of their own)
        inv = finalize(api, draft["id"])
        # Then it is finalized with the balance applied, and every rate is used
        assert inv["status"] == "open" and len(inv["lines"]) == 95 and inv["applied_balance_cents"] == 5000
        _, listed, _ = api("GET", "/tax-rates")
        mine = {r["id"] for r in rates}
        assert [r["used"] for r in listed["data"] if r["id"] in mine] == [True] * 95

    def test_a_rate_archived_after_the_line_was_added_is_still_used_at_finalize(self, api, customer):
        # Given a draft line whose rate is archived before finalization (as Stripe does)
        rate = create_rate(api, "7", inclusive=False)
        draft = create_draft(api, customer, line(10000, rate["id"]))
        api("PATCH", f"/tax-rates/{rate['id']}", {"active": False})
        # When finalized, Then the archived rate still applies and is frozen
        inv = finalize(api, draft["id"])
        assert taxes(inv) == [(rate["id"], "7.0000", False, 700)]


class TestExchangeRateAtFinalization:
    def test_missing_rate_is_409_and_nothing_changes(self, api):
        # Given a CHF invoice and no CHF rate
        chf = create_customer(api, "CHF")
        rate = create_rate(api, "8.1", inclusive=False)
        draft = create_draft(api, chf, line(10000, rate["id"]))
        before = snapshot(api, draft["id"])
        # When finalized, Then 409 exchange_rate_missing
        status, body, _ = api("POST", f"/invoices/{draft['id']}/finalize")
        assert status == 409 and body["error"]["code"] == "exchange_rate_missing"
        # and nothing changed: still the same draft, same events, the rate not marked used
        assert snapshot(api, draft["id"]) == before
        _, tax_rate, _ = api("GET", f"/tax-rates/{rate['id']}")
        assert tax_rate["used"] is False
        # When the rate is set, Then finalization takes the first number of the year
        set_fx(api, "CHF", "1.13")
        inv = finalize(api, draft["id"])
        assert inv["invoice_number"].endswith("-00001")
        assert inv["usd_total_cents"] == 12215  # 108.10 CHF x 1.13 = 122.153 -> 12215

    def test_the_usd_value_is_locked_at_finalization(self, api):
        # Given an invoice finalized at 1.08
        eur = create_customer(api, "EUR")
        set_fx(api, "EUR", "1.08")
        inv = finalize(api, create_draft(api, eur, line(10000))["id"])
        assert inv["usd_total_cents"] == 10800
        # When the rate changes later, Then the invoice is never re-converted
        set_fx(api, "EUR", "1.20", source="manual")
        _, again, _ = api("GET", f"/invoices/{inv['id']}")
        assert (again["usd_total_cents"], again["fx_rate"], again["fx_rate_source"]) == (10800, "1.08", "ecb")
        # while a new invoice takes the new rate
        newer = finalize(api, create_draft(api, eur, line(10000))["id"])
        assert newer["usd_total_cents"] == 12000 and newer["fx_rate"] == "1.2"


# ---------------------------------------------------------------- the external HTTP tax service
def give_balance(api, customer, cents: int) -> None:
    """A paid invoice credited to the customer's balance: the customer then holds `cents`."""
    paid = finalize(api, create_draft(api, customer, line(cents))["id"])
    status, body, _ = api(
        "POST", f"/invoices/{paid['id']}/payments", {"amount_cents": cents, "method": "bank_transfer"}
    )
    assert status in (200, 201), body
    note = {"amount_cents": cents, "reason": "order_change", "method": "customer_balance"}
    status, body, _ = api("POST", f"/invoices/{paid['id']}/credit-notes", note)
    assert status == 201, body


def without_url(invoice: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in invoice.items() if k != "payment_url"}  # shown once, by finalize only


class TestTheFinalizeResponseIsTheCommittedInvoice:
    """Finalize answers from what it wrote, without reading the invoice back: that answer must be the
    invoice exactly as GET reads it, whatever the taxes, currency and customer balance."""

    @pytest.mark.parametrize("currency", ["USD", "JPY", "EUR"])
    def test_taxed_lines_in_any_currency(self, api, currency):
        customer = create_customer(api, currency)
        if currency != "USD":
            set_fx(api, currency, "0.0067" if currency == "JPY" else "1.08")
        exclusive, inclusive = create_rate(api, "19", False), create_rate(api, "7", True, "reduced")
        draft = create_draft(
            api, customer, line(10000, exclusive["id"]), line(5350, inclusive["id"], "3"), line(999, None)
        )
        inv = finalize(api, draft["id"])
        _, again, _ = api("GET", f"/invoices/{inv['id']}")
        assert without_url(inv) == without_url(again)

    def test_a_customer_balance_applied_in_full(self, api):
        customer = create_customer(api, "USD")
        give_balance(api, customer, 5000)
        inv = finalize(api, create_draft(api, customer, line(3000))["id"])  # the balance pays it all
        _, again, _ = api("GET", f"/invoices/{inv['id']}")
        assert inv["status"] == "paid" and inv["applied_balance_cents"] == 3000
        assert without_url(inv) == without_url(again)


class FakeTaxService:
    """A real HTTP server on 127.0.0.1 (free port, own thread). `mode` picks how it answers."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.percentage: Any = "19"
        self.inclusive: Any = False
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                if fake.mode == "timeout":
                    fake.release.wait(5)
                    return
                if fake.mode == "error":
                    self._send(500, b'{"message": "internal error"}')
                elif fake.mode == "garbage":
                    self._send(200, b"<html>not json</html>")
                elif fake.mode == "malformed":
                    self._send(200, json.dumps({"lines": [{"id": ln["id"]} for ln in body["lines"]]}).encode())
                else:
                    answer = {
                        "lines": [
                            {
                                "id": ln["id"],
                                "percentage": fake.percentage,
                                "inclusive": fake.inclusive,
                                "display_name": "USt",
                                "tax_rate_id": f"ext_{ln['tax_code']}" if ln["tax_code"] else None,
                            }
                            for ln in body["lines"]
                        ]
                    }
                    self._send(200, json.dumps(answer).encode())

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/calculate"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeTaxService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def tax_service(aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTaxService]:
    """TAX_SERVICE=http pointing at a FakeTaxService; the services are rebuilt from the new settings."""
    from invoicing import root

    with FakeTaxService() as fake:
        monkeypatch.setenv("TAX_SERVICE", "http")
        monkeypatch.setenv("TAX_SERVICE_URL", fake.url)
        monkeypatch.setenv("TAX_SERVICE_TIMEOUT_SECONDS", "0.3")
        root.reset()
        yield fake
        root.reset()


class TestHttpTaxService:
    def test_success_freezes_the_services_answer(self, api, customer, tax_service):
        # Given a draft (its preview comes from the service too)
        draft = create_draft(api, customer, line(10000, "standard"), line(1005))
        assert sorted(ln["tax_cents"] for ln in draft["lines"]) == [191, 1900]
        # When finalized
        inv = finalize(api, draft["id"])
        # Then the service was told the customer and the line amounts, and its rates are frozen,
        # with the tax computed here under our rounding rule (1005 x 19 % = 190.95 -> 191)
        sent = tax_service.requests[-1]
        assert sent["currency"] == "USD" and sent["customer"]["country"] == "DE"
        assert sorted((ln["amount_cents"], str(ln["tax_code"])) for ln in sent["lines"]) == [
            (1005, "None"),
            (10000, "standard"),
        ]
        assert set(taxes(inv)) == {(None, "19.0000", False, 191), ("ext_standard", "19.0000", False, 1900)}
        assert inv["lines"][0]["tax_display_name"] == "USt"
        assert (inv["subtotal_cents"], inv["tax_cents"], inv["total_cents"]) == (11005, 2091, 13096)
        # and a later change at the service never reaches the issued invoice
        tax_service.percentage = "25"
        _, again, _ = api("GET", f"/invoices/{inv['id']}")
        assert taxes(again) == taxes(inv) and again["total_cents"] == 13096

    def test_inclusive_answer(self, api, customer, tax_service):
        tax_service.percentage, tax_service.inclusive = "7.7", True
        inv = finalize(api, create_draft(api, customer, line(10770))["id"])
        assert taxes(inv) == [(None, "7.7000", True, 770)]
        assert inv["total_cents"] == 10770

    @pytest.mark.parametrize("mode", ["error", "garbage", "malformed", "bad_inclusive", "bad_percentage", "timeout"])
    def test_failure_is_503_and_nothing_changes(self, api, customer, tax_service, mode):
        # Given a draft made while the service worked
        draft = create_draft(api, customer, line(10000, "standard"))
        before = snapshot(api, draft["id"])
        # When the service fails (500, not JSON, missing fields, "false" for a boolean, a bad
        # percentage, or no answer within the timeout) during finalization
        if mode == "bad_inclusive":
            tax_service.inclusive = "false"
        elif mode == "bad_percentage":
            tax_service.percentage = "nineteen"
        else:
            tax_service.mode = mode
        status, body, _ = api("POST", f"/invoices/{draft['id']}/finalize")
        # Then 503 tax_service_unavailable and the invoice is untouched: a draft, no number, same events
        assert status == 503, body
        assert body["error"]["code"] == "tax_service_unavailable"
        assert snapshot(api, draft["id"]) == before
        # When the service is back, Then no number was consumed: this is the year's first
        tax_service.mode, tax_service.percentage, tax_service.inclusive = "ok", "19", False
        tax_service.release.set()
        inv = finalize(api, draft["id"])
        assert inv["invoice_number"].endswith("-00001")
        assert inv["tax_cents"] == 1900
