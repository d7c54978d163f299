"""Issue #17, the event catalogue end to end: for each event type published beside the invoice's
lifecycle (customers, credit notes, refunds, deleted drafts), an endpoint subscribed to that type
alone receives exactly one delivery, verified with `standardwebhooks`, carrying the object as the API
returns it after the change and its per-object sequence. (refund.failed needs Stripe's refusal:
tests/integration/test_stripe.py.) Also: the sequence of one invoice never repeats, PDF renders
included."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.builders import create_draft, open_invoice

Api = Callable[..., tuple[int, Any, dict[str, str]]]


def _ok(result: tuple[int, Any, dict[str, str]], expected: int = 200) -> Any:
    status, body, _ = result
    assert status == expected, body
    return body


def _paid_by_cash(api: Api, customer: dict[str, Any]) -> dict[str, Any]:
    invoice = open_invoice(api, customer)
    _ok(
        api(
            "POST",
            f"/invoices/{invoice['id']}/payments",
            {"amount_cents": invoice["amount_remaining_cents"], "method": "bank_transfer"},
        ),
        201,
    )
    return invoice


def _credit(api: Api, invoice_id: str, method: str) -> dict[str, Any]:
    body = {"amount_cents": 2500, "reason": "product_unsatisfactory", "method": method}
    return _ok(api("POST", f"/invoices/{invoice_id}/credit-notes", body), 201)


# Each scenario makes its change through the API and returns the object the event must carry
def customer_created(api: Api, customer: dict[str, Any]) -> dict[str, Any]:
    return _ok(api("POST", "/customers", {"name": "Globex", "email": "ap@globex.test", "currency": "EUR"}), 201)


def customer_updated(api: Api, customer: dict[str, Any]) -> dict[str, Any]:
    return _ok(api("PATCH", f"/customers/{customer['id']}", {"email": "ap@acme.test", "tax_id": "DE123"}))


def invoice_deleted(api: Api, customer: dict[str, Any]) -> dict[str, Any]:
    draft = create_draft(api, customer)
    as_it_was = _ok(api("GET", f"/invoices/{draft['id']}"))
    _ok(api("DELETE", f"/invoices/{draft['id']}"), 204)
    assert api("GET", f"/invoices/{draft['id']}")[0] == 404
    return {**as_it_was, "payment_url": None}


def credit_note_created(api: Api, customer: dict[str, Any]) -> dict[str, Any]:
    return _credit(api, open_invoice(api, customer)["id"], "customer_balance")


def credit_note_voided(api: Api, customer: dict[str, Any]) -> dict[str, Any]:
    note = _credit(api, open_invoice(api, customer)["id"], "out_of_band")
    return _ok(api("POST", f"/credit-notes/{note['id']}/void"))


def refund_succeeded(api: Api, customer: dict[str, Any]) -> dict[str, Any]:
    # a refund of a bank transfer is paid back by hand, then recorded as done
    note = _credit(api, _paid_by_cash(api, customer)["id"], "refund")
    [refund] = note["refunds"]
    assert (refund["provider"], refund["status"]) == ("manual", "pending")
    path = f"/credit-notes/{note['id']}/refunds/{refund['id']}/complete"
    return _ok(api("POST", path, {"reference": "SEPA 2026-11-27 #88"}))


SCENARIOS = {
    "customer.created": (customer_created, 100),
    "customer.updated": (customer_updated, 200),
    "invoice.deleted": (invoice_deleted, None),  # the draft's version + 1, after its last update
    "credit_note.created": (credit_note_created, 100),
    "credit_note.voided": (credit_note_voided, 200),
    "refund.succeeded": (refund_succeeded, 200),  # planned with the credit note (1), completed (2)
}


@pytest.mark.parametrize("event_type", list(SCENARIOS))
def test_an_endpoint_subscribed_to_one_type_receives_exactly_one_verified_event(
    api, customer, pipeline, receiver, event_type
):
    # Given an endpoint subscribed to this type alone, whose receiver verifies every delivery (made
    # once the events before it were fanned out: the fan-out sends to the endpoints it finds)
    pipeline.drain()
    status, endpoint, _ = api("POST", "/webhook-endpoints", {"url": receiver.url, "events": [event_type]})
    assert status == 201, endpoint
    receiver.secrets = [endpoint["secret"]]
    scenario, sequence = SCENARIOS[event_type]
    # When the change is made (with whatever other events it brings) and the pipeline has run dry
    expected = scenario(api, customer)
    pipeline.drain()
    # Then exactly one delivery came, signed verifiably, holding the object as the API returned it
    [got] = receiver.received
    assert got.verified_with == [endpoint["secret"]]
    event = json.loads(got.body)
    assert event["type"] == event_type and got.headers["webhook-id"] == event["id"]
    assert event["data"]["object"] == expected
    assert event["sequence"] == (sequence or (expected["version"] + 1) * 100)
    # and it is the event in the log
    assert _ok(api("GET", f"/events/{event['id']}")) == event


def test_a_customers_events_carry_a_growing_sequence_and_balance_moves_count(api, customer):
    # Given a customer edited, then credited to its balance, then edited again
    _ok(api("PATCH", f"/customers/{customer['id']}", {"name": "Acme AG"}))
    _credit(api, open_invoice(api, customer)["id"], "customer_balance")
    _paid_credit = _credit(api, _paid_by_cash(api, customer)["id"], "customer_balance")
    assert _paid_credit["customer_balance_cents"] == 2500
    after = _ok(api("PATCH", f"/customers/{customer['id']}", {"name": "Acme SE"}))
    # Then its events are created, updated, updated, each sequence above the one before
    events = _ok(api("GET", "/events", query={"object_id": customer["id"]}))["data"][::-1]
    assert [e["type"] for e in events] == ["customer.created", "customer.updated", "customer.updated"]
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(set(sequences))
    # and the last one carries the balance the credit note moved, as GET shows it
    assert events[-1]["data"]["object"] == after == _ok(api("GET", f"/customers/{customer['id']}"))
    assert after["balances"] == {"USD": 2500}


def test_one_invoices_sequence_never_repeats_through_renders_and_payments(api, services, customer):
    # Given an open invoice, its PDF rendered, then paid in part, rendered again, and paid in full
    from invoicing.use_cases.documents import render_invoice_pdf

    invoice = open_invoice(api, customer)

    def render(n: int) -> None:
        job = {"invoice_id": invoice["id"], "job_id": f"job_{n}", "requested_at": "2026-01-01T00:00:00.000Z"}
        assert render_invoice_pdf(services, job, render=lambda html, footer_text: b"%PDF-1.7 fake") == "rendered"

    render(1)
    _ok(api("POST", f"/invoices/{invoice['id']}/payments", {"amount_cents": 1000, "method": "cash"}), 201)
    render(2)
    rest = _ok(api("GET", f"/invoices/{invoice['id']}"))["amount_remaining_cents"]
    _ok(api("POST", f"/invoices/{invoice['id']}/payments", {"amount_cents": rest, "method": "cash"}), 201)
    # Then every event of the invoice has its own sequence, growing in the order of the changes
    events = _ok(api("GET", "/events", query={"object_id": invoice["id"]}))["data"][::-1]
    assert [e["type"] for e in events] == [
        "invoice.created",
        "invoice.finalized",
        "invoice.pdf_rendered",
        "invoice.payment_recorded",
        "invoice.pdf_rendered",
        "invoice.paid",
    ]
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(set(sequences)), sequences
    # and each render's object is the invoice as stored after it (the partial payment included)
    second_render = events[4]["data"]["object"]
    assert (second_render["pdf_status"], second_render["amount_paid_cents"]) == ("rendered", 1000)
    assert second_render["version"] == events[3]["data"]["object"]["version"] + 1


def test_a_void_that_lost_the_race_to_a_render_is_read_again_not_refused(api, services, customer, monkeypatch):
    # Given an open invoice whose PDF gets recorded just after the void has read it
    from invoicing.use_cases.documents import render_invoice_pdf

    invoice = open_invoice(api, customer)
    read = services.repo.get_invoice
    rendered: list[str] = []

    def read_then_render(invoice_id: str):  # type: ignore[no-untyped-def]
        got = read(invoice_id)
        if not rendered:
            rendered.append(invoice_id)
            job = {"invoice_id": invoice_id, "job_id": "job_race", "requested_at": "2026-01-01T00:00:00.000Z"}
            render_invoice_pdf(services, job, render=lambda html, footer_text: b"%PDF-1.7 fake")
        return got

    monkeypatch.setattr(services.repo, "get_invoice", read_then_render)
    # When it is voided
    voided = _ok(api("POST", f"/invoices/{invoice['id']}/void"))
    # Then the void was decided again on the rendered invoice, and both events carry their own sequence
    assert rendered and voided["status"] == "void" and voided["pdf_status"] == "rendered"
    events = _ok(api("GET", "/events", query={"object_id": invoice["id"]}))["data"][::-1]
    assert [e["type"] for e in events][-2:] == ["invoice.pdf_rendered", "invoice.voided"]
    assert events[-2]["sequence"] < events[-1]["sequence"] == voided["version"] * 100
