"""The console's customer list: every customer newest first, a search by name or e-mail, bounded reads.

Given customers in the table, when a person opens /console/customers (with or without a search), then
they see the matching customers linked to their pages, and a search never reads more than its bound
per page (it says how far it looked and offers to search further).
"""

from __future__ import annotations

from typing import Any

from tests.support.console import browser


def _customers(svc: Any, *names_and_emails: tuple[str, str]) -> list[Any]:
    from invoicing.use_cases import customers

    return [customers.create_customer(svc, name=n, email=e, currency="EUR") for n, e in names_and_emails]


def test_a_viewer_lists_customers_and_finds_one_by_name_word_or_email_prefix(console):
    from invoicing.root import get_services

    acme, globex, _initech = _customers(
        get_services(),
        ("Acme GmbH", "ap@acme.test"),
        ("Globex Corporation", "billing@globex.test"),
        ("Initech", "finance@initech.test"),
    )
    b = browser(console, "viewer@acme.example")
    status, page, _ = b.get("/console/customers")
    assert status == 200 and "3 customers on this page" in page
    assert page.index("Initech") < page.index("Globex") < page.index("Acme GmbH"), "newest first"
    assert f'/console/customers/{acme.id}"' in page

    for search in ("acm", "ACME", "gmbh", "ap@acme"):
        status, page, _ = b.get("/console/customers", q=search)
        assert status == 200 and "1 customer on this page" in page, search
        assert f'/console/customers/{acme.id}"' in page and globex.id not in page, search
    status, page, _ = b.get("/console/customers", q="corp")
    assert globex.id in page and acme.id not in page
    status, page, _ = b.get("/console/customers", q="cme")
    assert status == 200 and "No customer" in page and acme.id not in page, "a prefix, not a substring"


def test_a_search_reads_a_bounded_stretch_per_page_and_offers_to_search_further(console, monkeypatch):
    from invoicing.root import get_services
    from invoicing.use_cases import customers

    svc = get_services()
    (oldest,) = _customers(svc, ("Zeta Oldest", "z@zeta.test"))
    _customers(svc, *[(f"Filler {n}", f"f{n}@filler.test") for n in range(5)])
    monkeypatch.setattr(customers, "SEARCH_READ_SIZE", 2)
    monkeypatch.setattr(customers, "SEARCH_MAX_READS", 2)
    calls = []
    real = type(svc.repo).list_customers

    def counted(self, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        return real(self, **kwargs)

    monkeypatch.setattr(type(svc.repo), "list_customers", counted)
    b = browser(console, "viewer@acme.example")
    status, page, _ = b.get("/console/customers", q="zeta")
    assert status == 200 and oldest.id not in page and "searched 4" in page
    assert len(calls) == 2, "two Queries of two customers, then the page ends"
    further = page.split('href="/test/console/customers?')[-1].split('"')[0].replace("&amp;", "&")
    assert "Search further" in page and "cursor=" in further
    query = dict(part.split("=", 1) for part in further.split("&"))
    from urllib.parse import unquote_plus

    status, page, _ = b.get("/console/customers", **{k: unquote_plus(v) for k, v in query.items()})
    assert status == 200 and oldest.id in page and "1 customer on this page" in page
    assert "Search further" not in page, "the end of the list"


def test_a_cursor_that_is_not_one_is_a_422_in_plain_words(console):
    b = browser(console, "viewer@acme.example")
    status, page, _ = b.get("/console/customers", q="a", cursor="not-a-cursor")
    assert status == 422 and "Traceback" not in page and "cursor" in page


def test_the_id_lookup_still_opens_a_customer(console):
    from invoicing.root import get_services

    (acme,) = _customers(get_services(), ("Acme GmbH", "ap@acme.test"))
    b = browser(console, "viewer@acme.example")
    status, _, headers = b.get("/console/customers", id=acme.id)
    assert status == 303 and headers["Location"].endswith(f"/console/customers/{acme.id}")
