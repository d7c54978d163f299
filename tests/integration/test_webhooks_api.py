"""Issue #17: the public event log (outbox records written with the change) and the webhook endpoints
API (secrets sealed with KMS, shown once; URL rules)."""

from __future__ import annotations

import boto3
import pytest

from tests.support.builders import open_invoice

ENDPOINT = {"url": "https://hooks.example.com/billing", "events": ["*"], "description": "CRM"}


def _scan_text(table_name: str) -> str:
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=table_name)["Items"]
    return repr(items)


# ---------------------------------------------------------------- the event log
def test_finalize_writes_a_public_event_holding_the_invoice_as_the_api_returns_it(api, customer):
    # Given an open invoice
    invoice = open_invoice(api, customer)
    # When the event log is read
    status, page, _ = api("GET", "/events", query={"object_id": invoice["id"], "type": "invoice.finalized"})
    # Then it holds invoice.finalized with the invoice exactly as GET /invoices/{id} returns it
    assert status == 200, page
    [event] = page["data"]
    assert event["id"].startswith("evt_")
    _, current, _ = api("GET", f"/invoices/{invoice['id']}")
    assert event["data"]["object"] == {**current, "payment_url": None}
    assert event["sequence"] == current["version"] * 100
    status, one, _ = api("GET", f"/events/{event['id']}")
    assert status == 200 and one == event


def test_events_filter_by_type_and_page_newest_first(api, customer):
    ids = [open_invoice(api, customer)["id"] for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        query = {"type": "invoice.finalized", "limit": "2", **({"starting_after": cursor} if cursor else {})}
        status, page, _ = api("GET", "/events", query=query)
        assert status == 200, page
        seen += [e["data"]["object"]["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == list(reversed(ids))
    status, page, _ = api("GET", "/events", query={"type": "invoice.paid"})
    assert status == 200 and page["data"] == []


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("/events", {"type": "invoice.exploded"}, 422),
        ("/events", {"limit": "0"}, 422),
        ("/events", {"starting_after": "nope"}, 422),
        ("/events/evt_unknown", None, 404),
    ],
)
def test_bad_event_queries_are_clear_4xx(api, path, query, expected):
    status, body, _ = api("GET", path, query=query)
    assert status == expected, body
    assert set(body["error"]) >= {"code", "message"}


def test_a_change_whose_transaction_fails_writes_no_event(services, customer):
    # Given a draft, and a finalization planned on a stale copy of it
    from dataclasses import replace

    from invoicing.domain.events import Actor, new_event
    from invoicing.errors import StaleInvoice
    from invoicing.store.models import WebhookEventItem
    from tests.support.builders import draft_of

    draft = draft_of(services, customer["id"])
    stale = replace(draft, version=draft.version + 7)
    event = new_event(draft.id, "invoice.updated", Actor("api_key:test"), "2026-11-27T10:00:00.000Z")
    # When the transaction is cancelled by the version condition
    with pytest.raises(StaleInvoice), services.uow() as tx:
        tx.update_draft(stale, replace(stale, memo="stale edit", version=stale.version + 1))
        tx.add_events(event)
    # Then neither the audit event nor the outbox record exists (only the draft's invoice.created)
    assert [i.event_type for i in WebhookEventItem.scan() if i.object_id == draft.id] == ["invoice.created"]
    assert event.id not in {i.event_id for i in WebhookEventItem.scan()}


# ---------------------------------------------------------------- endpoints
def test_create_shows_the_secret_once_and_stores_it_sealed(api, aws):
    status, created, _ = api("POST", "/webhook-endpoints", ENDPOINT)
    assert status == 201, created
    assert created["secret"].startswith("whsec_") and created["status"] == "enabled"
    assert created["events"] == ["*"]
    status, got, _ = api("GET", f"/webhook-endpoints/{created['id']}")
    assert status == 200 and "secret" not in got
    status, listed, _ = api("GET", "/webhook-endpoints")
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert created["secret"] not in _scan_text(aws.table_name)
    assert created["secret"].removeprefix("whsec_") not in _scan_text(aws.table_name)


def test_patch_delete_and_rotation(api):
    _, created, _ = api("POST", "/webhook-endpoints", ENDPOINT)
    eid = created["id"]
    status, patched, _ = api(
        "PATCH", f"/webhook-endpoints/{eid}", {"events": ["invoice.paid", "invoice.voided"], "status": "disabled"}
    )
    assert status == 200, patched
    assert patched["events"] == ["invoice.paid", "invoice.voided"] and patched["status"] == "disabled"
    status, rotated, _ = api("POST", f"/webhook-endpoints/{eid}/rotate-secret")
    assert status == 200, rotated
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    status, _, _ = api("DELETE", f"/webhook-endpoints/{eid}")
    assert status == 204
    status, body, _ = api("GET", f"/webhook-endpoints/{eid}")
    assert status == 404, body


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://hooks.example.com/x", "events": ["*"]},
        {"url": "https://10.0.0.1/x", "events": ["*"]},
        {"url": "https://169.254.169.254/latest/meta-data", "events": ["*"]},
        {"url": "https://127.0.0.1/x", "events": ["*"]},
        {"url": "http://127.0.0.1:8080/x", "events": ["*"]},  # only on a local stack
        {"url": "https://user:pw@hooks.example.com/x", "events": ["*"]},
        {"url": "https://hooks.example.com/x", "events": []},
        {"url": "https://hooks.example.com/x", "events": ["*", "invoice.paid"]},
        {"url": "https://hooks.example.com/x", "events": ["invoice.exploded"]},
        {"url": "https://hooks.example.com/x", "events": ["*"], "extra": 1},
        {"url": 5, "events": ["*"]},
    ],
)
def test_bad_endpoints_are_refused_with_a_422_and_nothing_written(api, aws, body):
    status, error, _ = api("POST", "/webhook-endpoints", body)
    assert status == 422, error
    assert set(error["error"]) >= {"code", "message"}
    assert "WebhookEndpoint" not in _scan_text(aws.table_name)


def test_unknown_endpoint_routes_are_404(api):
    for method, path, body in [
        ("GET", "/webhook-endpoints/we_nope", None),
        ("PATCH", "/webhook-endpoints/we_nope", {"status": "enabled"}),
        ("DELETE", "/webhook-endpoints/we_nope", None),
        ("POST", "/webhook-endpoints/we_nope/rotate-secret", None),
        ("GET", "/webhook-endpoints/we_nope/deliveries", None),
        ("POST", "/webhook-endpoints/we_nope/deliveries/dlv_nope/retry", None),
        ("POST", "/webhook-endpoints/we_nope/replay", {"since": "2026-01-01T00:00:00Z"}),
    ]:
        status, error, _ = api(method, path, body)
        assert status == 404, (method, path, error)


def test_void_with_reissue_and_mark_uncollectible_publish_their_invoices_after_the_change(api, customer):
    # Given two open invoices
    first, second = open_invoice(api, customer), open_invoice(api, customer)
    # When one is voided with a reissue and the other is marked uncollectible
    status, voided, _ = api("POST", f"/invoices/{first['id']}/void", {"reissue": True})
    assert status == 200, voided
    status, written_off, _ = api("POST", f"/invoices/{second['id']}/mark-uncollectible")
    assert status == 200, written_off

    # Then each change has its public event, holding the object as GET returns it after the change
    def latest(object_id: str) -> dict:  # type: ignore[type-arg]
        return api("GET", "/events", query={"object_id": object_id})[1]["data"][0]

    for invoice, expected_type in (
        (voided, "invoice.voided"),
        (written_off, "invoice.marked_uncollectible"),
    ):
        event = latest(invoice["id"])
        assert event["type"] == expected_type
        assert event["data"]["object"] == {**api("GET", f"/invoices/{invoice['id']}")[1], "payment_url": None}
        assert event["sequence"] > 0
    reissued = latest(voided["reissued_as"])
    assert reissued["type"] == "invoice.created" and reissued["data"]["object"]["reissue_of"] == first["id"]
    # and an object's sequence grows with its changes
    created, finalized, void = api("GET", "/events", query={"object_id": first["id"]})[1]["data"][::-1]
    assert created["sequence"] < finalized["sequence"] < void["sequence"]


def test_creating_and_editing_a_draft_publish_invoice_created_and_updated(api, customer):
    from tests.support.builders import create_draft

    draft = create_draft(api, customer)
    status, edited, _ = api("PATCH", f"/invoices/{draft['id']}", {"memo": "PO 4711"})
    assert status == 200, edited
    updated, created = api("GET", "/events", query={"object_id": draft["id"]})[1]["data"]
    assert (created["type"], updated["type"]) == ("invoice.created", "invoice.updated")
    assert created["data"]["object"] == {**draft, "payment_url": None}
    assert updated["data"]["object"] == {**edited, "payment_url": None}
    assert created["sequence"] < updated["sequence"]


def test_a_partial_then_a_settling_payment_publish_payment_recorded_then_paid(api, customer):
    invoice = open_invoice(api, customer)
    half = invoice["amount_remaining_cents"] // 2
    for amount in (half, invoice["amount_remaining_cents"] - half):
        status, body, _ = api("POST", f"/invoices/{invoice['id']}/payments", {"amount_cents": amount, "method": "cash"})
        assert status == 201, body
    events = api("GET", "/events", query={"object_id": invoice["id"]})[1]["data"]
    assert [e["type"] for e in events][:2] == ["invoice.paid", "invoice.payment_recorded"]
    assert events[0]["data"]["object"]["status"] == "paid"
    assert events[0]["sequence"] > events[1]["sequence"]
