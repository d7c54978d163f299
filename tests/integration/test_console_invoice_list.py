"""The console's invoice list: status, customer, due range, overdue and number are applied by
DynamoDB over the whole listing (not only the page shown), reads stay bounded, and the totals say
which invoices they cover.

Given open and paid invoices with due dates weeks apart, when a person filters the list or exports
it, then they see every match in the listing and only the matches.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.support.builders import open_invoice_of
from tests.support.console import browser

TODAY = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
INVOICES = ("paid", "late", "recent", "due-soon", "fresh", "globex")


@pytest.fixture
def ledger(console, monkeypatch):  # type: ignore[no-untyped-def]
    """Acme's invoices finalized 100, 60, 40, 20 and 0 days ago (due 30 days later: 70 and 30 and 10
    days ago, in 10 and in 30 days), the oldest paid; then Globex's one open invoice, due in 30 days."""
    from invoicing import clock
    from invoicing.root import get_services
    from invoicing.use_cases import customers

    svc = get_services()
    acme = customers.create_customer(svc, name="Acme GmbH", email="ap@acme.test", currency="USD")
    globex = customers.create_customer(svc, name="Globex", email="ap@globex.test", currency="USD")
    made: dict[str, Any] = {"console": console, "acme": acme, "globex_customer": globex}
    plan = (
        (100, "paid", True),
        (60, "late", False),
        (40, "recent", False),
        (20, "due-soon", False),
        (0, "fresh", False),
    )
    for n, (days, name, paid) in enumerate(plan):
        monkeypatch.setattr(clock, "now", lambda d=days, n=n: TODAY - timedelta(days=d, seconds=-n))
        made[name] = open_invoice_of(svc, acme.id, 1000 * (n + 1), paid=paid)
    monkeypatch.setattr(clock, "now", lambda: TODAY + timedelta(seconds=10))
    made["globex"] = open_invoice_of(svc, globex.id, 5000)
    monkeypatch.setattr(clock, "now", lambda: TODAY + timedelta(minutes=1))
    assert made["late"].due_date == (TODAY - timedelta(days=30)).date()
    return made


def _shown(page: str, ledger: dict[str, Any]) -> set[str]:
    return {name for name in INVOICES if f'/console/invoices/{ledger[name].id}"' in page}


def test_overdue_due_range_customer_and_number_are_applied_to_the_whole_listing(ledger):
    b = browser(ledger["console"], "viewer@acme.example")
    acme = ledger["acme"].id
    cases = [
        ({}, {"late", "recent", "due-soon", "fresh", "globex"}),
        ({"overdue": "1"}, {"late", "recent"}),
        ({"due_from": "2026-06-16", "due_to": "2026-06-30"}, {"due-soon"}),
        ({"due_to": "2026-05-31"}, {"late"}),
        ({"customer_id": acme}, {"paid", "late", "recent", "due-soon", "fresh"}),
        ({"customer_id": acme, "status": "paid"}, {"paid"}),
        ({"customer_id": acme, "status": "paid", "overdue": "1"}, {"late", "recent"}),
        ({"number": "00002"}, {"late"}),
        ({"number": "inv-2026-00001"}, {"globex"}),
        ({"number": "00001", "status": "paid"}, {"paid"}),
        ({"number": "00001", "customer_id": acme}, {"paid"}),
    ]
    for query, expected in cases:
        status, page, _ = b.get("/console/invoices", **query)
        assert status == 200, (query, page[:300])
        assert _shown(page, ledger) == expected, query


def test_the_totals_say_they_are_those_of_the_page(ledger):
    b = browser(ledger["console"], "viewer@acme.example")
    status, page, _ = b.get("/console/invoices", overdue="1")
    assert status == 200 and "Totals of the 2 invoices on this page:" in page
    totals = page.split("Totals of the 2 invoices on this page:")[1].split("</div>\n  </div>")[0]
    assert "total $50.00" in totals and "due $50.00" in totals, "late (20.00) + recent (30.00), nothing else"


@pytest.fixture
def one_shard(console, monkeypatch):  # type: ignore[no-untyped-def]
    """One status shard, so a page's read bound is one Query of SEARCH_READ_SIZE (with N shards it is N
    Queries of it, merged: tests/integration/test_sharded_listing.py pages across shards)."""
    from invoicing import root
    from invoicing.store import keys

    monkeypatch.setenv("INDEX_SHARDS", "1")
    root.reset()
    yield
    keys.configure_index_shards(keys.DEFAULT_INDEX_SHARDS)


def test_a_rare_match_ends_a_page_at_the_read_bound_and_the_search_goes_on_from_there(one_shard, ledger, monkeypatch):
    from invoicing.use_cases import invoices

    monkeypatch.setattr(invoices, "SEARCH_READ_SIZE", 2)
    b = browser(ledger["console"], "viewer@acme.example")
    query: dict[str, str] = {"number": "00002"}
    pages = []
    for _ in range(5):
        status, page, _ = b.get("/console/invoices", **query)
        assert status == 200
        pages.append(page)
        if "Search further" not in page:
            break
        assert "looked at 2 invoices" in page
        link = page.split("Search further")[0].rsplit('href="/test/console/invoices?', 1)[1].split('"')[0]
        query = dict(parse_qsl(link.replace("&amp;", "&")))
    found = [n for n, page in enumerate(pages) if _shown(page, ledger)]
    assert found == [2], "five open invoices, two read per page: the oldest ('late') on the third"
    assert _shown(pages[2], ledger) == {"late"}


def test_the_csv_export_carries_the_same_filters(ledger):
    b = browser(ledger["console"], "viewer@acme.example")
    status, body, headers = b.get("/console/invoices.csv", overdue="1")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert sorted(row["id"] for row in rows) == sorted([ledger["late"].id, ledger["recent"].id])


def test_a_due_range_that_ends_before_it_starts_is_a_422_next_to_its_field(ledger):
    b = browser(ledger["console"], "viewer@acme.example")
    status, page, _ = b.get("/console/invoices", due_from="2026-07-01", due_to="2026-06-01")
    assert status == 422 and "The range ends before it starts." in page and "Traceback" not in page
    status, _, _ = b.get("/console/invoices.csv", due_from="2026-07-01", due_to="2026-06-01")
    assert status == 422
