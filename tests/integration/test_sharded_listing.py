"""Listings over the sharded `STATUS#{status}#{shard}` index keys, through the API on moto: cursor
pages across shards return every invoice exactly once, newest first (docs/data-model.md)."""

from __future__ import annotations

import boto3
import pytest

from invoicing import root
from invoicing.store import keys
from tests.support.builders import create_draft, open_invoice

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


# ---------------------------------------------------------------- the webhook event feed (`feed` index)
def event_pages(api, query):  # type: ignore[no-untyped-def]
    seen, cursor, pages = [], None, 0
    while True:
        status, page, _ = api("GET", "/events", query={**query, **({"starting_after": cursor} if cursor else {})})
        assert status == 200, page
        assert len(page["data"]) <= int(query["limit"])
        seen += [(e["created_at"], e["id"], e["type"]) for e in page["data"]]
        pages += 1
        if not page["has_more"]:
            return seen, pages
        cursor = page["next_cursor"]


def test_the_event_feed_pages_across_its_shards_in_order(three_shards, api, customer, aws):  # type: ignore[no-untyped-def]
    # Given 4 open invoices: their outbox records (and the customer's) land on several feed shards
    for _ in range(4):
        open_invoice(api, customer)
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(aws.table_name)
    records = [i for i in table.scan()["Items"] if i["type"] == "WebhookEvent"]
    assert len(records) == 9  # customer.created + 4 x (invoice.created, invoice.finalized)
    for r in records:
        assert r["feed_pk"] == keys.event_feed_shard(keys.index_shard(r["event_id"], SHARDS))
        assert r["feed_sk"] == f"{r['created_at']}#{r['event_id']}" and "gsi2pk" not in r
    assert len({r["feed_pk"] for r in records}) > 1
    newest_first = sorted(((r["created_at"], r["event_id"], r["event_type"]) for r in records), reverse=True)
    # When a client pages through GET /events two at a time
    seen, pages = event_pages(api, {"limit": "2"})
    # Then each event comes once, newest first, in ceil(9 / 2) pages; one big page says no more
    assert seen == newest_first and pages == 5
    assert event_pages(api, {"limit": "100"}) == (newest_first, 1)
    # and a type filter pages the same order, only that type
    finalized = [e for e in newest_first if e[2] == "invoice.finalized"]
    assert event_pages(api, {"limit": "3", "type": "invoice.finalized"})[0] == finalized


def test_a_rare_type_ends_feed_pages_at_the_read_bound(three_shards, api, customer, monkeypatch):  # type: ignore[no-untyped-def]
    from invoicing.store import webhooks

    # Given 5 invoices' events, the one customer.created the oldest of all, and one round of 2 keys a page
    for _ in range(5):
        open_invoice(api, customer)
    monkeypatch.setattr(webhooks, "FEED_ROUNDS", 1)
    monkeypatch.setattr(webhooks, "FEED_ROUND_KEYS", 2)
    # When a client pages by that type one at a time
    seen, pages = event_pages(api, {"limit": "1", "type": "customer.created"})
    # Then the short pages carry cursors on until the match, found once
    assert [e[2] for e in seen] == ["customer.created"] and pages > 2


def test_a_batch_get_reads_its_unprocessed_keys_again(three_shards, api, customer, monkeypatch):  # type: ignore[no-untyped-def]
    from invoicing.store import webhooks
    from invoicing.store.models import TableItem

    open_invoice(api, customer)
    real = TableItem._batch_get_page
    calls: list[int] = []

    def throttled(keys_to_get, consistent_read, attributes_to_get):  # type: ignore[no-untyped-def]
        # DynamoDB leaves part of a batch unread under load: the first call reads only one key
        calls.append(len(keys_to_get))
        page, _ = real(keys_to_get[:1], consistent_read=consistent_read, attributes_to_get=attributes_to_get)
        return page, (keys_to_get[1:] or None)

    monkeypatch.setattr(TableItem, "_batch_get_page", throttled)
    monkeypatch.setattr(webhooks, "SHORT", webhooks.SHORT.__class__(base=0.0, cap=0.0))
    status, page, _ = api("GET", "/events", query={"limit": "10"})
    assert status == 200 and len(page["data"]) == 3
    assert calls == [3, 2, 1]
