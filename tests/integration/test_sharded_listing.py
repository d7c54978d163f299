"""Listings over the sharded `STATUS#{status}#{shard}` index keys, through the API on moto: cursor
pages across shards return every invoice exactly once, newest first (docs/data-model.md)."""

from __future__ import annotations

import boto3
import pytest

from invoicing import root
from invoicing.store import keys
from tests.support.builders import create_draft

SHARDS = 3


@pytest.fixture
def three_shards(aws, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("INDEX_SHARDS", str(SHARDS))
    root.reset()
    yield
    keys.configure_index_shards(keys.DEFAULT_INDEX_SHARDS)


def page_ids(api, query):  # type: ignore[no-untyped-def]
    seen, cursor, pages = [], None, 0
    while True:
        status, page, _ = api("GET", "/invoices", query={**query, **({"starting_after": cursor} if cursor else {})})
        assert status == 200, page
        assert len(page["data"]) <= int(query["limit"])
        seen += [i["id"] for i in page["data"]]
        pages += 1
        if not page["has_more"]:
            return seen, pages
        cursor = page["next_cursor"]


def test_status_pages_walk_every_shard_once_in_order(three_shards, api, customer, aws):  # type: ignore[no-untyped-def]
    # Given 7 drafts, which land on more than one shard of STATUS#draft
    ids = [create_draft(api, customer)["id"] for _ in range(7)]
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name)
    stored = {i: table.get_item(Key={"pk": f"INVOICE#{i}", "sk": "INVOICE"})["Item"]["gsi2pk"] for i in ids}
    assert stored == {i: keys.status_shard_pk("draft", keys.index_shard(i, SHARDS)) for i in ids}
    assert len(set(stored.values())) > 1
    # When a client pages through ?status=draft two at a time
    seen, pages = page_ids(api, {"status": "draft", "limit": "2"})
    # Then each comes once, newest first, in ceil(7 / 2) pages
    assert seen == list(reversed(ids)) and pages == 4
    # and one page holding them all says there is no more
    assert page_ids(api, {"status": "draft", "limit": "100"}) == (list(reversed(ids)), 1)


def test_search_by_status_pages_across_shards_with_a_tiny_read_bound(three_shards, api, customer):  # type: ignore[no-untyped-def]
    from invoicing.store.repository import InvoiceSearch

    ids = [create_draft(api, customer)["id"] for _ in range(6)]
    seen, cursor, cuts = [], None, 0
    for _ in range(50):
        # one item read per shard and page: the page ends at the frontier of the shard that read least
        page = root.get_services().repo.search_invoices(
            customer_id=None, status="draft", search=InvoiceSearch(), limit=4, cursor=cursor, read_size=1
        )
        assert page.reads == SHARDS
        seen += [i.id for i in page.items]
        cuts += page.cut
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == list(reversed(ids)) and cuts >= 1


def test_a_bad_cursor_is_a_422(three_shards, api):  # type: ignore[no-untyped-def]
    status, body, _ = api("GET", "/invoices", query={"status": "open", "starting_after": "STATUS#open#1"})
    assert status == 422 and body["error"]["code"] == "validation_error"
