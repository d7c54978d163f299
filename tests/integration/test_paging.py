"""Cursor paging: every page is reachable, and a cursor only works with the listing it came from.

A cursor is a DynamoDB key. Used with another listing (another customer, another status, another
index) it would reach DynamoDB as an invalid ExclusiveStartKey, a 500; it is a 422 instead.
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
    def test_a_cursor_from_another_listing_is_a_422(self, api, customer, listing):
        _drafts(api, customer["id"], 3)
        other = _other_customer(api)
        _drafts(api, other["id"], 1)
        _, by_customer, _ = api("GET", "/invoices", query={"customer_id": customer["id"], "limit": "1"})
        _, by_status, _ = api("GET", "/invoices", query={"status": "draft", "limit": "1"})
        query = {
            "other customer": {"customer_id": other["id"], "starting_after": by_customer["next_cursor"]},
            "status listing": {"status": "open", "starting_after": by_status["next_cursor"]},
            "customer listing": {"customer_id": customer["id"], "starting_after": by_status["next_cursor"]},
        }[listing]
        status, body, _ = api("GET", "/invoices", query=query)
        assert status == 422, body
        assert body["error"]["code"] == "validation_error" and "starting_after" in body["error"]["message"]


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

    def test_a_cursor_of_another_customer_or_listing_is_a_422(self, api, customer):
        other = _other_customer(api)
        _drafts(api, customer["id"], 2)
        _, invoices, _ = api("GET", "/invoices", query={"customer_id": customer["id"], "limit": "1"})
        from invoicing.store.cursor import encode_cursor

        # a key of the customer's own partition, but of another item kind (its invoice counter)
        own_counter = encode_cursor({"pk": {"S": f"CUSTOMER#{other['id']}"}, "sk": {"S": "SEQ#INV#2026"}})
        for cursor in (invoices["next_cursor"], own_counter, "e30", "not base64!"):
            status, body, _ = api(
                "GET", f"/customers/{other['id']}/balance-transactions", query={"starting_after": cursor}
            )
            assert status == 422 and body["error"]["code"] == "validation_error", (cursor, body)

    def test_bad_limits_are_a_422(self, api, customer):
        for limit in ("0", "101", "x"):
            status, body, _ = api("GET", f"/customers/{customer['id']}/balance-transactions", query={"limit": limit})
            assert status == 422, body
