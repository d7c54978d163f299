"""/tax-rates and /exchange-rates through the real handler, against moto (rules in docs/money.md)."""

from __future__ import annotations

import pytest

from tests.support.builders import create_draft, finalize

VAT = {"display_name": "VAT", "percentage": "19", "inclusive": False, "country": "DE", "description": "Germany"}


def create_rate(api, **overrides):
    status, body, _ = api("POST", "/tax-rates", {**VAT, **overrides})
    assert status == 201, body
    return body


def line(rate_id=None, **extra):
    return {"description": "Consulting", "quantity": "1", "unit_amount_cents": 10000, "tax_rate_id": rate_id, **extra}


class TestCreateAndRead:
    def test_create_then_get_and_list(self, api):
        # Given nothing, When a tax rate is created
        rate = create_rate(api)
        # Then it is active, unused, and its percentage is a 4-place decimal string
        assert rate["id"].startswith("txr_")
        assert rate["percentage"] == "19.0000" and rate["inclusive"] is False
        assert rate["country"] == "DE" and rate["description"] == "Germany" and rate["jurisdiction"] is None
        assert rate["active"] is True and rate["used"] is False and rate["archived_at"] is None
        status, got, _ = api("GET", f"/tax-rates/{rate['id']}")
        assert status == 200 and got == rate
        status, page, _ = api("GET", "/tax-rates")
        assert status == 200 and rate in page["data"]

    def test_list_is_newest_first_and_filters_on_active(self, api):
        # Given an active and an archived rate
        first = create_rate(api, display_name="Reduced", percentage="7")
        archived = create_rate(api, display_name="Old", percentage="16", active=False)
        assert archived["active"] is False and archived["archived_at"]
        # When listing, Then newest comes first and `active` filters
        _, everything, _ = api("GET", "/tax-rates")
        ids = [r["id"] for r in everything["data"]]
        assert ids.index(archived["id"]) < ids.index(first["id"])
        _, active, _ = api("GET", "/tax-rates", query={"active": "true"})
        assert {r["id"] for r in active["data"]} == {first["id"]}
        _, inactive, _ = api("GET", "/tax-rates", query={"active": "false"})
        assert {r["id"] for r in inactive["data"]} == {archived["id"]}

    def test_percentage_accepts_an_integer_and_codes_are_spelled_as_the_document_lists_them(self, api):
        rate = create_rate(api, percentage=7, country="AT", inclusive=True)
        assert rate["percentage"] == "7.0000" and rate["country"] == "AT" and rate["inclusive"] is True
        # a float cannot carry an exact decimal, and "at" is not in the document's enum: both refused
        for overrides in ({"percentage": 7.65}, {"country": "at"}):
            body = {"display_name": "VAT", "percentage": "19", "inclusive": False, **overrides}
            status, err, _ = api("POST", "/tax-rates", body)
            assert status == 422 and err["error"]["details"][0]["field"] == next(iter(overrides)), err

    def test_unknown_rate_is_404(self, api):
        status, body, _ = api("GET", "/tax-rates/txr_nope")
        assert status == 404 and body["error"]["code"] == "tax_rate_not_found"
        status, body, _ = api("PATCH", "/tax-rates/txr_nope", {"active": False})
        assert status == 404 and body["error"]["code"] == "tax_rate_not_found"

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"percentage": "100.0001"}, "percentage"),
            ({"percentage": "-1"}, "percentage"),
            ({"percentage": "19.12345"}, "percentage"),
            ({"percentage": "nineteen"}, "percentage"),
            ({"percentage": "NaN"}, "percentage"),
            ({"percentage": True}, "percentage"),
            ({"country": "XX"}, "country"),
            ({"country": "EU"}, "country"),
            ({"country": "DEU"}, "country"),
            ({"display_name": ""}, "display_name"),
            ({"display_name": "   "}, "display_name"),
            ({"inclusive": "yes"}, "inclusive"),
            ({"rate": "19"}, "rate"),
        ],
    )
    def test_invalid_input_is_422_naming_the_field(self, api, overrides, field):
        status, body, _ = api("POST", "/tax-rates", {**VAT, **overrides})
        assert status == 422, body
        assert body["error"]["code"] == "validation_error"
        assert body["error"]["details"][0]["field"] == field, body

    def test_inclusive_is_required(self, api):
        status, body, _ = api("POST", "/tax-rates", {"display_name": "VAT", "percentage": "19"})
        assert status == 422 and body["error"]["details"][0]["field"] == "inclusive"


class TestEditUnusedRate:
    def test_terms_can_change_while_unused(self, api):
        # Given an unused rate
        rate = create_rate(api)
        # When its terms change
        status, body, _ = api(
            "PATCH",
            f"/tax-rates/{rate['id']}",
            {"percentage": "20", "inclusive": True, "display_name": "MwSt", "jurisdiction": "BY"},
        )
        # Then the new terms are stored
        assert status == 200, body
        assert body["percentage"] == "20.0000" and body["inclusive"] is True
        assert body["display_name"] == "MwSt" and body["jurisdiction"] == "BY"
        _, got, _ = api("GET", f"/tax-rates/{rate['id']}")
        assert got == body

    def test_null_clears_optional_fields_and_leaves_required_ones(self, api):
        rate = create_rate(api, jurisdiction="BE")
        status, body, _ = api(
            "PATCH", f"/tax-rates/{rate['id']}", {"description": None, "country": None, "percentage": None}
        )
        assert status == 200, body
        assert body["description"] is None and body["country"] is None and body["jurisdiction"] == "BE"
        assert body["percentage"] == "19.0000"

    def test_invalid_edit_is_422(self, api):
        rate = create_rate(api)
        status, body, _ = api("PATCH", f"/tax-rates/{rate['id']}", {"percentage": "101"})
        assert status == 422 and body["error"]["details"][0]["field"] == "percentage"
        status, body, _ = api("PATCH", f"/tax-rates/{rate['id']}", {"used": False})
        assert status == 422 and body["error"]["details"][0]["field"] == "used"


class TestUsedRate:
    def test_a_used_rate_is_only_archived_never_edited(self, api, customer):
        # Given a rate used on a finalized invoice
        rate = create_rate(api)
        finalize(api, create_draft(api, customer, line(rate["id"]))["id"])
        _, used, _ = api("GET", f"/tax-rates/{rate['id']}")
        assert used["used"] is True
        # When any term changes, Then 409 tax_rate_in_use and nothing changes
        for change in (
            {"percentage": "20"},
            {"display_name": "Other"},
            {"description": "x"},
            {"inclusive": True},
            {"country": "AT"},
            {"jurisdiction": "BY"},
            {"active": False, "percentage": "20"},
        ):
            status, body, _ = api("PATCH", f"/tax-rates/{rate['id']}", change)
            assert status == 409 and body["error"]["code"] == "tax_rate_in_use", (change, body)
        _, after, _ = api("GET", f"/tax-rates/{rate['id']}")
        assert after == used
        # a field sent with its current value is not an edit
        status, same, _ = api("PATCH", f"/tax-rates/{rate['id']}", {"percentage": "19.0", "country": "DE"})
        assert status == 200 and same == used
        # When archived, Then it is inactive (and may be restored: its terms cannot change anyway)
        status, archived, _ = api("PATCH", f"/tax-rates/{rate['id']}", {"active": False})
        assert status == 200 and archived["active"] is False and archived["archived_at"]
        assert archived["percentage"] == "19.0000"
        status, restored, _ = api("PATCH", f"/tax-rates/{rate['id']}", {"active": True})
        assert status == 200 and restored["active"] is True and restored["archived_at"] is None


class TestArchivedRateOnDraftLines:
    def test_an_archived_rate_cannot_be_put_on_a_new_or_edited_line(self, api, customer):
        # Given an archived rate and an active one
        archived = create_rate(api, active=False)
        active = create_rate(api)
        # When it is put on a new invoice's line, Then 409 (the rate's state) naming the line's field
        status, body, _ = api("POST", "/invoices", {"customer_id": customer["id"], "lines": [line(archived["id"])]})
        assert status == 409 and body["error"]["code"] == "tax_rate_archived"
        assert body["error"]["details"][0]["field"] == "lines.0.tax_rate_id"
        # ... on an added line
        draft = create_draft(api, customer, line(active["id"]))
        status, body, _ = api("POST", f"/invoices/{draft['id']}/lines", line(archived["id"]))
        assert status == 409 and body["error"]["code"] == "tax_rate_archived"
        # ... or on an edited line
        line_id = draft["lines"][0]["id"]
        status, body, _ = api("PATCH", f"/invoices/{draft['id']}/lines/{line_id}", {"tax_rate_id": archived["id"]})
        assert status == 409 and body["error"]["code"] == "tax_rate_archived"
        _, unchanged, _ = api("GET", f"/invoices/{draft['id']}")
        assert unchanged["lines"] == draft["lines"] and unchanged["version"] == draft["version"]

    def test_unknown_rate_on_a_line_is_404(self, api, customer):
        status, body, _ = api("POST", "/invoices", {"customer_id": customer["id"], "lines": [line("txr_nope")]})
        assert status == 404 and body["error"]["code"] == "tax_rate_not_found"

    def test_a_line_keeps_a_rate_archived_meanwhile(self, api, customer):
        # Given a draft line with a rate that is archived afterwards
        rate = create_rate(api)
        draft = create_draft(api, customer, line(rate["id"]))
        api("PATCH", f"/tax-rates/{rate['id']}", {"active": False})
        # When another field of that line is edited, Then the line keeps its rate
        line_id = draft["lines"][0]["id"]
        status, body, _ = api("PATCH", f"/invoices/{draft['id']}/lines/{line_id}", {"quantity": "2"})
        assert status == 200, body
        assert body["lines"][0]["tax_rate_id"] == rate["id"] and body["lines"][0]["tax_cents"] == 3800


class TestExchangeRates:
    def test_put_then_get(self, api):
        # When a rate is set, Then it reads back as decimal text with a normalized timestamp
        status, body, _ = api(
            "PUT", "/exchange-rates/JPY", {"rate_to_usd": "0.0067", "source": "ecb", "as_of": "2026-11-24T00:00:00Z"}
        )
        assert status == 200, body
        assert body["currency"] == "JPY" and body["rate_to_usd"] == "0.0067" and body["source"] == "ecb"
        assert body["as_of"] == "2026-11-24T00:00:00.000Z" and body["updated_at"]
        status, got, _ = api("GET", "/exchange-rates/JPY")
        assert status == 200 and got == body

    def test_put_replaces_and_normalizes_the_rate(self, api):
        api("PUT", "/exchange-rates/EUR", {"rate_to_usd": "1.05", "source": "ecb", "as_of": "2026-11-23T00:00:00Z"})
        status, body, _ = api(
            "PUT",
            "/exchange-rates/EUR",
            {"rate_to_usd": "1.0800", "source": "manual", "as_of": "2026-11-24T01:00:00+01:00"},
        )
        assert status == 200 and body["currency"] == "EUR" and body["rate_to_usd"] == "1.08"
        assert body["as_of"] == "2026-11-24T00:00:00.000Z" and body["source"] == "manual"
        _, got, _ = api("GET", "/exchange-rates/EUR")
        assert got["rate_to_usd"] == "1.08"

    def test_a_code_in_lower_case_is_refused_as_the_document_says(self, api):
        body = {"rate_to_usd": "1.05", "source": "ecb", "as_of": "2026-11-23T00:00:00Z"}
        status, err, _ = api("PUT", "/exchange-rates/eur", body)
        assert status == 422 and err["error"]["details"][0]["field"] == "currency", err

    def test_usd_is_the_base(self, api):
        status, body, _ = api(
            "PUT", "/exchange-rates/USD", {"rate_to_usd": "1", "source": "ecb", "as_of": "2026-11-24T00:00:00Z"}
        )
        assert status == 422 and body["error"]["details"][0]["field"] == "currency"
        status, body, _ = api("GET", "/exchange-rates/USD")
        assert status == 200 and body["rate_to_usd"] == "1" and body["source"] == "identity"

    def test_missing_rate_is_404(self, api):
        status, body, _ = api("GET", "/exchange-rates/CHF")
        assert status == 404 and body["error"]["code"] == "exchange_rate_not_found"

    @pytest.mark.parametrize(
        ("currency", "body", "field"),
        [
            ("ABC", {"rate_to_usd": "1", "source": "ecb", "as_of": "2026-11-24T00:00:00Z"}, "currency"),
            ("DEM", {"rate_to_usd": "1", "source": "ecb", "as_of": "2026-11-24T00:00:00Z"}, "currency"),
            ("EUR", {"rate_to_usd": "0", "source": "ecb", "as_of": "2026-11-24T00:00:00Z"}, "rate_to_usd"),
            ("EUR", {"rate_to_usd": "-1.1", "source": "ecb", "as_of": "2026-11-24T00:00:00Z"}, "rate_to_usd"),
            ("EUR", {"rate_to_usd": "abc", "source": "ecb", "as_of": "2026-11-24T00:00:00Z"}, "rate_to_usd"),
            (
                "EUR",
                {"rate_to_usd": "1.0000000000001", "source": "ecb", "as_of": "2026-11-24T00:00:00Z"},
                "rate_to_usd",
            ),
            ("EUR", {"rate_to_usd": "1.08", "source": "", "as_of": "2026-11-24T00:00:00Z"}, "source"),
            ("EUR", {"rate_to_usd": "1.08", "source": "ecb", "as_of": "2026-11-24T00:00:00"}, "as_of"),
            ("EUR", {"rate_to_usd": "1.08", "source": "ecb", "as_of": "yesterday"}, "as_of"),
            ("EUR", {"rate_to_usd": "1.08", "as_of": "2026-11-24T00:00:00Z"}, "source"),
        ],
    )
    def test_invalid_put_is_422_naming_the_field(self, api, currency, body, field):
        status, err, _ = api("PUT", f"/exchange-rates/{currency}", body)
        assert status == 422, err
        assert err["error"]["details"][0]["field"] == field, err

    def test_invalid_currency_on_get_is_422(self, api):
        status, body, _ = api("GET", "/exchange-rates/XYZ")
        assert status == 422 and body["error"]["details"][0]["field"] == "currency"
