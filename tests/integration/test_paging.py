"""Cursor paging: every page is reachable, and a cursor is a position.

A cursor is the created_at and id of the last item of a page ("2026-11-24T10:00:00.123Z~in_..."). Used
with another listing (another customer, another status) it is the same point in time there: the next
page starts after it. So every text of the documented pattern is a valid cursor, and only text outside
it is a 422 (the API document states the pattern; no request it admits is refused).
"""

from __future__ import annotations

import pytest

LINE = {"description": "Seat", "quantity": "1", "unit_amount_cents": 1000}


def _drafts(api, customer_id, n):  # type: ignore[no-untyped-def]
    for _ in range(n):
        status, body, _ = api("POST", "/invoices", {"customer_id": customer_id, "lines": [LINE]})
        assert status == 201, body


def _walk(api, path, query):  # type: ignore[no-untyped-def]
    seen, cursor = [], None
    for _ in range(50):
        status, page, _ = api("GET", path, query={**query, **({"starting_after": cursor} if cursor else {})})
        assert status == 200, page
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if cursor is None:
            return seen
    raise AssertionError("more than 50 pages")


def _other_customer(api):  # type: ignore[no-untyped-def]
    status, other, _ = api("POST", "/customers", {"name": "Other", "email": "other@example.test"})
    assert status == 201
    return other


class TestInvoiceCursors:
    def test_pages_cover_every_invoice_once(self, api, customer):
        _drafts(api, customer["id"], 5)
        by_customer = _walk(api, "/invoices", {"customer_id": customer["id"], "limit": "2"})
        by_status = _walk(api, "/invoices", {"status": "draft", "limit": "2"})
        assert len(by_customer) == len(set(by_customer)) == 5
        assert sorted(by_status) == sorted(by_customer)

    @pytest.mark.parametrize("listing", ["other customer", "status listing", "customer listing"])
    def test_a_cursor_used_with_another_listing_is_the_same_position_there(self, api, customer, listing):
        # Given drafts of two customers, created one after the other
        _drafts(api, customer["id"], 3)
        other = _other_customer(api)
        _drafts(api, other["id"], 1)
        _, by_customer, _ = api("GET", "/invoices", query={"customer_id": customer["id"], "limit": "1"})
        _, by_status, _ = api("GET", "/invoices", query={"status": "draft", "limit": "1"})
        query, cursor = {
            "other customer": ({"customer_id": other["id"]}, by_customer["next_cursor"]),
            "status listing": ({"status": "draft"}, by_customer["next_cursor"]),
            "customer listing": ({"customer_id": customer["id"]}, by_status["next_cursor"]),
        }[listing]
        # When the cursor of one listing is used with another
        status, page, _ = api("GET", "/invoices", query={**query, "starting_after": cursor})
        # Then the page holds that listing's invoices created before the cursor's position, newest first
        assert status == 200, page
        position = cursor.split("~")[0]
        _, everything, _ = api("GET", "/invoices", query={**query, "limit": "100"})
        older = [i["id"] for i in everything["data"] if (i["created_at"], i["id"]) < (position, cursor.split("~")[1])]
        assert [i["id"] for i in page["data"]] == older[:20]

    @pytest.mark.parametrize("cursor", ["e30", "not a cursor!", "2026-11-24T10:00:00.123Z", "2026-11-24~in_1"])
    def test_text_that_is_not_a_cursor_is_a_422(self, api, customer, cursor):
        status, body, _ = api("GET", "/invoices", query={"customer_id": customer["id"], "starting_after": cursor})
        assert status == 422, body
        assert body["error"]["code"] == "validation_error" and "starting_after" in body["error"]["message"]

    def test_a_made_up_position_is_a_position(self, api, customer):
        # Given three drafts, When paging from a position no invoice has (the far future)
        _drafts(api, customer["id"], 3)
        cursor = "9999-12-31T23:59:59.999Z~in_none"
        status, page, _ = api("GET", "/invoices", query={"customer_id": customer["id"], "starting_after": cursor})
        # Then every invoice is older than it
        assert status == 200 and len(page["data"]) == 3, page


class TestBalanceLedgerPaging:
    def test_the_whole_ledger_is_reachable(self, api, customer):
        # Given 7 ledger entries (credit notes to the customer balance on one paid invoice)
        _, draft, _ = api(
            "POST",
            "/invoices",
            {"customer_id": customer["id"], "lines": [{"description": "X", "quantity": 1, "unit_amount_cents": 70000}]},
        )
        _, invoice, _ = api("POST", f"/invoices/{draft['id']}/finalize")
        api("POST", f"/invoices/{invoice['id']}/payments", {"amount_cents": 70000, "method": "cash"})
        for _ in range(7):
            status, note, _ = api(
                "POST",
                f"/invoices/{invoice['id']}/credit-notes",
                {"amount_cents": 1000, "reason": "other", "method": "customer_balance"},
            )
            assert status == 201, note
        # When it is read 3 at a time
        path = f"/customers/{customer['id']}/balance-transactions"
        ids = _walk(api, path, {"limit": "3"})
        # Then every entry comes once, newest first, and they sum to the balance
        _, everything, _ = api("GET", path, query={"limit": "100"})
        assert ids == [t["id"] for t in everything["data"]] and len(ids) == 7
        _, current, _ = api("GET", f"/customers/{customer['id']}")
        assert sum(t["amount_cents"] for t in everything["data"]) == current["balances"]["USD"] == 7000

    def test_text_that_is_not_a_cursor_is_a_422_and_any_position_is_one(self, api, customer):
        other = _other_customer(api)
        for cursor in ("e30", "not base64!", "BALTXN#2026-11-24T10:00:00.123Z#btx_1"):
            status, body, _ = api(
                "GET", f"/customers/{other['id']}/balance-transactions", query={"starting_after": cursor}
            )
            assert status == 422 and body["error"]["code"] == "validation_error", (cursor, body)
        # an invoice listing's cursor is a position in the ledger too
        _drafts(api, customer["id"], 2)
        _, invoices, _ = api("GET", "/invoices", query={"customer_id": customer["id"], "limit": "1"})
        path = f"/customers/{other['id']}/balance-transactions"
        status, body, _ = api("GET", path, query={"starting_after": invoices["next_cursor"]})
        assert status == 200 and body["data"] == [], body

    def test_bad_limits_are_a_422(self, api, customer):
        for limit in ("0", "101", "x"):
            status, body, _ = api("GET", f"/customers/{customer['id']}/balance-transactions", query={"limit": limit})
            assert status == 422, body
